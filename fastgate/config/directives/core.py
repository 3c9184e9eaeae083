"""nginx's core module (``ngx_core_module``, ``ngx_http_core_module``): processes and
events, the http/server/location blocks, ``listen``, ``server_name``, ``try_files``,
``error_page``, client limits and timeouts, the status page."""

from __future__ import annotations

import grp
import math
import os
import pwd
import re
import socket
from dataclasses import replace
from typing import Any

from fastgate.config.context import (
    EVENTS,
    HS,
    HSL,
    HTTP,
    LIF,
    LMT,
    LOCATION,
    MAIN,
    SERVER,
    SL,
    Context,
    Handler,
    Level,
    Spec,
)
from fastgate.config.directives.args import (
    flag_arg,
    listen_address,
    number_arg,
    offset_arg,
    one_of,
    refuse_reuseport_on_socket,
    setting,
    size_arg,
    time_arg,
)
from fastgate.config.directives.slots import check_slot
from fastgate.config.errors import ConfigError
from fastgate.config.model import (
    ErrorPage,
    Listen,
    TryFiles,
    User,
)
from fastgate.config.parser import Directive
from fastgate.config.regex import compile_regex
from fastgate.config.values import (
    parse_code,
    parse_number,
    parse_size,
    parse_time,
    time_value,
)
from fastgate.variables import Template

MAX_WORKERS = 512


