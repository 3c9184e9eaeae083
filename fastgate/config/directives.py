"""The directive table: one entry per directive — where it may appear, how many
arguments it takes, and the handler that turns its arguments into typed values on the
level being built (nginx's ``ngx_command_t``).

Handlers write into a ``Level``; inheritance between levels happens later, in one
place (``fastgate.config.merge``).
"""

from __future__ import annotations

import grp
import math
import os
import pwd
import re
from collections.abc import Callable
from typing import Any

from fastgate.config.context import (
    ANY_HTTP,
    EVENTS,
    HS,
    HSL,
    HTTP,
    LOCATION,
    MAIN,
    SERVER,
    SL,
    UPSTREAM,
    Context,
    Handler,
    Level,
    Spec,
)
from fastgate.config.errors import ConfigError
from fastgate.config.model import (
    AccessLog,
    ErrorLogFile,
    ErrorPage,
    Expires,
    LimitConn,
    LimitReq,
    LimitZone,
    Listen,
    LogFile,
    LogFormat,
    ProxyPass,
    Require,
    Return,
    Syslog,
    TryFiles,
    Upstream,
    UpstreamServer,
    User,
    Where,
)
from fastgate.config.parser import Directive
from fastgate.config.regex import compile_regex
from fastgate.config.values import (
    parse_code,
    parse_flag,
    parse_host_port,
    parse_number,
    parse_size,
    parse_time,
)
from fastgate.errors import KeyLoadError
from fastgate.jwt import ALGORITHMS, HMACKey, key_from_value, keys_from_file
from fastgate.variables import Map, MapRegex, Template

# --- generic handlers -------------------------------------------------------------------


