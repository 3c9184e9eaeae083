"""The ``stream`` block: nginx's stream modules (core, proxy, upstream, access, log,
map, geo, split_clients, ssl, ssl_preread, return) for proxying TCP connections.

The block is a namespace of its own, as in nginx: its upstream groups, log formats and
variables are not HTTP's, and HTTP's variables (``$uri``, ``$http_*``) are unknown in
it. Its directives are read by the same handlers as their HTTP namesakes where nginx's
modules mean the same (``upstream`` balancing, ``map``, ``geo``, ``log_format``,
``allow``/``deny``, ``ssl_*``) through a ``StreamContext`` that keeps those tables
apart. What nginx's stream modules can do and fastgate's cannot is refused with the
reason (``NOT_DONE``): the pass module (nginx 1.25's)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from fastgate.config.context import (
    STREAM,
    STREAM_SERVER,
    STREAM_UPSTREAM,
    Context,
    Level,
    Spec,
    one_server_group,
    unix_group,
)
from fastgate.config.directives import (
    access,
    geo,
    geoip,
    limits,
    log,
    maps,
    realip,
    resolver,
    tls,
    upstream,
)
from fastgate.config.directives.args import (
    flag_arg,
    ignored,
    listen_address,
    number_arg,
    refuse_reuseport_on_socket,
    size_arg,
    time_arg,
)
from fastgate.config.directives.proxy import tls_specs
from fastgate.config.errors import ConfigError
from fastgate.config.lookups import Lookup
from fastgate.config.model import (
    LimitZone,
    Listen,
    LogFile,
    LogFormat,
    Settings,
    SetVar,
    Stream,
    StreamServer,
    Upstream,
    Where,
)
from fastgate.config.parser import Directive
from fastgate.config.tls import TlsError, server_context, upstream_context, upstream_tls
from fastgate.config.values import parse_host_port, parse_number
from fastgate.variables import (
    STREAM_BUILTIN,
    Getter,
    StreamRegistry,
    Template,
    set_or,
    user_variable,
)

SM = frozenset({STREAM})
SS = frozenset({STREAM_SERVER})
SMS = frozenset({STREAM, STREAM_SERVER})
SU = frozenset({STREAM_UPSTREAM})

# nginx stream directives fastgate does not do, with why (a config that needs one fails
# at load with this, never runs without it)
NOT_DONE: dict[str, str] = {
    "pass": "fastgate's stream proxy does not hand connections to other listeners",
}


class StreamContext:
    """The loader as the stream block's handlers see it: messages, paths and log files
    are the loader's; upstream groups, log formats and variables are the block's own."""

    def __init__(self, ld: Context) -> None:
        self.ld = ld
        self.registry = StreamRegistry()
        self.upstreams: dict[str, Upstream] = {}
        self.upstream_names: set[str] = set()
        self.log_formats: dict[str, LogFormat] = {}
        self.maps: dict[str, Lookup] = {}
        self._set_lookups: set[str] = set()  # map variables a server's set also writes
        self._wanted_formats: list[tuple[str, Directive]] = []
        self.cluster_refs: list[Directive] = []
        self.sync_refs: list[Directive] = []
        # the loader's own objects, shared: files are opened once, zones and caches are
        # one shared-memory namespace, as nginx's
        self.log_files: list[LogFile] = ld.log_files
        self.temp_dirs: list[tuple[str, Directive]] = ld.temp_dirs
        self.zones: dict[str, LimitZone] = ld.zones
        self.zone_refs: list[tuple[str, str, Directive]] = ld.zone_refs  # (checked at the end)
        self.cache_zones: set[tuple[str, str]] = ld.cache_zones
        self.cache_refs: list[tuple[str, str, Directive]] = ld.cache_refs
        self.ocsp_caches: dict[str, int] = ld.ocsp_caches
        self.charset_names: dict[str, str] = ld.charset_names

    def error(self, message: str, file: str | None = None,
              line: int | None = None) -> ConfigError:
        return self.ld.error(message, file, line)

    def warn(self, message: str, d: Directive) -> None:
        self.ld.warn(message, d)

    def notice(self, message: str, d: Directive) -> None:
        self.ld.notice(message, d)

    def warn_once(self, what: str, why: str, d: Directive) -> None:
        self.ld.warn_once(what, why, d)

    def path_of(self, value: str, prefix: bool = False) -> str:
        return self.ld.path_of(value, prefix)

    def check_host(self, host: str, port: int, text: str, d: Directive) -> None:
        self.ld.check_host(host, port, text, d)

    # the block's own
    def compile(self, text: str, d: Directive) -> Template:
        return self.registry.compile(text, d)

    def log_format(self, name: str, text: str, escape: str = "default",
                   d: Directive | None = None) -> LogFormat:
        """The block's values say themselves that they are found though empty
        (``variables.Found``): any other empty one writes "-"."""
        template = self.registry.compile(text, d)
        getters = sum(not isinstance(p, str) for p in template.parts)
        return LogFormat(name, template, escape,
                         (b"-",) * getters if escape == "default" else ())

    def declare_maps(self, block: Directive) -> None:
        """Before the walk: the block's map variables and upstream names exist wherever
        they are used, whatever the order in the file (as in nginx); a server's ``set``
        may write a map's variable (nginx's are changeable)."""
        for d in block.block or ():
            if (d.name in ("map", "split_clients") and len(d.args) == 2
                    or d.name == "geo" and len(d.args) in (1, 2)) and d.args[-1].startswith("$"):
                name = d.args[-1][1:].lower()
                if name in self.registry.defined:
                    raise d.error(f'duplicate "{d.name}" variable "{name}"')
                self.registry.define(name, _Late(name, self.maps, self._set_lookups))
            elif d.name == "upstream" and len(d.args) == 1:
                self.upstream_names.add(d.args[0])
        for d in block.block or ():
            if d.name != "server":
                continue
            for e in d.block or ():
                if e.name == "set" and e.args and e.args[0].startswith("$") \
                        and len(e.args[0]) > 1:
                    name = e.args[0][1:].lower()
                    known = self.registry.defined.get(name)
                    if isinstance(known, _SetGetter):
                        continue  # (several servers may set it)
                    if isinstance(known, _Late):
                        self._set_lookups.add(name)
                        continue
                    if known is not None or name in STREAM_BUILTIN:
                        raise e.error(f'the duplicate "{name}" variable')
                    self.registry.define(name, _SetGetter(name))

    def define_map(self, m: Lookup, d: Directive) -> None:
        self.maps[m.name] = m
        self.registry.define(m.name, _getter(m, self._set_lookups))

    def implicit_upstream(self, host: str, port: int, d: Directive) -> str:
        return one_server_group(self, host, port, d)

    def require_log_format(self, name: str, d: Directive) -> None:
        self._wanted_formats.append((name, d))

    def default_listen(self) -> Listen:
        raise AssertionError("a stream server has no default listen")

    def walk(self, directives: Iterable[Directive], lvl: Level,
             table: dict[str, Spec] | None = None, ctx: Context | None = None) -> None:
        table = STREAM_TABLE if table is None else table
        items = tuple(directives)
        for d in items:
            if d.name in table:
                continue
            if d.name in NOT_DONE:
                raise d.error(f'"{d.name}" directive is not done in fastgate\'s stream '
                              f"block: {NOT_DONE[d.name]}")
            if d.name not in STREAM_TABLE and d.name not in UPSTREAM_TABLE:
                # (HTTP's directives are not looked at in the stream block, as nginx's)
                raise d.error(f'unknown directive "{d.name}"')
        self.ld.walk(items, lvl, table, ctx or self)

    def build(self, top: Level) -> Stream:
        if self.sync_refs:
            raise self.sync_refs[0].error('"sync" is not done in the stream block: its zones '
                                          "are shared by this instance's workers only")
        for name, d in self._wanted_formats:
            if name not in self.log_formats:
                raise d.error(f'unknown log format "{name}"')
        for name in self.upstream_names:
            if name not in self.upstreams:
                raise ConfigError(f'upstream "{name}" is not defined')
        names = {f.name for f in dataclasses.fields(Settings)}
        servers = []
        seen: dict[tuple[str, int, bool], Directive] = {}
        for lvl in top.children:
            if lvl.ctx != STREAM_SERVER:
                continue
            server = _server(self, top, lvl, names)
            for listen in server.listens:
                key = (listen.host, listen.port, listen.udp)
                d = lvl.local["listen_at"][key]
                if key in seen:
                    raise d.error(f'duplicate "{listen.written}" address and '
                                  "port pair")
                seen[key] = d
            servers.append(server)
        return Stream(tuple(servers), dict(self.upstreams), dict(self.log_formats))


class _SetGetter:
    """``$name`` as a stream server's ``set`` gave it (empty until then)."""

    def __init__(self, name: str) -> None:
        self.get = user_variable(name)

    def __call__(self, r: object) -> str:
        return self.get(r)