def usable_cpus(cgroup: str = "/sys/fs/cgroup") -> int:
    """What ``auto`` means: the CPUs this process may run on (its affinity), fewer when
    a cgroup CPU quota allows less (a container given 2 CPUs on a 64-core host)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = None
    try:  # cgroup v2: "max 100000" or "200000 100000"
        with open(f"{cgroup}/cpu.max") as f:
            q, period = f.read().split()[:2]
        if q != "max":
            quota = int(q) / int(period)
    except (OSError, ValueError):
        try:  # cgroup v1
            with open(f"{cgroup}/cpu/cpu.cfs_quota_us") as f:
                quota_us = int(f.read())
            with open(f"{cgroup}/cpu/cpu.cfs_period_us") as f:
                period_us = int(f.read())
            if quota_us > 0 and period_us > 0:
                quota = quota_us / period_us
        except (OSError, ValueError):
            pass
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, min(n, MAX_WORKERS))


def set_worker_processes(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    value = d.args[0]
    n = usable_cpus() if value == "auto" else parse_number(d, value, minimum=1)
    if n > MAX_WORKERS:
        raise d.error(f'"worker_processes" above {MAX_WORKERS} is not supported')
    lvl.local["worker_processes"] = n


def set_http_engine(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    lvl.local["http_engine"] = one_of("auto", "h11", "httptools")(ld, d)


def set_worker_connections(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    lvl.local["worker_connections"] = parse_number(d, d.args[0], minimum=1)


def set_user(ld: Context, lvl: Level, d: Directive) -> None:
    """nginx's ``user``: the group defaults to the one named as the user, and (where no
    such group exists, as for Debian's nobody/nogroup) to the user's own group."""
    lvl.once(d)
    name = d.args[0]
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise d.error(f'getpwnam("{name}") failed') from None
    group = d.args[1] if len(d.args) > 1 else name
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        if len(d.args) > 1:
            raise d.error(f'getgrnam("{group}") failed') from None
        gid = pw.pw_gid
    if os.geteuid() != 0:
        ld.warn('the "user" directive makes sense only if the master process runs with '
                "super-user privileges, ignored", d)
        return
    lvl.local["user"] = User(name, pw.pw_uid, gid)


def client_body_temp_path(ld: Context, d: Directive) -> str:
    """nginx's ``client_body_temp_path PATH [LEVEL1 [LEVEL2 [LEVEL3]]]``: PATH from the
    prefix, made (and handed to ``user``) when the configuration is loaded, as nginx
    makes it. The levels need nothing more, since fastgate's files have no names to
    spread over subdirectories; they are checked as nginx's ngx_conf_set_path_slot
    checks them: digits, none 0, ten at most in all."""
    total = 0
    for level in d.args[1:]:
        n = int(level) if level.isascii() and level.isdigit() else 0
        total += n
        if n == 0 or total > 10:
            raise d.error(f'invalid value "{level}" in "{d.name}" directive')
    path = ld.path_of(d.args[0], prefix=True)
    ld.temp_dirs.append((path, d))
    return path


def set_pid(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    lvl.local["pid"] = None if d.args[0] == "off" else ld.path_of(d.args[0], prefix=True)


def load_module(ld: Context, lvl: Level, d: Directive) -> None:
    ld.notice(f'"load_module {d.args[0]}" ignored: fastgate\'s modules (JWT, GeoIP...) are '
              "built in", d)


def block(ctx: str) -> Handler:
    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        if ctx in (EVENTS, HTTP):
            if any(c.ctx == ctx for c in lvl.children):
                raise d.error(f'"{d.name}" directive is duplicate')
        child = Level(ctx, d, parent=lvl)
        lvl.children.append(child)
        if ctx == HTTP:
            ld.declare_maps(d)
        ld.walk(d.block or (), child)

    return handle


def server_block(ld: Context, lvl: Level, d: Directive) -> None:
    if d.args:
        raise d.error('invalid number of arguments in "server" directive')
    child = Level(SERVER, d, parent=lvl)
    lvl.children.append(child)
    ld.walk(d.block or (), child)


_PORT_RANGE = re.compile(r"(?P<head>.*?)(?P<low>[0-9]+)-(?P<high>[0-9]+)")


_IGNORED_LISTEN = ("so_keepalive=", "fastopen=", "ipv6only=", "rcvbuf=", "sndbuf=",
                   "accept_filter=", "setfib=")


def listen(ld: Context, lvl: Level, d: Directive) -> None:
    address = d.args[0]
    ports: range | None = None
    m = _PORT_RANGE.fullmatch(address)
    if m is not None and (m["head"] == "" or m["head"].endswith(":")):
        # a port range, "8000-8009" or "127.0.0.1:8000-8009": one listener per port
        low, high = int(m["low"]), int(m["high"])
        if not 0 < low <= high < 65536:
            raise d.error(f'invalid port in "{address}" of the "listen" directive')
        ports = range(low, high + 1)
        address = m["head"] + m["low"]
    host, port = listen_address(ld, d, address, 80)
    params: dict[str, Any] = {}
    for arg in d.args[1:]:
        if arg == "reuseport":
            refuse_reuseport_on_socket(d, port)
        if arg in ("ssl", "reuseport", "default_server"):
            params[arg] = True
            if arg == "ssl":  # where -t blames a missing certificate
                lvl.local.setdefault("ssl_listen", d)
        elif arg == "default":
            params["default_server"] = True
        elif arg.startswith("backlog="):
            params["backlog"] = parse_number(d, arg[8:], minimum=1)
        elif arg == "http2":
            params["http2"] = True
        elif arg in ("deferred", "bind") or arg.startswith(_IGNORED_LISTEN):
            ld.warn_once(f'the "{arg.partition("=")[0]}" parameter of "listen" is ignored',
                         "fastgate's listening sockets take the system defaults", d)
        elif arg == "proxy_protocol":
            params["proxy_protocol"] = True
        else:
            raise d.error(f'invalid parameter "{arg}"')
    entries = tuple(Listen(host or "0.0.0.0", p, **params) for p in (ports or (port,)))
    _refuse_duplicates(lvl, entries, d)
    lvl.local["listen"] = lvl.local.get("listen", ()) + entries


def _refuse_duplicates(lvl: Level, entries: tuple[Listen, ...], d: Directive) -> None:
    """nginx's ngx_http_add_addresses: an address twice in one server, or the default
    server of two."""
    assert lvl.parent is not None
    for other in lvl.parent.children:
        for seen in other.local.get("listen", ()):
            for e in entries:
                if e.address != seen.address:
                    continue
                if other is lvl:
                    raise d.error(f"a duplicate listen {e.written}")
                if e.default_server and seen.default_server:
                    raise d.error(f"a duplicate default server for {e.written}")


# nginx's methods for limit_except (ngx_http_core_limit_except)
LIMIT_EXCEPT_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "MKCOL", "COPY",
                                  "MOVE", "OPTIONS", "PROPFIND", "PROPPATCH", "LOCK",
                                  "UNLOCK", "PATCH"})


def limit_except_block(ld: Context, lvl: Level, d: Directive) -> None:
    """``limit_except METHOD... { ... }``: the block's access directives (and its
    proxy_pass) apply to every method it does not name; GET names HEAD too."""
    if "limit_except" in lvl.local:
        raise d.error('"limit_except" directive is duplicate')
    methods = set()
    for a in d.args:
        if a.upper() not in LIMIT_EXCEPT_METHODS:
            raise d.error(f'invalid method "{a}"')
        methods.add(a.upper())
    if "GET" in methods:
        methods.add("HEAD")
    child = Level(LMT, d, parent=lvl)
    ld.walk(d.block or (), child)
    lvl.local["limit_except"] = (frozenset(methods), child)


def server_name(ld: Context, lvl: Level, d: Directive) -> None:
    """Names as ngx_http_core_server_name keeps them: lowercase but for a regex (whose
    ``\\S`` is not ``\\s``), ``$hostname`` the machine's name."""
    names = []
    for a in d.args:
        if a.startswith("*") and (len(a) < 3 or a[1] != ".") or a.startswith(".") and len(a) < 2:
            raise d.error(f'server name "{a}" is invalid')
        if "/" in a:
            ld.warn(f'server name "{a}" has suspicious symbols', d)
        if a == "~":
            raise d.error(f'empty regex in server name "{a}"')
        if a.startswith("~"):
            try:  # (checked here: the worker compiles it again, for its server table)
                compile_regex(a[1:], True)
            except ConfigError as e:
                raise d.error(e.message) from None
        if a.lower() == "$hostname":
            a = socket.gethostname()
        # (ASCII letters lowered only, as nginx's ngx_strlow and a request's Host)
        names.append(a if a.startswith("~") else
                     a.encode("utf-8", "surrogateescape").lower().decode(
                         "utf-8", "surrogateescape"))
    lvl.local["server_name"] = lvl.local.get("server_name", ()) + tuple(names)


