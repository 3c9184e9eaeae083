"""Loading a configuration: parse → walk the directive table → merge → frozen ``Config``.

``load_config(path)`` is the one entry point. It raises ``ConfigError`` (with FILE:LINE
when the error has a place) and nothing else for anything a user can write.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from fastgate.config.context import (
    EVENTS,
    HTTP,
    LOCATION,
    MAIN,
    SERVER,
    Context,
    Level,
    Spec,
    one_server_group,
)
from fastgate.config.directives import TABLE, lookup
from fastgate.config.directives.foreign import foreign_message
from fastgate.config.directives.refused import refused_message
from fastgate.config.errors import ConfigError
from fastgate.config.lookups import Lookup
from fastgate.config.merge import Builder, check_client_certificates, merge, merge_origins
from fastgate.config.model import (
    AccessLog,
    Config,
    JwtCheck,
    LimitZone,
    Listen,
    LogFile,
    LogFormat,
    Mail,
    Root,
    Server,
    Settings,
    Stream,
    Upstream,
    UpstreamTls,
    User,
    Where,
)
from fastgate.config.parser import Directive, parse_file, parse_text
from fastgate.variables import (
    NAMED_CAPTURE,
    Getter,
    Registry,
    Template,
    log_blanks,
    nested_claim,
    set_or,
    user_variable,
)

COMBINED = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
            '"$http_referer" "$http_user_agent"')


# the directives whose regexes nginx compiles with ngx_http_regex_compile: their named
# captures are variables
_CAPTURING = frozenset({"location", "server_name", "if", "rewrite", "proxy_redirect",
                        "proxy_cookie_domain", "proxy_cookie_path", "proxy_cookie_flags"})


class _LateMap:
    """A map's getter before the map is built: maps may use maps defined further down."""

    def __init__(self) -> None:
        self.get: Getter | None = None

    def __call__(self, r: object) -> str:
        assert self.get is not None, "map getter used before the map was built"
        return self.get(r)