class _Late:
    """A map's getter before the map is built: maps may use maps defined further down."""

    def __init__(self, name: str, maps: dict[str, Lookup], set_lookups: set[str]) -> None:
        self.name = name
        self.maps = maps
        self.set_lookups = set_lookups
        self.get: Getter | None = None  # the map's own, once it is built and first used

    def __call__(self, r: object) -> str:
        get = self.get
        if get is None:
            get = self.get = _getter(self.maps[self.name], self.set_lookups)
        return get(r)


def _getter(m: Lookup, set_lookups: set[str]) -> Getter:
    """A map's getter; the set's value first where a server's ``set`` writes it."""
    get = m.getter()
    return set_or(m.name, get) if m.name in set_lookups else get


def _server(sc: StreamContext, top: Level, lvl: Level, names: set[str]) -> StreamServer:
    d = lvl.directive
    assert d is not None
    listens: tuple[Listen, ...] = lvl.local.get("listen", ())
    if not listens:
        raise d.error('no "listen" is defined for server')
    handler = lvl.local.get("handler")
    if handler is None:
        raise d.error("no handler for server")
    fields = {**top.fields, **lvl.fields}
    own = {**top.local.get("stream", {}), **lvl.local.get("stream", {})}
    settings = dataclasses.replace(
        Settings(), **{k: v for k, v in fields.items() if k in names})
    if any(x.ssl for x in listens):
        try:
            server_context(settings)
        except TlsError as e:
            at = lvl.origins.get(e.directive) or top.origins.get(e.directive) \
                or lvl.local.get("ssl_listen") or d
            raise at.error(e.message) from None
    if own.get("proxy_ssl"):
        def blame(directive: str) -> Directive:
            return (lvl.origins.get(directive) or top.origins.get(directive)
                    or lvl.local.get("handler") or d)

        if settings.proxy_ssl_verify and settings.proxy_ssl_trusted_certificate is None:
            raise blame("proxy_ssl_verify").error(
                "no proxy_ssl_trusted_certificate for proxy_ssl_verify")  # (nginx's words)
        try:  # what OpenSSL would refuse, known now
            upstream_context(upstream_tls(settings, "check"))
        except TlsError as e:
            raise blame(e.directive).error(e.message) from None
    return StreamServer(
        listens=listens, settings=settings, where=Where(d.file, d.line),
        proxy_pass=lvl.local.get("proxy_pass"), upstream=lvl.local.get("upstream"),
        return_value=lvl.local.get("return"), access_log=settings.access_log or (), **own)