def location_block(ld: Context, lvl: Level, d: Directive) -> None:
    if len(d.args) == 1:
        modifier, pattern = "", d.args[0]
        if pattern.startswith("="):
            modifier, pattern = "=", pattern[1:]
        elif pattern.startswith("~*"):
            modifier, pattern = "~*", pattern[2:]
        elif pattern.startswith("^~"):
            modifier, pattern = "^~", pattern[2:]
        elif pattern.startswith("~"):
            modifier, pattern = "~", pattern[1:]
        elif pattern.startswith("@"):
            modifier = "@"
    else:
        modifier, pattern = d.args
        if modifier not in ("=", "~", "~*", "^~"):
            raise d.error(f'invalid location modifier "{modifier}"')
    # (an empty pattern is nginx's too: "~" a regex that matches every URI, "" or "^~"
    # a prefix every URI has, "=" an exact URI no request has)
    if modifier == "@" and lvl.ctx != SERVER:
        raise d.error(f'named location "{pattern}" can be on the server level only')
    parent_loc = lvl.local.get("location") if lvl.ctx == LOCATION else None
    if parent_loc is not None:
        pmod, ppat = parent_loc
        if pmod == "@":
            raise d.error(f'location "{pattern}" could not be inside the named location "{ppat}"')
        if pmod == "=":
            raise d.error(f'location "{pattern}" could not be inside the exact location "{ppat}"')
        # (inside a regex location too: its name is the regex, as nginx compares them)
        if modifier in ("", "^~", "=") and not pattern.startswith(ppat):
            raise d.error(f'location "{pattern}" is outside location "{ppat}"')
    child = Level(LOCATION, d, parent=lvl)
    child.local["location"] = (modifier, pattern)
    if modifier in ("~", "~*"):
        try:
            child.local["regex"] = compile_regex(pattern, modifier == "~*")
        except ConfigError as e:
            raise d.error(e.message) from None
    lvl.children.append(child)
    ld.walk(d.block or (), child)