def setting(name: str, parse: Callable[[Context, Directive], Any]) -> Handler:
    """A value set once per level and inherited (``Settings.<name>``)."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        lvl.once(d)
        lvl.fields[name] = parse(ld, d)

    return handle


def appending(name: str, parse: Callable[[Context, Directive], Any]) -> Handler:
    """A list built from every occurrence at one level; an inner level that has any
    replaces the outer list entirely (nginx's rule for proxy_set_header, add_header...)."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        lvl.origins.setdefault(d.name, d)
        lvl.fields[name] = lvl.fields.get(name, ()) + (parse(ld, d),)

    return handle


def ignored(why: str) -> Handler:
    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        ld.warn(f'"{d.name}" directive is ignored: {why}', d)

    return handle


def streaming(ld: Context, lvl: Level, d: Directive) -> None:
    """Buffering knobs: fastgate always streams bodies both ways, which is what "off"
    asks for (silent); anything else has no effect and says so."""
    if d.args != ("off",):
        ld.warn(f'"{d.name}" directive is ignored: fastgate streams request and response '
                "bodies without buffering them", d)


def expires_arg(ld: Context, d: Directive) -> Expires | None:
    """``expires off|epoch|max|[-]TIME`` (ngx_http_headers_filter_module)."""
    if len(d.args) > 1 or d.args[0].startswith(("@", "$")) or d.args[0] == "modified":
        # what these need (the time of day, a variable read from the response, the
        # file's date) fastgate does not have: refused rather than half done
        raise d.error(f'"expires {" ".join(d.args)}" is not supported: give "off", '
                      '"epoch", "max" or a time')
    value = d.args[0]
    if value == "off":
        return None
    if value in ("epoch", "max"):
        return Expires(value)
    if value.startswith("-"):
        return Expires("after", -parse_time(d, value[1:]))
    return Expires("after", parse_time(d, value))


def time_arg(ld: Context, d: Directive) -> float:
    return parse_time(d, d.args[0])


def size_arg(ld: Context, d: Directive) -> int:
    return parse_size(d, d.args[0])


def flag_arg(ld: Context, d: Directive) -> bool:
    return parse_flag(d, d.args[0])


def number_arg(ld: Context, d: Directive) -> int:
    return parse_number(d, d.args[0])


# --- main and events ----------------------------------------------------------------------


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
    if d.args[0] not in ("auto", "h11", "httptools"):
        raise d.error(f'invalid value "{d.args[0]}" in "http_engine" directive, '
                      'it must be "auto", "h11" or "httptools"')
    lvl.local["http_engine"] = d.args[0]


def set_worker_connections(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    lvl.local["worker_connections"] = parse_number(d, d.args[0], minimum=1)


LOG_LEVELS = ("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg")


SYSLOG_FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp", "clock",
    "authpriv", "ftp", "ntp", "audit", "alert", "cron", "local0", "local1", "local2",
    "local3", "local4", "local5", "local6", "local7")
# syslog's order (0 is emerg), nginx's names
SYSLOG_SEVERITIES = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")
_TAG = re.compile(r"[A-Za-z0-9_]{1,32}")


def parse_syslog(d: Directive, text: str) -> Syslog:
    """``ngx_syslog_parse_args``: the part after ``syslog:``."""
    server: tuple[str, int] | str | None = None
    facility, severity, tag, hostname = 23, 6, "fastgate", True
    for item in text.split(",") if text else ():
        if item.startswith("server="):
            addr = item[7:]
            if addr.startswith("unix:"):
                server = addr[5:]
                if not server:
                    raise d.error(f'no path in "{item}"')
            else:
                server = parse_host_port(d, addr, 514)
        elif item.startswith("facility="):
            if item[9:] not in SYSLOG_FACILITIES:
                raise d.error(f'unknown syslog facility "{item[9:]}"')
            facility = SYSLOG_FACILITIES.index(item[9:])
        elif item.startswith("severity="):
            if item[9:] not in SYSLOG_SEVERITIES:
                raise d.error(f'unknown syslog severity "{item[9:]}"')
            severity = SYSLOG_SEVERITIES.index(item[9:])
        elif item.startswith("tag="):
            if not _TAG.fullmatch(item[4:]):
                raise d.error('syslog "tag" only allows alphanumeric characters and '
                              'underscore, 32 at most')
            tag = item[4:]
        elif item == "nohostname":
            hostname = False
        else:
            raise d.error(f'unknown syslog parameter "{item}"')
    if server is None:
        raise d.error("no syslog server specified")
    return Syslog(server, facility, severity, tag, hostname)


def log_file(ld: Context, d: Directive, text: str) -> LogFile:
    """The first argument of ``error_log``/``access_log``, recorded so that every log
    is opened (and any that cannot be is refused) before the gateway starts."""
    where = Where(d.file, d.line)
    if text.startswith("syslog:"):
        f = LogFile(text, where, parse_syslog(d, text[7:]))
    else:
        f = LogFile(ld.path_of(text, prefix=True), where)
    ld.log_files.append(f)
    return f


def set_error_log(ld: Context, lvl: Level, d: Directive) -> None:
    level = d.args[1] if len(d.args) > 1 else "error"
    if level not in LOG_LEVELS:
        raise d.error(f'invalid log level "{level}"')
    if lvl.ctx == MAIN:
        # several may be given (nginx 1.5.2+): each file gets the lines of its level up
        lvl.local.setdefault("error_log", []).append(
            ErrorLogFile(log_file(ld, d, d.args[0]), level))
    else:
        ld.warn('"error_log" below the main level is ignored: fastgate keeps one error '
                "log per process", d)


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


def set_pid(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    lvl.local["pid"] = None if d.args[0] == "off" else ld.path_of(d.args[0], prefix=True)


def load_module(ld: Context, lvl: Level, d: Directive) -> None:
    ld.notice(f'"load_module {d.args[0]}" ignored: fastgate needs no module for JWT', d)


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


# --- http: upstream, map, log_format -------------------------------------------------------


def upstream_block(ld: Context, lvl: Level, d: Directive) -> None:
    name = d.args[0]
    if name in ld.upstreams:
        raise d.error(f'duplicate upstream "{name}"')
    up = Level(UPSTREAM, d, parent=lvl)
    ld.walk(d.block or (), up, table=UPSTREAM_TABLE)
    servers = up.local.get("servers", ())
    if not servers:
        raise d.error(f'no servers are inside upstream "{name}"')
    ld.upstreams[name] = Upstream(
        name, servers,
        keepalive=up.local.get("keepalive", 32),
        keepalive_timeout=up.local.get("keepalive_timeout", 60.0),
        keepalive_requests=up.local.get("keepalive_requests", 1000),
    )


def upstream_server(ld: Context, lvl: Level, d: Directive) -> None:
    host, port = parse_host_port(d, d.args[0], 80)
    if not host:
        raise d.error(f'invalid host in upstream "{d.args[0]}"')
    params: dict[str, Any] = {}
    for arg in d.args[1:]:
        key, eq, value = arg.partition("=")
        if key == "weight" and eq:
            params["weight"] = parse_number(d, value, minimum=1)
        elif key == "max_fails" and eq:
            params["max_fails"] = parse_number(d, value)
        elif key == "fail_timeout" and eq:
            params["fail_timeout"] = parse_time(d, value)
        elif arg == "backup":
            params["backup"] = True
        elif arg == "down":
            params["down"] = True
        else:
            raise d.error(f'invalid parameter "{arg}"')
    lvl.local["servers"] = lvl.local.get("servers", ()) + (UpstreamServer(host, port, **params),)


def upstream_number(name: str) -> Handler:
    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        lvl.once(d)
        lvl.local[name] = parse_number(d, d.args[0])

    return handle


def upstream_time(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    lvl.local["keepalive_timeout"] = parse_time(d, d.args[0])


def map_block(ld: Context, lvl: Level, d: Directive) -> None:
    src, name = d.args
    if not name.startswith("$") or len(name) < 2:
        raise d.error(f'invalid variable name "{name}"')
    source = ld.compile(src, d)
    exact: dict[str, Template] = {}
    regexes: list[MapRegex] = []
    heads: list[tuple[str, Template]] = []
    tails: list[tuple[str, Template]] = []
    default: Template | None = None
    hostnames = False
    for e in d.block or ():
        if e.block is not None:
            raise e.error('unexpected "{"')
        if e.name in ("hostnames", "volatile") and not e.args:
            hostnames = hostnames or e.name == "hostnames"
            continue
        if len(e.args) != 1:
            raise e.error("invalid number of the map parameters")
        value = ld.compile(e.args[0], e)
        key = e.name
        if key == "default":
            if default is not None:
                raise e.error('duplicate default map parameter')
            default = value
        elif key.startswith("~"):
            caseless = key.startswith("~*")
            try:
                rx = compile_regex(key[2:] if caseless else key[1:], caseless)
            except ConfigError as err:
                raise e.error(err.message) from None
            regexes.append(MapRegex(rx, value))
        elif hostnames and (key.startswith("*.") or key.startswith(".")):
            suffix = key[1:].lower()
            heads.append((suffix, value))
            if key.startswith("."):
                exact.setdefault(suffix[1:], value)
        elif hostnames and key.endswith(".*"):
            tails.append((key[:-1].lower(), value))
        else:
            low = (key[1:] if key.startswith("\\") else key).lower()
            if low in exact:
                raise e.error(f'duplicate map key "{key}"')
            exact[low] = value
    m = Map(
        name[1:].lower(), source, exact, tuple(regexes), default or ld.compile("", d),
        hostnames,
        tuple(sorted(heads, key=lambda kv: len(kv[0]), reverse=True)),
        tuple(sorted(tails, key=lambda kv: len(kv[0]), reverse=True)),
    )
    ld.define_map(m, d)


def log_format(ld: Context, lvl: Level, d: Directive) -> None:
    name = d.args[0]
    args = list(d.args[1:])
    escape = "default"
    if args and args[0].startswith("escape="):
        escape = args.pop(0)[7:]
        if escape not in ("default", "json", "none"):
            raise d.error(f'unknown log format escaping "{escape}"')
    if not args:
        raise d.error('invalid number of arguments in "log_format" directive')
    if name in ld.log_formats:
        raise d.error(f'duplicate "log_format" name "{name}"')
    ld.log_formats[name] = LogFormat(name, ld.compile("".join(args), d), escape)


# --- server --------------------------------------------------------------------------------


def server_block(ld: Context, lvl: Level, d: Directive) -> None:
    if d.args:
        raise d.error('invalid number of arguments in "server" directive')
    child = Level(SERVER, d, parent=lvl)
    lvl.children.append(child)
    ld.walk(d.block or (), child)


_PORT_RANGE = re.compile(r"(?P<head>.*?)(?P<low>\d+)-(?P<high>\d+)")


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
    host, port = parse_host_port(d, address, 80)
    params: dict[str, Any] = {}
    for arg in d.args[1:]:
        if arg in ("ssl", "reuseport", "default_server"):
            params[arg] = True
        elif arg == "default":
            params["default_server"] = True
        elif arg.startswith("backlog="):
            params["backlog"] = parse_number(d, arg[8:], minimum=1)
        elif arg in ("http2", "deferred", "bind", "so_keepalive=on", "fastopen"):
            ld.warn(f'the "{arg}" parameter of "listen" is ignored', d)
        else:
            raise d.error(f'invalid parameter "{arg}"')
    entries = tuple(Listen(host or "0.0.0.0", p, **params) for p in (ports or (port,)))
    lvl.local["listen"] = lvl.local.get("listen", ()) + entries


def server_name(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.local["server_name"] = lvl.local.get("server_name", ()) + tuple(a.lower() for a in d.args)


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
    if not pattern:
        raise d.error('invalid number of arguments in "location" directive')
    if modifier == "@" and lvl.ctx != SERVER:
        raise d.error(f'named location "{pattern}" can be on the server level only')
    parent_loc = lvl.local.get("location") if lvl.ctx == LOCATION else None
    if parent_loc is not None:
        pmod, ppat = parent_loc
        if pmod == "@":
            raise d.error(f'location "{pattern}" could not be inside the named location "{ppat}"')
        if pmod == "=":
            raise d.error(f'location "{pattern}" could not be inside the exact location "{ppat}"')
        if modifier in ("", "^~", "=") and pmod in ("", "^~") and not pattern.startswith(ppat):
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


def set_return(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    first = d.args[0]
    if len(d.args) == 1 and not first.isdigit():
        if not first.startswith(("http://", "https://", "$scheme")):
            raise d.error(f'invalid return code "{first}"')
        lvl.local["return"] = Return(302, ld.compile(first, d))
        return
    if not first.isdigit() or int(first) > 999:
        raise d.error(f'invalid return code "{first}"')
    text = ld.compile(d.args[1], d) if len(d.args) > 1 else None
    lvl.local["return"] = Return(int(first), text)


def set_try_files(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    last = d.args[-1]
    if last.startswith("="):
        lvl.local["try_files"] = TryFiles(parse_code(d, last[1:], 0, 999), None)
    else:
        lvl.local["try_files"] = TryFiles(None, last)
    ld.warn('"try_files" checks no files in fastgate (it serves none): the last '
            "argument always applies", d)


def set_proxy_pass(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    url = d.args[0]
    if "$" in url:
        raise d.error('variables in "proxy_pass" are not supported')
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise d.error(f'invalid URL prefix in "{url}"')
    hostport, slash, path = rest.partition("/")
    uri = "/" + path if slash else None
    if not hostport:
        raise d.error(f'no host in "{url}" of the "proxy_pass" directive')
    modifier = lvl.local.get("location", ("", ""))[0]
    if uri is not None and (modifier in ("~", "~*", "@") or
                            lvl.ctx != LOCATION):
        raise d.error('"proxy_pass" cannot have URI part in location given by regular '
                      'expression, or inside named location, or inside "if" statement, '
                      'or inside "limit_except" block')
    default_port = 443 if scheme == "https" else 80
    if ":" not in hostport.lstrip("[").split("]")[-1] and hostport in ld.upstream_names:
        group = hostport
    else:
        host, port = parse_host_port(d, hostport, default_port)
        group = ld.implicit_upstream(host, port, d)
    lvl.local["proxy_pass"] = ProxyPass(scheme, group, hostport, uri)


def set_status_page(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    lvl.local["status_page"] = True


# --- http/server/location settings ---------------------------------------------------------


def auth_jwt(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    value = d.args[0]
    if not value:
        raise d.error("JWT: Invalid value")
    if value in ("on", "off"):
        lvl.fields["auth_jwt"] = value
        lvl.fields["auth_jwt_source"] = None
        lvl.fields["auth_jwt_source_var"] = None
        return
    if not value.startswith("$"):
        raise d.error(f"JWT: Invalid variable name {value}")
    lvl.fields["auth_jwt"] = "var"
    lvl.fields["auth_jwt_source"] = ld.compile(value, d)
    m = _SOURCE_VAR.fullmatch(value)
    lvl.fields["auth_jwt_source_var"] = (
        (m.group(1), m.group(2).lower()) if m is not None else None)


_SOURCE_VAR = re.compile(r"\$\{?(http|cookie|arg)_([A-Za-z0-9_]+)\}?")


# the fields that together make a level's key set
KEY_FIELDS = ("auth_jwt_key", "auth_jwt_key_file", "auth_jwt_key_request")


def _own_keys(lvl: Level, name: str, value: Any) -> None:
    """A level that names keys replaces the outer levels' key set as a whole (nginx's
    merge: an inner directive wins): a location with its own JWKS must not also accept
    tokens signed with a server-level secret. Keys named at the same level add up."""
    for other in KEY_FIELDS:
        lvl.fields.setdefault(other, None if other == "auth_jwt_key_request" else ())
    lvl.fields[name] = value


def _file_keys(ld: Context, d: Directive, path: str) -> tuple[Any, ...]:
    try:
        keys = keys_from_file(ld.path_of(path))
    except KeyLoadError as e:
        raise d.error(str(e)) from None
    if len(keys) == 1 and isinstance(keys[0], HMACKey) and len(keys[0].secret) < 32:
        ld.warn(f'JWT: key file "{path}" is read as an HMAC secret of '
                f"{len(keys[0].secret)} bytes, shorter than HS256's 32-byte hash output", d)
    return keys


def auth_jwt_key(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    value = d.args[0]
    encoding = d.args[1] if len(d.args) > 1 else "utf8"
    if encoding == "file":
        _own_keys(lvl, "auth_jwt_key", _file_keys(ld, d, value))
        return
    if encoding not in ("utf8", "hex", "base64"):
        raise d.error(f'JWT: invalid key encoding "{encoding}" (utf8, hex, base64 or file)')
    if not value:
        raise d.error("JWT: Invalid key")
    if encoding == "hex" and len(value) % 2:
        raise d.error("JWT: Invalid hex string")
    try:
        key = key_from_value(value, encoding)
    except KeyLoadError:
        what = "hex" if encoding == "hex" else "base64"
        raise d.error(f"JWT: Failed to turn {what} key into binary") from None
    _own_keys(lvl, "auth_jwt_key", (key,))


def auth_jwt_key_file(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    _own_keys(lvl, "auth_jwt_key_file", _file_keys(ld, d, d.args[0]))


def auth_jwt_key_request(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    _own_keys(lvl, "auth_jwt_key_request", key_request_url(ld, d))


def auth_jwt_alg(ld: Context, d: Directive) -> str:
    value = d.args[0]
    if value != "any" and value not in ALGORITHMS:
        raise d.error(f'invalid value "{value}"')
    return value


def auth_jwt_require(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    status = 401
    values = []
    n = len(d.args)
    for i, arg in enumerate(d.args):
        if arg.startswith("error="):
            if i != n - 1:
                raise d.error(f"{arg} must be the last element of jwt_auth_require directive")
            if i == 0:
                raise d.error(f"{arg} cannot be the single element of jwt_auth_require directive")
            code = arg[6:]
            if not code.isdigit():
                raise d.error(f"failed to parse error code {code}")
            if int(code) not in (401, 403):
                raise d.error(f"invalid error code {int(code)}")
            status = int(code)
            continue
        if not arg.startswith("$"):
            raise d.error(f'invalid variable name "{arg}"')
        values.append(ld.compile(arg, d))
    lvl.fields["auth_jwt_require"] = Require(tuple(values), status)


def key_request_url(ld: Context, d: Directive) -> str:
    url = d.args[0]
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or rest.startswith("/"):
        raise d.error(f'invalid URL "{url}" in "auth_jwt_key_request" directive '
                      "(http:// or https:// with a host)")
    return url


def strings(ld: Context, d: Directive) -> tuple[str, ...]:
    return d.args


def claim_set(ld: Context, lvl: Level, d: Directive) -> None:
    # the variable itself is defined before the walk (Loader.declare_maps), so it can be
    # used anywhere in http; here only the form is checked
    if not d.args[0].startswith("$") or len(d.args[0]) < 2:
        raise d.error(f'invalid variable name "{d.args[0]}"')


MIN_ZONE = 32 * 1024


def _zone_arg(d: Directive, arg: str) -> tuple[str, int]:
    spec = arg[5:]
    name, colon, size_text = spec.partition(":")
    if not name or not colon:
        raise d.error(f'invalid zone size "{arg}"')
    size = parse_size(d, size_text)
    if size < MIN_ZONE:
        raise d.error(f'zone "{name}" is too small')
    return name, size


def limit_zone(kind: str) -> Handler:
    """``limit_req_zone KEY zone=NAME:SIZE rate=R`` and ``limit_conn_zone KEY zone=NAME:SIZE``."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        key = ld.compile(d.args[0], d)
        name = size = None
        rate = 0
        for arg in d.args[1:]:
            if arg.startswith("zone="):
                name, size = _zone_arg(d, arg)
            elif arg.startswith("rate=") and kind == "req":
                m = re.fullmatch(r"rate=(\d+)r/([sm])", arg)
                if m is None or int(m.group(1)) == 0:
                    raise d.error(f'invalid rate "{arg}"')
                rate = int(m.group(1)) * 1000 // (1 if m.group(2) == "s" else 60)
                rate = max(rate, 1)
            elif arg == "sync" and kind == "req":
                continue  # nginx Plus cluster sync: the zone is already shared by workers
            else:
                raise d.error(f'invalid parameter "{arg}"')
        if name is None or size is None:
            raise d.error(f'"{d.name}" must have "zone" parameter')
        if kind == "req" and not rate:
            raise d.error(f'"{d.name}" must have "rate" parameter')
        if name in ld.zones:
            raise d.error(f'duplicate zone "{name}"')
        uses_jwt = any(v.lower().startswith("jwt_") for v in key.variables)
        ld.zones[name] = LimitZone(name, kind, key, size, rate, uses_jwt)

    return handle


def limit_req(ld: Context, d: Directive) -> LimitReq:
    zone = None
    burst = 0
    delay: int | None = 0
    for arg in d.args:
        if arg.startswith("zone="):
            zone = arg[5:]
        elif arg.startswith("burst="):
            burst = parse_number(d, arg[6:])
        elif arg == "nodelay":
            delay = None
        elif arg.startswith("delay="):
            delay = parse_number(d, arg[6:])
        else:
            raise d.error(f'invalid parameter "{arg}"')
    if not zone:
        raise d.error(f'"{d.name}" must have "zone" parameter')
    ld.zone_refs.append(("req", zone, d))
    return LimitReq(zone, burst * 1000, None if delay is None else delay * 1000)


def limit_conn(ld: Context, d: Directive) -> LimitConn:
    ld.zone_refs.append(("conn", d.args[0], d))
    return LimitConn(d.args[0], parse_number(d, d.args[1], minimum=1))


def status_code(ld: Context, d: Directive) -> int:
    return parse_code(d, d.args[0], 400, 599)


def log_level(ld: Context, d: Directive) -> str:
    if d.args[0] not in ("info", "notice", "warn", "error"):
        raise d.error(f'invalid value "{d.args[0]}" in "{d.name}" directive')
    return d.args[0]


def auth_jwt_cache(ld: Context, d: Directive) -> int:
    return 0 if d.args[0] == "off" else parse_number(d, d.args[0])


def proxy_set_header(ld: Context, d: Directive) -> tuple[str, Template]:
    name = d.args[0]
    _check_header_name(d, name)
    return (name, ld.compile(d.args[1], d))


def add_header(ld: Context, d: Directive) -> tuple[str, Template, bool]:
    name = d.args[0]
    _check_header_name(d, name)
    always = False
    if len(d.args) == 3:
        if d.args[2] != "always":
            raise d.error(f'invalid parameter "{d.args[2]}"')
        always = True
    return (name, ld.compile(d.args[1], d), always)


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789"
                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _check_header_name(d: Directive, name: str) -> None:
    # RFC 9110 section 5.1: a field name is a token
    if not name or not set(name) <= _TOKEN_CHARS:
        raise d.error(f'invalid header name "{name}"')


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
            override = parse_code(d, eq[1:], 0, 999) if eq[1:].isdigit() else None
            if override is None:
                raise d.error(f'invalid value "{eq}"')
    if not args:
        raise d.error('invalid number of arguments in "error_page" directive')
    page = ErrorPage(target, ld.compile(target, d), override, keep)
    lvl.origins.setdefault(d.name, d)
    pages = lvl.fields.get("error_page", ())
    for a in args:
        code = parse_code(d, a, 300, 599)
        pages = pages + ((code, page),)
    lvl.fields["error_page"] = pages


def keepalive_timeout(ld: Context, d: Directive) -> float:
    return parse_time(d, d.args[0])


def large_client_header_buffers(ld: Context, d: Directive) -> tuple[int, int]:
    return (parse_number(d, d.args[0], minimum=1), parse_size(d, d.args[1]))


def proxy_http_version(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    if d.args[0] not in ("1.0", "1.1"):
        raise d.error(f'invalid value "{d.args[0]}" in "proxy_http_version" directive')
    if d.args[0] == "1.0":
        ld.warn('"proxy_http_version 1.0" is ignored: fastgate speaks HTTP/1.1 to '
                "upstreams, with keep-alive", d)


NEXT_UPSTREAM = frozenset({"error", "timeout", "invalid_header", "http_500", "http_502",
                           "http_503", "http_504", "http_403", "http_404", "http_429",
                           "non_idempotent", "off"})


def proxy_next_upstream(ld: Context, d: Directive) -> tuple[str, ...]:
    for a in d.args:
        if a not in NEXT_UPSTREAM:
            raise d.error(f'invalid value "{a}"')
    if "off" in d.args:
        return ()
    return d.args


def access_log(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.origins.setdefault(d.name, d)
    if d.args[0] == "off":
        if len(d.args) > 1:
            raise d.error('invalid number of arguments in "access_log" directive')
        lvl.fields["access_log"] = ()
        return
    fmt = d.args[1] if len(d.args) > 1 else "combined"
    buffer, flush, condition = 0, 0.0, None
    for extra in d.args[2:]:
        if extra.startswith("buffer="):
            buffer = parse_size(d, extra[7:])
            if buffer == 0:
                raise d.error(f'invalid buffer size "{extra[7:]}"')
        elif extra.startswith("flush="):
            flush = parse_time(d, extra[6:])
            if flush == 0:
                raise d.error(f'invalid flush time "{extra[6:]}"')
        elif extra == "gzip" or extra.startswith("gzip="):
            ld.warn('"gzip" of "access_log" is ignored: lines are written uncompressed', d)
        elif extra.startswith("if="):
            condition = ld.compile(extra[3:], d)
        else:
            raise d.error(f'invalid parameter "{extra}"')
    f = log_file(ld, d, d.args[0])
    if f.syslog is not None and (buffer or flush):
        raise d.error("logs to syslog cannot be buffered")
    if flush and not buffer:
        buffer = 64 * 1024  # as nginx: flush= alone buffers 64k
    ld.require_log_format(fmt, d)
    entry = AccessLog(f, fmt, condition, buffer, flush)
    lvl.fields["access_log"] = lvl.fields.get("access_log") or ()
    lvl.fields["access_log"] = lvl.fields["access_log"] + (entry,)


SSL_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


def ssl_protocols(ld: Context, d: Directive) -> tuple[str, ...]:
    for a in d.args:
        if a not in SSL_PROTOCOLS:
            raise d.error(f'invalid value "{a}"')
    return d.args


def path_arg(ld: Context, d: Directive) -> str:
    return ld.path_of(d.args[0])


# --- the table -----------------------------------------------------------------------------

NO_FILES = "fastgate serves no static files"

_SPECS = [
    # main
    Spec("worker_processes", frozenset({MAIN}), 1, 1, set_worker_processes),
    Spec("http_engine", frozenset({MAIN}), 1, 1, set_http_engine),
    Spec("error_log", ANY_HTTP, 1, 2, set_error_log),
    Spec("pid", frozenset({MAIN}), 1, 1, set_pid),
    Spec("load_module", frozenset({MAIN}), 1, 1, load_module),
    Spec("user", frozenset({MAIN}), 1, 2, set_user),
    Spec("events", frozenset({MAIN}), 0, 0, block(EVENTS), block=True),
    Spec("http", frozenset({MAIN}), 0, 0, block(HTTP), block=True),
    Spec("worker_connections", frozenset({EVENTS}), 1, 1, set_worker_connections),
    # http
    Spec("server", frozenset({HTTP}), 0, 0, server_block, block=True),
    Spec("upstream", frozenset({HTTP}), 1, 1, upstream_block, block=True),
    Spec("map", frozenset({HTTP}), 2, 2, map_block, block=True),
    Spec("log_format", frozenset({HTTP}), 2, None, log_format),
    # server
    Spec("listen", frozenset({SERVER}), 1, None, listen),
    Spec("server_name", frozenset({SERVER}), 1, None, server_name),
    Spec("location", SL, 1, 2, location_block, block=True),
    Spec("return", SL, 1, 2, set_return),
    Spec("try_files", SL, 2, None, set_try_files),
    Spec("proxy_pass", frozenset({LOCATION}), 1, 1, set_proxy_pass),
    Spec("fastgate_status", frozenset({LOCATION}), 0, 0, set_status_page),
    # the JWT module and its extensions
    Spec("auth_jwt", HSL, 1, 1, auth_jwt),
    Spec("auth_jwt_key", HSL, 1, 2, auth_jwt_key),
    Spec("auth_jwt_key_file", HSL, 1, 1, auth_jwt_key_file),
    Spec("auth_jwt_alg", HSL, 1, 1, setting("auth_jwt_alg", auth_jwt_alg)),
    Spec("auth_jwt_require", HSL, 1, None, auth_jwt_require),
    Spec("auth_jwt_leeway", HSL, 1, 1, setting("auth_jwt_leeway", time_arg)),
    Spec("auth_jwt_options", HSL, 1, 1, setting("auth_jwt_options", flag_arg)),
    Spec("auth_jwt_cache", HSL, 1, 1, setting("auth_jwt_cache", auth_jwt_cache)),
    Spec("auth_jwt_key_request", HSL, 1, 1, auth_jwt_key_request),
    Spec("auth_jwt_key_request_interval", HSL, 1, 1,
         setting("auth_jwt_key_request_interval", time_arg)),
    Spec("auth_jwt_issuer", HSL, 1, None, setting("auth_jwt_issuer", strings)),
    Spec("auth_jwt_audience", HSL, 1, None, setting("auth_jwt_audience", strings)),
    Spec("auth_jwt_claim_set", frozenset({HTTP}), 2, None, claim_set),
    # proxy
    Spec("proxy_set_header", HSL, 2, 2, appending("proxy_set_header", proxy_set_header)),
    Spec("proxy_http_version", HSL, 1, 1, proxy_http_version),
    Spec("proxy_connect_timeout", HSL, 1, 1, setting("proxy_connect_timeout", time_arg)),
    Spec("proxy_read_timeout", HSL, 1, 1, setting("proxy_read_timeout", time_arg)),
    Spec("proxy_send_timeout", HSL, 1, 1, setting("proxy_send_timeout", time_arg)),
    Spec("proxy_next_upstream", HSL, 1, None, setting("proxy_next_upstream", proxy_next_upstream)),
    Spec("proxy_next_upstream_tries", HSL, 1, 1, setting("proxy_next_upstream_tries", number_arg)),
    Spec("proxy_buffering", HSL, 1, 1, streaming),
    Spec("proxy_request_buffering", HSL, 1, 1, streaming),
    Spec("proxy_buffers", HSL, 2, 2, streaming),
    Spec("proxy_buffer_size", HSL, 1, 1, streaming),
    # rate and connection limits (before the access phase, as in nginx)
    Spec("limit_req_zone", frozenset({HTTP}), 3, 4, limit_zone("req")),
    Spec("limit_conn_zone", frozenset({HTTP}), 2, 2, limit_zone("conn")),
    Spec("limit_req", HSL, 1, 3, appending("limit_req", limit_req)),
    Spec("limit_req_status", HSL, 1, 1, setting("limit_req_status", status_code)),
    Spec("limit_req_log_level", HSL, 1, 1, setting("limit_req_log_level", log_level)),
    Spec("limit_req_dry_run", HSL, 1, 1, setting("limit_req_dry_run", flag_arg)),
    Spec("limit_conn", HSL, 2, 2, appending("limit_conn", limit_conn)),
    Spec("limit_conn_status", HSL, 1, 1, setting("limit_conn_status", status_code)),
    Spec("limit_conn_log_level", HSL, 1, 1, setting("limit_conn_log_level", log_level)),
    Spec("limit_conn_dry_run", HSL, 1, 1, setting("limit_conn_dry_run", flag_arg)),
    # responses and limits
    Spec("add_header", HSL, 2, 3, appending("add_header", add_header)),
    Spec("error_page", HSL, 2, None, error_page),
    Spec("client_max_body_size", HSL, 1, 1, setting("client_max_body_size", size_arg)),
    Spec("client_header_timeout", HS, 1, 1, setting("client_header_timeout", time_arg)),
    Spec("client_body_timeout", HSL, 1, 1, setting("client_body_timeout", time_arg)),
    Spec("send_timeout", HSL, 1, 1, setting("send_timeout", time_arg)),
    Spec("expires", HSL, 1, 2, setting("expires", expires_arg)),
    Spec("keepalive_timeout", HSL, 1, 2, setting("keepalive_timeout", keepalive_timeout)),
    Spec("keepalive_requests", HSL, 1, 1, setting("keepalive_requests", number_arg)),
    Spec("keepalive_time", HSL, 1, 1, setting("keepalive_time", time_arg)),
    Spec("client_header_buffer_size", HS, 1, 1, ignored(
        "a request head is read into one buffer bounded by large_client_header_buffers")),
    Spec("server_names_hash_bucket_size", frozenset({HTTP}), 1, 1, ignored(
        "fastgate's server name table needs no sizing")),
    Spec("server_names_hash_max_size", frozenset({HTTP}), 1, 1, ignored(
        "fastgate's server name table needs no sizing")),
    Spec("large_client_header_buffers", HS, 2, 2,
         setting("large_client_header_buffers", large_client_header_buffers)),
    Spec("underscores_in_headers", HS, 1, 1, setting("underscores_in_headers", flag_arg)),
    Spec("merge_slashes", HS, 1, 1, setting("merge_slashes", flag_arg)),
    Spec("ignore_invalid_headers", HS, 1, 1, setting("ignore_invalid_headers", flag_arg)),
    Spec("access_log", HSL, 1, None, access_log),
    # TLS
    Spec("ssl_certificate", HS, 1, 1, setting("ssl_certificate", path_arg)),
    Spec("ssl_certificate_key", HS, 1, 1, setting("ssl_certificate_key", path_arg)),
    Spec("ssl_protocols", HS, 1, None, setting("ssl_protocols", ssl_protocols)),
    # accepted and ignored, so that real nginx configs load unchanged
    Spec("sendfile", HSL, 1, 1, ignored(NO_FILES)),
    Spec("tcp_nopush", HSL, 1, 1, ignored(NO_FILES)),
    Spec("tcp_nodelay", HSL, 1, 1, ignored("fastgate always sets TCP_NODELAY")),
    Spec("types", HSL, 0, 0, ignored(NO_FILES), block=True),
    Spec("default_type", HSL, 1, 1, ignored(NO_FILES)),
    Spec("charset", HSL, 1, 1, ignored(NO_FILES)),
    Spec("server_tokens", HSL, 1, 1, ignored("fastgate sends no Server version")),
    Spec("root", HSL, 1, 1, ignored(NO_FILES)),
    Spec("index", HSL, 1, None, ignored(NO_FILES)),
]

TABLE: dict[str, Spec] = {s.name: s for s in _SPECS}

# gzip, gzip_types, gzip_proxied, gzip_vary, gzip_comp_level...: any gzip* directive
GZIP = Spec("gzip*", HSL, 0, None, ignored("fastgate does not compress responses"))

UPSTREAM_TABLE: dict[str, Spec] = {s.name: s for s in [
    Spec("server", frozenset({UPSTREAM}), 1, None, upstream_server),
    Spec("keepalive", frozenset({UPSTREAM}), 1, 1, upstream_number("keepalive")),
    Spec("keepalive_requests", frozenset({UPSTREAM}), 1, 1, upstream_number("keepalive_requests")),
    Spec("keepalive_timeout", frozenset({UPSTREAM}), 1, 1, upstream_time),
]}


def lookup(name: str, table: dict[str, Spec]) -> Spec | None:
    spec = table.get(name)
    if spec is None and table is TABLE and name.startswith("gzip"):
        return GZIP
    return spec