# --- handlers --------------------------------------------------------------------------------


def stream_block(ld: Context, lvl: Level, d: Directive) -> None:
    if "stream" in lvl.local:
        raise d.error('"stream" directive is duplicate')
    sc = StreamContext(ld)
    sc.declare_maps(d)
    top = Level(STREAM, d, parent=lvl)
    sc.walk(d.block or (), top)
    lvl.local["stream"] = sc.build(top)


def server_block(ld: Context, lvl: Level, d: Directive) -> None:
    child = Level(STREAM_SERVER, d, parent=lvl)
    lvl.children.append(child)
    ld.walk(d.block or (), child)


def upstream_block(ld: Context, lvl: Level, d: Directive) -> None:
    name = d.args[0]
    if name in ld.upstreams:
        raise d.error(f'duplicate upstream "{name}"')
    up = Level(STREAM_UPSTREAM, d, parent=lvl)
    ld.walk(d.block or (), up, UPSTREAM_TABLE)
    servers = up.local.get("servers", ())
    if not servers:
        raise d.error(f'no servers are inside upstream "{name}"')
    balance = up.local.get("balance")
    if balance is not None and balance.method != "least_conn" and any(s.backup for s in servers):
        raise d.error('balancing method does not support parameter "backup"')
    ld.upstreams[name] = Upstream(name, servers, keepalive=0, balance=balance)