def set_try_files(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    last = d.args[-1]
    files = tuple(ld.compile(a, d) for a in d.args[:-1])
    if last.startswith("="):
        lvl.local["try_files"] = TryFiles(files, parse_code(d, last[1:], 0, 999), None)
    else:
        lvl.local["try_files"] = TryFiles(files, None, ld.compile(last, d))


def set_internal(ld: Context, lvl: Level, d: Directive) -> None:
    """``internal``: only an internal redirect (error_page, try_files, a rewrite) may
    reach the location; a client's request for it is a 404."""
    lvl.once(d)
    lvl.local["internal"] = True


_OWN = {"fastgate_status": "fastgate", "stub_status": "stub", "empty_gif": "empty_gif",
        "flv": "flv", "mp4": "mp4"}


def size_template(ld: Context, d: Directive) -> Template:
    """A size that may hold variables (nginx's complex value size): one without them is
    checked now."""
    template = ld.compile(d.args[0], d)
    if template.is_literal:
        parse_size(d, d.args[0])
    return template


def set_own_content(ld: Context, lvl: Level, d: Directive) -> None:
    """A content handler of the location's own answers it: ``fastgate_status``,
    ``stub_status`` (its old form ``stub_status on`` too), ``empty_gif``, ``flv``,
    ``mp4``. nginx takes stub_status twice (it sets its handler again), and with any
    argument, which it never reads: ``stub_status off`` shows the page too (warned)."""
    if d.name == "stub_status":
        if d.args and d.args != ("on",):
            ld.warn(f'"stub_status {d.args[0]}": its argument is ignored, as nginx '
                    "ignores it: the status page is served", d)
        if lvl.local.get("own_content") == "stub":
            return
    lvl.once(d)
    if "own_content" in lvl.local:
        raise d.error(f'"{d.name}" and another content handler of fastgate\'s own in one location')
    lvl.local["own_content"] = _OWN[d.name]


# nginx's own statuses (headers too large, certificate errors, plain HTTP to an ssl port)
_ANSWERED_AS_400 = frozenset({494, 495, 496, 497})


def keepalive_disable(ld: Context, lvl: Level, d: Directive) -> None:
    """``keepalive_disable none|msie6|safari ...``: nginx's bitmask (caseless words, as
    many as given at a level, ``none`` one of them and turning neither on)."""
    check_slot(d)
    given = lvl.fields.get("keepalive_disable", frozenset())
    lvl.fields["keepalive_disable"] = given | {a.lower() for a in d.args} - {"none"}
    lvl.origins.setdefault(d.name, d)


def error_page(ld: Context, lvl: Level, d: Directive) -> None:
    args = list(d.args)
    target = args.pop()
    override: int | None = None
    keep = False
    if args and args[-1].startswith("="):
        eq = args.pop()
        if eq == "=":
            keep = True
        else:
            given = eq[1:]
            override = (parse_code(d, given, 0, 999) if given.isascii() and given.isdigit()
                        else None)
            if override is None:
                raise d.error(f'invalid value "{eq}"')
    if not args:
        raise d.error('invalid number of arguments in "error_page" directive')
    page = ErrorPage(target, ld.compile(target, d), override, keep)
    lvl.origins.setdefault(d.name, d)
    pages = lvl.fields.get("error_page", ())
    for a in args:
        code = parse_code(d, a, 300, 599)
        if code in _ANSWERED_AS_400 and override is None and not keep:
            # nginx's own codes are answered as 400 unless the page says otherwise
            # (ngx_http_core_error_page)
            pages = pages + ((code, replace(page, code=400)),)
        else:
            pages = pages + ((code, page),)
    lvl.fields["error_page"] = pages


def set_worker_shutdown_timeout(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.local["worker_shutdown_timeout"] = parse_time(d, d.args[0])


def http2_push(ld: Context, lvl: Level, d: Directive) -> None:
    """``http2_push URI`` (each one of a level, variables allowed) or ``off``: a
    level with either replaces the outer list, as nginx's merge (nginx's messages for
    mixing them)."""
    value = d.args[0]
    pushes = lvl.fields.get("http2_push")
    off = lvl.local.get("http2_push_off", False)
    if value == "off":
        if pushes:
            raise d.error('"off" parameter cannot be used with URI')
        if off:
            raise d.error('"http2_push" directive is duplicate')
        lvl.local["http2_push_off"] = True
        lvl.fields["http2_push"] = ()
    else:
        if off:
            raise d.error('URI cannot be used with "off" parameter')
        lvl.fields["http2_push"] = (pushes or ()) + (ld.compile(value, d),)
    lvl.origins.setdefault(d.name, d)


def keepalive_timeout(ld: Context, lvl: Level, d: Directive) -> None:
    """``keepalive_timeout TIME [HEADER_TIME]``: the second value is the
    ``Keep-Alive: timeout=N`` a keep-alive response names (whole seconds, as nginx's
    ``ngx_parse_time(.., 1)``), set apart from the first: each is inherited on its own."""
    lvl.once(d)
    lvl.fields["keepalive_timeout"] = parse_time(d, d.args[0])
    if len(d.args) == 2:
        header = time_value(d.args[1], seconds_only=True)
        if header is None:
            raise d.error(f'"{d.name}" directive invalid value')
        lvl.fields["keepalive_header"] = int(header)


def client_header_buffer_size(ld: Context, d: Directive) -> int:
    return parse_size(d, d.args[0])


def large_client_header_buffers(ld: Context, d: Directive) -> tuple[int, int]:
    return (parse_number(d, d.args[0], minimum=1), parse_size(d, d.args[1]))


def types_block(ld: Context, lvl: Level, d: Directive) -> None:
    """``types { TYPE EXTENSION...; ... }``: the Content-Type of fastgate's own
    responses by the request URI's extension (nginx's mime.types loads as it is). A
    level's blocks replace the outer one's; several at one level add up, a later
    extension replacing an earlier one with nginx's warning (Discourse's sample adds its
    own block beside ``include mime.types``)."""
    lvl.origins.setdefault(d.name, d)
    table: dict[str, str] = dict(lvl.fields.get("types") or {})
    for entry in d.block or ():
        if entry.block is not None:  # (a type without extensions adds none, as nginx's)
            raise entry.error(f'invalid number of arguments in "{entry.name}" directive')
        for ext in entry.args:
            low = ext.lower()
            if low in table:
                ld.warn(f'duplicate extension "{ext}", content type: "{entry.name}", '
                        f'previous content type: "{table[low]}"', entry)
            table[low] = entry.name
    lvl.fields["types"] = table


SPECS = [
    Spec("worker_processes", frozenset({MAIN}), 1, 1, set_worker_processes),
    Spec("http_engine", frozenset({MAIN}), 1, 1, set_http_engine),
    Spec("pid", frozenset({MAIN}), 1, 1, set_pid),
    Spec("load_module", frozenset({MAIN}), 1, 1, load_module),
    Spec("user", frozenset({MAIN}), 1, 2, set_user),
    Spec("worker_shutdown_timeout", frozenset({MAIN}), 1, 1, set_worker_shutdown_timeout),
    Spec("events", frozenset({MAIN}), 0, 0, block(EVENTS), block=True),
    Spec("http", frozenset({MAIN}), 0, 0, block(HTTP), block=True),
    Spec("worker_connections", frozenset({EVENTS}), 1, 1, set_worker_connections),
    Spec("server", frozenset({HTTP}), 0, 0, server_block, block=True),
    Spec("listen", frozenset({SERVER}), 1, None, listen),
    Spec("server_name", frozenset({SERVER}), 1, None, server_name),
    Spec("location", SL, 1, 2, location_block, block=True),
    Spec("internal", frozenset({LOCATION}), 0, 0, set_internal),
    Spec("limit_except", frozenset({LOCATION}), 1, None, limit_except_block, block=True),
    Spec("try_files", SL, 2, None, set_try_files),
    Spec("fastgate_status", frozenset({LOCATION}), 0, 0, set_own_content),
    Spec("empty_gif", frozenset({LOCATION}), 0, 0, set_own_content),
    Spec("flv", frozenset({LOCATION}), 0, 0, set_own_content),
    Spec("limit_rate", HSL | {LIF}, 1, 1, setting("limit_rate", size_template)),
    Spec("limit_rate_after", HSL | {LIF}, 1, 1, setting("limit_rate_after", size_template)),
    Spec("mp4", frozenset({LOCATION}), 0, 0, set_own_content),
    Spec("mp4_buffer_size", HSL, 1, 1, setting("mp4_buffer_size", size_arg)),
    Spec("mp4_max_buffer_size", HSL, 1, 1, setting("mp4_max_buffer_size", size_arg)),
    Spec("mp4_start_key_frame", HSL, 1, 1, setting("mp4_start_key_frame", flag_arg)),
    Spec("stub_status", SL, 0, 1, set_own_content),
    Spec("error_page", HSL | {LIF}, 2, None, error_page),
    Spec("recursive_error_pages", HSL, 1, 1, setting("recursive_error_pages", flag_arg)),
    Spec("msie_padding", HSL, 1, 1, setting("msie_padding", flag_arg)),
    Spec("msie_refresh", HSL, 1, 1, setting("msie_refresh", flag_arg)),
    Spec("client_max_body_size", HSL, 1, 1, setting("client_max_body_size", offset_arg)),
    Spec("subrequest_output_buffer_size", HSL, 1, 1,
         setting("subrequest_output_buffer_size", size_arg)),
    Spec("client_header_timeout", HS, 1, 1, setting("client_header_timeout", time_arg)),
    Spec("client_body_timeout", HSL, 1, 1, setting("client_body_timeout", time_arg)),
    Spec("client_body_buffer_size", HSL, 1, 1, setting("client_body_buffer_size", size_arg)),
    Spec("client_body_in_file_only", HSL, 1, 1,
         setting("client_body_in_file_only", one_of("on", "clean", "off"))),
    Spec("client_body_temp_path", HSL, 1, 4,
         setting("client_body_temp_path", client_body_temp_path)),
    Spec("send_timeout", HSL, 1, 1, setting("send_timeout", time_arg)),
    Spec("keepalive_timeout", HSL, 1, 2, keepalive_timeout),
    Spec("keepalive_requests", HSL, 1, 1, setting("keepalive_requests", number_arg)),
    Spec("keepalive_time", HSL, 1, 1, setting("keepalive_time", time_arg)),
    Spec("lingering_close", HSL, 1, 1,
         setting("lingering_close", one_of("off", "on", "always"))),
    Spec("lingering_time", HSL, 1, 1, setting("lingering_time", time_arg)),
    Spec("lingering_timeout", HSL, 1, 1, setting("lingering_timeout", time_arg)),
    Spec("reset_timedout_connection", HSL, 1, 1,
         setting("reset_timedout_connection", flag_arg)),
    Spec("chunked_transfer_encoding", HSL, 1, 1,
         setting("chunked_transfer_encoding", flag_arg)),
    Spec("keepalive_disable", HSL, 1, 2, keepalive_disable),
    Spec("http2", HS, 1, 1, setting("http2", flag_arg)),
    Spec("http2_max_concurrent_streams", HS, 1, 1,
         setting("http2_max_concurrent_streams", number_arg)),
    Spec("http2_body_preread_size", HS, 1, 1, setting("http2_body_preread_size", size_arg)),
    Spec("http2_push", HSL, 1, 1, http2_push),
    Spec("http2_push_preload", HSL, 1, 1, setting("http2_push_preload", flag_arg)),
    Spec("http2_max_concurrent_pushes", HS, 1, 1,
         setting("http2_max_concurrent_pushes", number_arg)),
    Spec("client_header_buffer_size", HS, 1, 1,
         setting("client_header_buffer_size", client_header_buffer_size)),
    Spec("large_client_header_buffers", HS, 2, 2,
         setting("large_client_header_buffers", large_client_header_buffers)),
    Spec("underscores_in_headers", HS, 1, 1, setting("underscores_in_headers", flag_arg)),
    Spec("merge_slashes", HS, 1, 1, setting("merge_slashes", flag_arg)),
    Spec("absolute_redirect", HSL, 1, 1, setting("absolute_redirect", flag_arg)),
    Spec("port_in_redirect", HSL, 1, 1, setting("port_in_redirect", flag_arg)),
    Spec("server_name_in_redirect", HSL, 1, 1, setting("server_name_in_redirect", flag_arg)),
    Spec("ignore_invalid_headers", HS, 1, 1, setting("ignore_invalid_headers", flag_arg)),
    Spec("types", HSL, 0, 0, types_block, block=True),
    Spec("default_type", HSL, 1, 1, setting("default_type", lambda ld, d: d.args[0])),
]