class Loader:
    def __init__(self, path: str, prefix: str | None = None) -> None:
        self.path = path
        # relative paths: from the file's directory (keys, certificates, includes: nginx's
        # conf prefix), and for logs and the pid file from -p PREFIX when given (nginx's
        # prefix), else from the file's directory too
        self.base_dir = os.path.dirname(os.path.abspath(path))
        self.prefix_dir = os.path.abspath(prefix) if prefix else self.base_dir
        self.log_files: list[LogFile] = []
        self.temp_dirs: list[tuple[str, Directive]] = []
        self.registry = Registry()
        self.messages: list[str] = []
        self.upstreams: dict[str, Upstream] = {}
        self.upstream_names: set[str] = set()
        self.maps: dict[str, Lookup] = {}
        self._map_directives: dict[str, Directive] = {}
        self._late: dict[str, _LateMap] = {}
        self.log_formats: dict[str, LogFormat] = {}
        self.zones: dict[str, LimitZone] = {}
        self.ocsp_caches: dict[str, int] = {}
        self.claim_vars: set[str] = set()  # auth_jwt_claim_set variables
        self.user_vars: set[str] = set()  # set $name
        self._set_lookups: set[str] = set()  # map variables a set or capture also writes
        # map variables a named capture further down the file took over (nginx's
        # ngx_http_regex_compile gives the variable its own handler: the map never answers)
        self._taken_lookups: set[str] = set()
        self._lookup_at: dict[str, int] = {}  # map variable → its map's place in http
        self._resolved: set[str] = set()  # upstream host names found at load
        self.zone_refs: list[tuple[str, str, Directive]] = []
        self.cache_zones: set[tuple[str, str]] = set()
        self.cache_refs: list[tuple[str, str, Directive]] = []
        self.cluster_refs: list[Directive] = []
        # the charsets named so far, each as it was first written (nginx's charset list:
        # the name a response gets is that spelling)
        self.charset_names: dict[str, str] = {}
        self.sync_refs: list[Directive] = []
        self._wanted_formats: list[tuple[str, Directive]] = []
        # warn_once: what → [its place in messages, count, why, first directive]
        self._once: dict[str, list[Any]] = {}

    # --- helpers the handlers call ---------------------------------------------------------

    def error(self, message: str, file: str | None = None, line: int | None = None) -> ConfigError:
        return ConfigError(message, file, line)

    def warn(self, message: str, d: Directive) -> None:
        self.messages.append(f"[warn] {message} in {d.file}:{d.line}")

    def warn_once(self, what: str, why: str, d: Directive) -> None:
        seen = self._once.get(what)
        if seen is not None:
            seen[1] += 1
            return
        self._once[what] = [len(self.messages), 1, why, d]
        self.messages.append("")  # written when the count is known (build)

    def _write_once(self) -> None:
        for what, (index, count, why, d) in self._once.items():
            times = f" ({count} times)" if count > 1 else ""
            self.messages[index] = f"[warn] {what}{times}: {why} in {d.file}:{d.line}"

    def notice(self, message: str, d: Directive) -> None:
        self.messages.append(f"[notice] {message} in {d.file}:{d.line}")

    def path_of(self, value: str, prefix: bool = False) -> str:
        """A file named in the config, relative to the config file's directory, or with
        ``prefix`` (logs, the pid file) to -p PREFIX."""
        if value in ("stderr", "stdout", "off") or value.startswith("syslog:"):
            return value
        if os.path.isabs(value):
            return value
        return os.path.join(self.prefix_dir if prefix else self.base_dir, value)

    def compile(self, text: str, d: Directive) -> Template:
        return self.registry.compile(text, d)

    def log_format(self, name: str, text: str, escape: str = "default",
                   d: Directive | None = None) -> LogFormat:
        """An access log format: its template, and what its empty values write (the
        maps and sets are known by now: declared before the walk)."""
        found = {n for n in self.registry.defined if n not in self.claim_vars}
        return LogFormat(name, self.registry.compile(text, d), escape,
                         log_blanks(text, found) if escape == "default" else ())

    def declare_maps(self, http: Directive) -> None:
        """Before the http block is walked: its maps' variables and upstream names exist
        wherever they are used, whatever the order in the file (as in nginx)."""
        for at, d in enumerate(http.block or ()):
            if (d.name in ("map", "split_clients") and len(d.args) == 2
                    or d.name == "geo" and len(d.args) in (1, 2)) and d.args[-1].startswith("$"):
                name = d.args[-1][1:].lower()
                if name in self._late:
                    raise d.error(f'duplicate "{d.name}" variable "{name}"')
                if self.registry.is_taken(name):
                    raise d.error(f'the duplicate "{name}" variable')
                late = _LateMap()
                self._late[name] = late
                self._lookup_at[name] = at
                self.registry.define(name, late)
            elif d.name == "upstream" and len(d.args) == 1:
                self.upstream_names.add(d.args[0])
            elif d.name in ("auth_jwt_claim_set", "auth_jwt_header_set") and \
                    len(d.args) >= 2 and d.args[0].startswith("$"):
                name = d.args[0][1:].lower()
                if name in self._late or self.registry.is_taken(name):
                    raise d.error(f'duplicate "{name}" variable')
                self.registry.define(name, nested_claim(d.args[1:],
                                                        d.name == "auth_jwt_header_set"))
                self.claim_vars.add(name)

        for at, d in enumerate(http.block or ()):
            self._declare_sets((d,), at=at)

    def _declare_sets(self, items: Iterable[Directive], in_map: bool = False,
                      at: int = 0) -> None:
        """``set $name``, wherever it is: the variable exists everywhere (as in nginx);
        so does each named capture of a location's, server_name's, if's, rewrite's or
        map key's regex (``(?<name>...)``), which sets it when the regex matches. ``at``:
        the place in the http block of the directive they are in."""
        for d in items:
            texts = (d.name,) if in_map else (
                d.args if d.name in _CAPTURING else ())
            for text in texts:
                for name in NAMED_CAPTURE.findall(text):
                    self._declare_capture(name.lower(), d, at)
            if (d.name in ("set", "auth_request_set") and d.args and d.args[0].startswith("$")
                    and len(d.args[0]) > 1):
                name = d.args[0][1:].lower()
                # $args, $uid_reset, $memcached_key and $limit_rate are nginx's variables
                # a set may change
                if name in self.user_vars or name in ("args", "uid_reset", "memcached_key",
                                                      "limit_rate"):
                    continue
                if name in self._late:  # (nginx's map variables are changeable)
                    self._set_lookups.add(name)
                    continue
                if self.registry.is_taken(name):
                    raise d.error(f'the duplicate "{name}" variable')
                self.user_vars.add(name)
                self.registry.define(name, user_variable(name))
            if d.block:
                self._declare_sets(d.block, d.name == "map", at)

    def _declare_capture(self, name: str, d: Directive, at: int) -> None:
        if name in self.user_vars:
            return  # (a set's, or another regex's: one variable, as nginx's)
        if name in self._late:
            # nginx's capture gives the variable a handler of its own, which the map's
            # replaces only when the map comes later in the file
            if at >= self._lookup_at[name]:
                if name not in self._taken_lookups:
                    self.warn(f'the named capture "{name}" takes the variable over from '
                              f'its map: "${name}" is only what a capture or set gives',
                              d)
                self._taken_lookups.add(name)
            else:
                self._set_lookups.add(name)
            return
        if self.registry.is_taken(name):
            raise d.error(f'the duplicate "{name}" variable')
        self.user_vars.add(name)
        self.registry.define(name, user_variable(name))

    def define_map(self, m: Lookup, d: Directive) -> None:
        self.maps[m.name] = m
        self._map_directives[m.name] = d
        get = m.getter()
        if m.name in self._taken_lookups:
            get = user_variable(m.name)
        elif m.name in self._set_lookups:
            get = set_or(m.name, get)
        self._late[m.name].get = get
        # replace the late-bound getter with the map's own, now that it exists
        self.registry.define(m.name, get)

    def _check_claim_maps(self, dialects: set[str]) -> None:
        """A map over ``$jwt_claim_*``/``$jwt_header_*`` whose keys are written for the
        other form's encoding never matches a string claim: the seed form gives JSON text
        (``"\\"admin\\""``), NGINX Plus's the string itself (``admin``)."""
        for m in self.maps.values():
            source = getattr(m, "source", None)
            exact = getattr(m, "exact", None)
            if source is None or exact is None or not any(
                    v.startswith(("jwt_claim_", "jwt_header_")) or v in self.claim_vars
                    for v in source.variables):
                continue
            d = self._map_directives.get(m.name)
            if d is None:
                continue
            for key in exact:
                quoted = len(key) >= 2 and key[0] == key[-1] == '"'
                if quoted and "plus" in dialects:
                    self.warn(f'map "${m.name}" compares {source.source} with the JSON text '
                              f'{key}: where auth_jwt has NGINX Plus\'s form the claim is '
                              f"{key[1:-1]}, without quotes", d)
                elif not quoted and "seed" in dialects and not _json_scalar(key):
                    self.warn(f'map "${m.name}" compares {source.source} with {key}: where '
                              "auth_jwt has the seed module's form a string claim is JSON text, "
                              f'"\\"{key}\\""', d)

    def reads_jwt(self, variables: frozenset[str], seen: set[str]) -> bool:
        """Whether rendering these variables reads the token: ``$jwt_*``, an
        ``auth_jwt_claim_set`` variable, or a map (through maps) of one."""
        for v in variables:
            low = v.lower()
            if low.startswith("jwt_") or low in self.claim_vars:
                return True
            m = self.maps.get(low)
            if m is not None and low not in seen:
                seen.add(low)
                if any(self.reads_jwt(t.variables, seen) for t in m.templates()):
                    return True
        return False

    def check_host(self, host: str, port: int, text: str, d: Directive) -> None:
        """An upstream server's name must resolve now (the system's resolver, as
        ``nginx -t`` asks it); connections resolve it again when they are made."""
        try:
            ipaddress.ip_address(host)
            return
        except ValueError:
            pass
        if host in self._resolved:
            return
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise d.error(f'host not found in upstream "{text}"') from None
        self._resolved.add(host)

    def implicit_upstream(self, host: str, port: int, d: Directive) -> str:
        return one_server_group(self, host, port, d)

    def require_log_format(self, name: str, d: Directive) -> None:
        self._wanted_formats.append((name, d))

    def default_listen(self) -> Listen:
        return Listen("0.0.0.0", 80)

    # --- the walk ----------------------------------------------------------------------------

    def walk(self, directives: Iterable[Directive], lvl: Level,
             table: dict[str, Spec] = TABLE, ctx: Context | None = None) -> None:
        for d in directives:
            spec = lookup(d.name, table)
            if spec is None:
                if table is not TABLE and lookup(d.name, TABLE) is not None:
                    raise d.error(f'"{d.name}" directive is not allowed here')
                raise d.error(foreign_message(d.name) or refused_message(d.name)
                              or f'unknown directive "{d.name}"')
            if lvl.ctx not in spec.contexts:
                raise d.error(f'"{d.name}" directive is not allowed here')
            if spec.block and d.block is None:
                raise d.error(f'directive "{d.name}" has no opening "{{"')
            if not spec.block and d.block is not None:
                raise d.error(f'directive "{d.name}" is not terminated by ";"')
            n = len(d.args)
            if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
                raise d.error(f'invalid number of arguments in "{d.name}" directive')
            spec.handler(ctx or self, lvl, d)

    def build(self, tree: tuple[Directive, ...]) -> Config:
        self.log_formats["combined"] = self.log_format("combined", COMBINED)
        main = Level(MAIN, None)
        self.walk(_implicit_http(tree), main)
        for name, d in self._wanted_formats:
            if name not in self.log_formats:
                raise d.error(f'unknown log format "{name}"')
        for kind, name, d in self.zone_refs:
            zone = self.zones.get(name)
            if zone is None or zone.kind != kind:
                raise d.error(f'zone "{name}" is unknown')
        for family, name, d in self.cache_refs:
            if (family, name) not in self.cache_zones:
                raise d.error(f'"{d.name}" zone "{name}" is unknown')
        for name, zone in self.zones.items():
            # a key such as $mapped_id, a map of $jwt_claim_sub, reads the token too
            if not zone.uses_jwt and self.reads_jwt(zone.key.variables, set()):
                self.zones[name] = replace(zone, uses_jwt=True)
        http = next((c for c in main.children if c.ctx == HTTP), None)
        events = next((c for c in main.children if c.ctx == EVENTS), None)
        servers: tuple[Server, ...] = ()
        tls_pools: dict[str, tuple[str, UpstreamTls]] = {}
        jwt_checks: tuple[JwtCheck, ...] = ()
        if http is not None:
            # nginx's implicit "access_log logs/access.log combined", where nothing says
            # otherwise; opened (and its directory made) only when some server uses it
            default_log = LogFile(os.path.join(self.prefix_dir, "logs", "access.log"),
                                  Where(self.path, 0), default=True)
            if _default_log_used(http, False):
                self.log_files.insert(0, default_log)
            http_settings = merge(Settings(access_log=(AccessLog(default_log, "combined"),),
                                           root=Root(os.path.join(self.prefix_dir, "html")),
                                           charset_names=dict(self.charset_names)),
                                  http)
            http_origins = merge_origins({}, http)
            builder = Builder(self)
            servers = tuple(builder.server(http_settings, http_origins, s)
                            for s in http.children if s.ctx == SERVER)
            check_client_certificates(servers)
            self._check_claim_maps(builder.dialects)
            tls_pools = builder.tls_pools
            jwt_checks = tuple(builder.jwt_checks.values())
        cluster = http.local.get("fastgate_cluster") if http is not None else None
        if cluster is None and self.cluster_refs:
            d = self.cluster_refs[0]
            raise d.error(f'"{d.name} {" ".join(d.args)}" needs "fastgate_cluster": what it '
                          "reads is shared through the cluster store")
        if cluster is None:
            for d in self.sync_refs:
                self.warn_once('"sync" without "fastgate_cluster"', "the zone is shared by "
                               "this instance's workers only", d)
        for name in self.upstream_names:
            if name not in self.upstreams:  # declared but its block failed: cannot happen
                raise ConfigError(f'upstream "{name}" is not defined')
        stream = main.local.get("stream")
        mail = main.local.get("mail")
        _check_addresses(servers, stream, mail)
        make_temp_dirs(self.temp_dirs, main.local.get("user"))
        self._write_once()  # after the servers are built: they warn too
        return Config(
            path=self.path,
            worker_processes=main.local.get("worker_processes", 1),
            http_engine=main.local.get("http_engine", "auto"),
            worker_connections=(events.local.get("worker_connections", 512)
                                if events is not None else 512),
            error_logs=tuple(main.local.get("error_log") or Config.error_logs),
            log_files=tuple(self.log_files),
            # "pid off": None; unset: beside the file (or in -p PREFIX), named after it
            pid=main.local.get("pid", os.path.join(self.prefix_dir, os.path.splitext(
                os.path.basename(self.path))[0] + ".pid")),
            user=main.local.get("user"),
            worker_shutdown_timeout=main.local.get("worker_shutdown_timeout",
                                                   Config.worker_shutdown_timeout),
            servers=servers,
            upstreams=dict(self.upstreams),
            tls_pools=tls_pools,
            jwt_checks=jwt_checks,
            maps=tuple(self.maps.values()),
            log_formats=dict(self.log_formats),
            zones=dict(self.zones),
            ocsp_caches=dict(self.ocsp_caches),
            cluster=cluster,
            claims=frozenset(self.registry.claims),
            variables=dict(self.registry.defined),
            warnings=tuple(self.messages),
            stream=stream,
            mail=mail,
        )