def upstream_server(ld: Context, lvl: Level, d: Directive) -> None:
    upstream.add_server(ld, lvl, d, None)


def listen(ld: Context, lvl: Level, d: Directive) -> None:
    host, port = listen_address(ld, d, d.args[0], None)
    params: dict[str, Any] = {}
    for arg in d.args[1:]:
        if arg in ("ssl", "reuseport", "proxy_protocol"):
            params[arg] = True
            if arg == "ssl":
                lvl.local.setdefault("ssl_listen", d)
        elif arg.startswith("backlog="):
            params["backlog"] = parse_number(d, arg[8:], minimum=1)
        elif arg == "udp":
            params["udp"] = True
        elif arg == "bind" or arg.startswith(("ipv6only=", "so_keepalive=", "rcvbuf=",
                                               "sndbuf=", "fastopen=")):
            ld.warn_once(f'the "{arg.partition("=")[0]}" parameter of "listen" is ignored',
                         "fastgate's listening sockets take the system defaults", d)
        else:
            raise d.error(f'invalid parameter "{arg}"')
    if params.get("udp"):
        for other in ("ssl", "proxy_protocol"):  # (nginx's words)
            if params.get(other):
                raise d.error(f'"{other}" parameter is incompatible with "udp"')
    if port == 0 and params.get("udp"):
        raise d.error('"udp" on a unix socket is not done in fastgate\'s stream block: '
                      "its datagram sockets are UDP's")
    if params.get("reuseport"):
        refuse_reuseport_on_socket(d, port)
    entry = Listen(host or "0.0.0.0", port, **params)
    lvl.local["listen"] = lvl.local.get("listen", ()) + (entry,)
    lvl.local.setdefault("listen_at", {})[entry.host, entry.port, entry.udp] = d


def _handler(lvl: Level, d: Directive) -> None:
    """proxy_pass and return are the server's content handler: one of them, once."""
    if "handler" in lvl.local:
        raise d.error(f'"{d.name}" directive is duplicate')
    lvl.local["handler"] = d


def proxy_pass(ld: Context, lvl: Level, d: Directive) -> None:
    _handler(lvl, d)
    text = d.args[0]
    template = ld.compile(text, d)
    if not template.is_literal:
        lvl.local["proxy_pass"] = template
        return
    if text in ld.upstream_names:
        lvl.local["upstream"] = text
        return
    if text.startswith("unix:"):
        if not text[5:]:
            raise d.error(f'no path in the unix domain socket in upstream "{text}"')
        lvl.local["upstream"] = unix_group(ld, ld.path_of(text[5:]))
        return
    host, _, port = text.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()):
        raise d.error(f'no port in upstream "{text}"')
    host, number = parse_host_port(d, text, None)
    lvl.local["upstream"] = ld.implicit_upstream(host, number, d)


def set_variable(ld: Context, lvl: Level, d: Directive) -> None:
    """``set $name value`` (nginx's stream set module, in the pre-access phase)."""
    name = d.args[0]
    if not name.startswith("$") or len(name) < 2:
        raise d.error(f'invalid variable name "{name}"')
    stream = lvl.local.setdefault("stream", {})
    stream["sets"] = stream.get("sets", ()) + (SetVar(name[1:].lower(),
                                                      ld.compile(d.args[1], d)),)


def return_text(ld: Context, lvl: Level, d: Directive) -> None:
    _handler(lvl, d)
    lvl.local["return"] = ld.compile(d.args[0], d)


def own(name: str, parse: Callable[[Context, Directive], Any]) -> Any:
    """A stream setting inherited from the block by its servers (not HTTP's Settings)."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        lvl.once(d)
        lvl.local.setdefault("stream", {})[name] = parse(ld, d)

    return handle


def access_log(ld: Context, lvl: Level, d: Directive) -> None:
    if d.args[0] != "off" and len(d.args) < 2:
        raise d.error("log format is not specified")  # nginx's stream log: no "combined"
    log.access_log(ld, lvl, d)


def _positive(ld: Context, d: Directive) -> float:
    value = time_arg(ld, d)
    if value <= 0:
        raise d.error(f'invalid value "{d.args[0]}"')
    return value


def _rate(ld: Context, d: Directive) -> Template | None:
    """A rate that may hold variables (nginx's complex value size); one without them is
    checked now, and 0 is no limit."""
    template = ld.compile(d.args[0], d)
    if template.is_literal and not size_arg(ld, d):
        return None
    return template


def _in_stream(specs: Iterable[Spec], contexts: frozenset[str]) -> list[Spec]:
    return [dataclasses.replace(s, contexts=contexts) for s in specs]


_TLS = ("ssl_certificate", "ssl_certificate_key", "ssl_password_file", "ssl_protocols",
        "ssl_ciphers", "ssl_prefer_server_ciphers", "ssl_session_tickets", "ssl_conf_command",
        "ssl_ecdh_curve", "ssl_dhparam", "ssl_session_cache", "ssl_session_timeout",
        "ssl_verify_client", "ssl_client_certificate", "ssl_trusted_certificate",
        "ssl_verify_depth", "ssl_crl", "ssl_session_ticket_key")
_IGNORED = "fastgate's stream proxy reads and writes as the connections allow"

SPECS = [Spec("stream", frozenset({"main"}), 0, 0, stream_block, block=True)]

STREAM_TABLE: dict[str, Spec] = {s.name: s for s in [
    Spec("server", SM, 0, 0, server_block, block=True),
    Spec("upstream", SM, 1, 1, upstream_block, block=True),
    Spec("listen", SS, 1, None, listen),
    Spec("proxy_pass", SS, 1, 1, proxy_pass),
    Spec("return", SS, 1, 1, return_text),
    Spec("set", SS, 2, 2, set_variable),
    Spec("proxy_connect_timeout", SMS, 1, 1, own("connect_timeout", _positive)),
    Spec("proxy_timeout", SMS, 1, 1, own("timeout", _positive)),
    Spec("proxy_next_upstream", SMS, 1, 1, own("next_upstream", flag_arg)),
    Spec("proxy_next_upstream_tries", SMS, 1, 1, own("next_upstream_tries", number_arg)),
    Spec("proxy_next_upstream_timeout", SMS, 1, 1, own("next_upstream_timeout", time_arg)),
    Spec("proxy_protocol", SMS, 1, 1, own("send_proxy_protocol", flag_arg)),
    Spec("proxy_half_close", SMS, 1, 1, own("half_close", flag_arg)),
    Spec("proxy_ssl", SMS, 1, 1, own("proxy_ssl", flag_arg)),
    *_in_stream(tls_specs("proxy"), SMS),
    Spec("tcp_nodelay", SMS, 1, 1, own("tcp_nodelay", flag_arg)),
    Spec("proxy_requests", SMS, 1, 1, own("proxy_requests", number_arg)),
    Spec("proxy_responses", SMS, 1, 1, own("proxy_responses", number_arg)),
    Spec("proxy_upload_rate", SMS, 1, 1, own("upload_rate", _rate)),
    Spec("proxy_download_rate", SMS, 1, 1, own("download_rate", _rate)),
    Spec("ssl_preread", SMS, 1, 1, own("preread", flag_arg)),
    Spec("preread_timeout", SMS, 1, 1, own("preread_timeout", time_arg)),
    Spec("preread_buffer_size", SMS, 1, 1, own("preread_buffer_size", size_arg)),
    Spec("proxy_protocol_timeout", SMS, 1, 1, own("proxy_protocol_timeout", _positive)),
    Spec("ssl_handshake_timeout", SMS, 1, 1, own("ssl_handshake_timeout", _positive)),
    Spec("proxy_buffer_size", SMS, 1, 1, ignored(_IGNORED)),
    # (nginx's deprecated names for proxy_buffer_size)
    Spec("proxy_downstream_buffer", SMS, 1, 1, ignored(_IGNORED)),
    Spec("proxy_upstream_buffer", SMS, 1, 1, ignored(_IGNORED)),
    Spec("ssl_alpn", SMS, 1, None, own("alpn", lambda ld, d: tuple(d.args))),
    Spec("proxy_bind", SMS, 1, 2, ignored("connections to upstream servers go from the "
                                          "system's choice of address")),
    Spec("proxy_socket_keepalive", SMS, 1, 1, ignored("upstream sockets take the system "
                                                      "defaults")),
    Spec("error_log", SMS, 1, 2, ignored("the stream block logs to the main error_log")),
    *_in_stream(resolver.SPECS, SMS),
    *_in_stream((s for s in geoip.SPECS
                 if s.name in ("geoip_country", "geoip_city", "geoip_org")), SM),
    Spec("variables_hash_max_size", SM, 1, 1, ignored("fastgate's variables need no hash")),
    Spec("variables_hash_bucket_size", SM, 1, 1,
         ignored("fastgate's variables need no hash")),
    Spec("map_hash_max_size", SM, 1, 1, ignored("fastgate's maps need no hash")),
    Spec("map_hash_bucket_size", SM, 1, 1, ignored("fastgate's maps need no hash")),
    Spec("log_format", SM, 2, None, log.log_format),
    Spec("access_log", SMS, 1, None, access_log),
    Spec("open_log_file_cache", SMS, 1, 4, ignored("log files stay open")),
    *_in_stream((s for s in maps.SPECS if s.name == "map"), SM),
    *_in_stream((s for s in geo.SPECS if s.name in ("geo", "split_clients")), SM),
    *_in_stream((s for s in access.SPECS if s.name in ("allow", "deny")), SMS),
    *_in_stream((s for s in realip.SPECS if s.name == "set_real_ip_from"), SMS),
    *_in_stream((s for s in limits.SPECS if s.name == "limit_conn_zone"), SM),
    *_in_stream((s for s in limits.SPECS if s.name in ("limit_conn", "limit_conn_log_level",
                                                        "limit_conn_dry_run")), SMS),
    *(tls.beside_http(s, SMS) for s in tls.SPECS if s.name in _TLS),
]}

UPSTREAM_TABLE: dict[str, Spec] = {s.name: s for s in [
    Spec("server", SU, 1, None, upstream_server),
    *_in_stream((s for s in upstream.UPSTREAM_TABLE.values()
                 if s.name in ("least_conn", "hash", "random")), SU),
    Spec("zone", SU, 1, 2, ignored("each worker balances on its own")),
]}

__all__ = ["NOT_DONE", "SPECS", "STREAM_TABLE", "StreamContext"]