def _check_addresses(servers: tuple[Server, ...], stream: Stream | None,
                     mail: Mail | None) -> None:
    """A TCP address is HTTP's, the stream block's or the mail block's, not two of
    them (nginx would fail to bind it a second time)."""
    taken = {x.address: "an http server" for s in servers for x in s.listens}
    blocks: list[tuple[str, Any]] = [("a stream server", s) for s in
                                     (stream.servers if stream is not None else ())]
    blocks += [("a mail server", s) for s in (mail.servers if mail is not None else ())]
    for what, s in blocks:
        for x in s.listens:
            if x.udp:
                continue
            if x.address in taken:
                raise ConfigError(f'"{x.written}" is listened on by {taken[x.address]} '
                                  f"and {what}", s.where.file, s.where.line)
        for x in s.listens:
            if not x.udp:
                taken[x.address] = what


def make_temp_dirs(dirs: list[tuple[str, Directive]], user: User | None) -> None:
    """Each ``client_body_temp_path`` made as nginx makes its paths when it loads a
    configuration (``-t`` too): with its parents, mode 0700, the workers' user's when
    ``user`` is set; one that cannot be made or written to is refused at its directive
    rather than found out by the first large upload."""
    for path, d in dirs:
        try:
            os.makedirs(path, 0o700, exist_ok=True)
            if user is not None:
                os.chown(path, user.uid, user.gid)
        except OSError as e:
            raise d.error(f'mkdir() "{path}" failed ({e.errno}: {e.strerror})') from None
        if user is None and not os.access(path, os.W_OK | os.X_OK):
            raise d.error(f'"{path}" is not writable (13: Permission denied)')


def _default_log_used(lvl: Level, set_above: bool) -> bool:
    """Whether a server or location below ``lvl`` inherits no ``access_log``."""
    here = set_above or "access_log" in lvl.fields
    if not here and lvl.ctx in (SERVER, LOCATION):
        return True
    return any(_default_log_used(c, here) for c in lvl.children)


def _implicit_http(tree: tuple[Directive, ...]) -> tuple[Directive, ...]:
    """A file of bare ``server``/``upstream``/``map`` blocks (a conf.d snippet, as the
    seed configurations are written) is read as if inside ``http { }``. A file with its
    own ``http`` block is taken as it is."""
    if any(d.name == "http" for d in tree):
        return tree
    main_names = {name for name, spec in TABLE.items() if MAIN in spec.contexts}
    inner = tuple(d for d in tree if d.name not in main_names)
    if not inner or not any(d.name in ("server", "upstream", "map") for d in inner):
        return tree
    outer = tuple(d for d in tree if d.name in main_names)
    first = inner[0]
    return outer + (Directive("http", (), first.file, first.line, inner),)


def load_config(path: str, prefix: str | None = None, directives: str = "") -> Config:
    """Parse, validate and build the configuration at ``path``; relative paths in it
    are taken from ``prefix`` (``-p``), else from the file's directory; ``directives``
    (``-g``) are main-level directives read before the file's."""
    loader = Loader(path, prefix)
    try:
        given = parse_text(directives, "command line") if directives else ()
        return loader.build(given + parse_file(path))
    except RecursionError:
        raise ConfigError("configuration is nested too deeply", path) from None


def _json_scalar(text: str) -> bool:
    """A number, true, false or null: the same text in both encodings."""
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return not isinstance(value, (str, list, dict))
