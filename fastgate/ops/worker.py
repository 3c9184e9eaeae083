"""What one serving process owns for one configuration: upstream groups and pools, logs,
counters, the server table per listening address. No module-level state: everything a
request touches hangs off this object."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import replace
from typing import Any

from fastgate._wire import HttpDate, normal_host, split_target
from fastgate.config.hostnames import HostTable
from fastgate.config.model import Config, Listen, Server, Settings
from fastgate.config.regex import compile_regex
from fastgate.http.engine import ProtocolError, RequestHead, UnreadLine
from fastgate.http.engines import resolve
from fastgate.http.handler import ClientSide
from fastgate.http.http2 import Http2Connection, Http2Limits, Preface
from fastgate.http.ocsp import FAILED as OCSP_FAILED
from fastgate.http.ocsp import OcspChecker, OcspError
from fastgate.http.server import ClientConnection
from fastgate.http.tcp import TcpEnd
from fastgate.http.udp import UdpPort
from fastgate.http.uri import parse_target_fully
from fastgate.openssl import OcspPolicy
from fastgate.ops.cluster import ClusterLink
from fastgate.ops.cluster_limits import LimitSync
from fastgate.ops.dispatch import AddressHandler, Completion
from fastgate.ops.jwks import remote_sources
from fastgate.ops.limit_table import LimitTable
from fastgate.ops.logs import AccessLogs, ErrorLog
from fastgate.ops.stats import Stats
from fastgate.ops.zones import Zones, ZoneTables
from fastgate.proxy import charset
from fastgate.proxy.auth_jwt import build_verifiers
from fastgate.proxy.mail import Mails, MailSession
from fastgate.proxy.phases import Phases
from fastgate.proxy.request import Request
from fastgate.proxy.revocation import Denylist
from fastgate.proxy.status import SPECIAL, error_body, reason
from fastgate.proxy.steps import DONE, TAKEN, Outcome
from fastgate.proxy.stream import Session, Streams
from fastgate.proxy.upstream import build_groups
from fastgate.variables import set_named_captures

# how often deadlines (header, keep-alive, lingering, upstream read) are checked: a
# timeout fires up to this much late
CLOCK_TICK = 0.25


def stream_listens(config: Config) -> list[Listen]:
    """The stream block's listening addresses (each is one server's)."""
    if config.stream is None:
        return []
    return [x for s in config.stream.servers for x in s.listens]


def mail_listens(config: Config) -> list[Listen]:
    """The mail block's listening addresses (each is one server's)."""
    if config.mail is None:
        return []
    return [x for s in config.mail.servers for x in s.listens]


def kinded_listens(config: Config) -> list[tuple[Listen, str]]:
    """Every listening address with whose it is: "http", "stream" or "mail"."""
    return [*((x, "http") for x in listens(config)),
            *((x, "stream") for x in stream_listens(config)),
            *((x, "mail") for x in mail_listens(config))]


def listens(config: Config) -> list[Listen]:
    """One listening address each, as the configuration's servers name them (``ssl``,
    ``proxy_protocol`` and ``http2`` on any listen of an address apply to all of it, as
    nginx)."""
    seen: dict[tuple[str, int], Listen] = {}
    for s in config.servers:
        for listen in s.listens:
            prev = seen.get(listen.address)
            if prev is None:
                seen[listen.address] = listen
                continue
            kept = listen if listen.ssl and not prev.ssl else prev
            if listen.proxy_protocol != prev.proxy_protocol:
                kept = replace(kept, proxy_protocol=True)
            if listen.http2 != prev.http2:
                kept = replace(kept, http2=True)
            seen[listen.address] = kept
    return list(seen.values())


def http2_limits(settings: Settings) -> Http2Limits:
    """An http2 address's limits: its default server's, as nginx takes them."""
    count, size = settings.large_client_header_buffers
    return Http2Limits(max_concurrent_streams=settings.http2_max_concurrent_streams,
                       preread_size=settings.http2_body_preread_size,
                       max_header_list=count * size, idle_timeout=settings.keepalive_timeout,
                       max_requests=settings.keepalive_requests,
                       max_pushes=settings.http2_max_concurrent_pushes)


class ServerTable:
    """Servers sharing one listening address, chosen by Host as nginx does: exact name,
    longest leading wildcard, longest trailing wildcard, first regex, else default."""

    def __init__(self, servers: list[Server], port: int) -> None:
        self.default = next((s for s in servers for listen in s.listens
                             if listen.port == port and listen.default_server), servers[0])
        # the request line is parsed before the Host header picks a server: nginx
        # takes merge_slashes from the address's default server
        self.merge_slashes = self.default.settings.merge_slashes
        self.names: HostTable[Server] = HostTable(
            (name, s) for s in servers for name in s.server_names if not name.startswith("~"))
        self.regexes = [(compile_regex(name[1:], True), s) for s in servers
                        for name in s.server_names if name.startswith("~")]
        # a regex name with captures sets them when it picks its server, as variables
        # and as $1... (``server_name ~^(?<sub>.+)\.example\.com$; root /srv/$sub;``,
        # nginx's ``server_name ~^(www\.)?(.+)$; root /sites/$2;``): then the Host is
        # matched even when one server is all there is (``named``)
        self.named = any(rx.groups for rx, _ in self.regexes)
        self.only = servers[0] if len(servers) == 1 and not self.named else None

    def select(self, host: str) -> Server:
        if self.only is not None:  # one server on the address: every name is its
            return self.only
        if not host:
            # (no Host, HTTP/1.0: nginx looks "" up as a name — a server without
            # server_name has it, as `server_name ""` gives it — else the default)
            return self.names.exact.get("", self.default)
        exact = self.names.exact.get(host)  # the common case, without a call
        if exact is not None:
            return exact
        found = self.names.find(host)
        if found is not None:
            return found[0]
        for rx, srv in self.regexes:
            if rx.search(host):
                return srv
        return self.default

    def select_named(self, req: Any) -> Server:
        """``select``, for an address whose regex names have captures: the one that
        picks the server sets them on ``req``."""
        host = req.host
        if host and self.names.exact.get(host) is None and self.names.find(host) is None:
            for rx, srv in self.regexes:
                m = rx.search(host)
                if m is not None:
                    set_named_captures(req, m)
                    req.captures = (m.group(0), *m.groups())
                    return srv
        return self.select(host)


class Worker:

    def __init__(self, config: Config, engine: str | None = None,
                 stats: Stats | None = None, zones: ZoneTables | None = None) -> None:
        self.config = config
        # limit zones by name; a worker without a master makes its own
        self.zones = zones if zones is not None else Zones().for_config(config)
        self.engine_name = resolve(engine or config.http_engine)
        self.groups = build_groups(config.upstreams, self.engine_name, config.tls_pools)
        self.log = ErrorLog(config.error_logs)
        self.access = AccessLogs(config.log_formats, self.log)
        self.stats = stats if stats is not None else Stats()
        # ConnectionObserver.idle: the counters' C method itself, twice per request
        self.idle = self.stats.idle
        self.verifiers = build_verifiers(config.jwt_checks)
        # the cluster's revocation list, this worker's copy, kept current by its link
        self.denylist = Denylist()
        self.cluster = (ClusterLink(config.cluster, self.denylist, self.log, self.stats,
                                    LimitSync(config.zones, self.zones, self.zones.instance))
                        if config.cluster is not None else None)
        # callback exchanges in flight (their deadlines); proxy_pass's holds it from here
        self.exchanges: set[Any] = set()
        # the Date of every response: a C method, called without a Python frame
        self.http_date = HttpDate().now
        self.phases = Phases(self)
        # once a response is written: counted, logged, the connection freed (compiled)
        self.complete = Completion(self.stats, self.access,
                                   self.phases.mirror.post_action).complete
        self.connections: set[ClientConnection] = set()
        # ssl_ocsp: each policy's checker (its answers kept in the shared ssl_ocsp_cache)
        self.ocsp: dict[OcspPolicy, OcspChecker] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._clock: asyncio.TimerHandle | None = None
        self._connection_ids = 0
        self._last_full_alert = 0.0
        self.stopping = False
        by_addr: dict[tuple[str, int], list[Server]] = {}
        for s in config.servers:
            for listen in s.listens:
                by_addr.setdefault(listen.address, []).append(s)
        # (each address's ServerTable is its handler's vhosts)
        self.handlers = {addr: AddressHandler(self, ServerTable(servers, addr[1]))
                         for addr, servers in by_addr.items()}
        self.remote = remote_sources(self)
        self.remote_of = {v: src for src in self.remote.values() for v in src.verifiers()}
        # the stream block: its sessions, and their log (its formats are the block's own)
        self.streams = (Streams(config.stream, self, config.zones)
                        if config.stream is not None else None)
        self.stream_access = (AccessLogs(config.stream.log_formats, self.log)
                              if config.stream is not None else None)
        self.mails = Mails(config.mail, self) if config.mail is not None else None
        self.sessions: set[Session | MailSession] = set()

    async def start(self, previous: Worker | None = None) -> None:
        """Before serving: remote key sets, carried over from the configuration this one
        replaces where the URL is the same, else fetched (for at most 3 s); the
        revocation list, from the previous worker's copy and the store (waiting at most
        the store's timeout)."""
        for url, src in self.remote.items():
            if previous is not None and url in previous.remote:
                src.adopt(previous.remote[url])
        pending = [src.first_fetch(3.0) for src in self.remote.values()]
        if self.cluster is not None:
            if previous is not None:
                self.denylist.adopt(previous.denylist)
            self.cluster.start()
            pending.append(self.cluster.first_load())
        if pending:
            await asyncio.gather(*pending)

    # --- what the connection asks ------------------------------------------------------------

    def listens(self) -> list[Listen]:
        return listens(self.config)

    def stream_listens(self) -> list[Listen]:
        return self.streams.listens() if self.streams is not None else []

    def stream_session(self, listen: Listen) -> TcpEnd:
        assert self.streams is not None
        return self.streams.accept(listen)

    def mail_session(self, listen: Listen, starttls: ssl.SSLContext | None) -> TcpEnd:
        """A mail client on ``listen``; ``starttls``: the context of its STARTTLS."""
        assert self.mails is not None
        return self.mails.accept(listen, starttls)

    def stream_port(self, listen: Listen) -> UdpPort:
        assert self.streams is not None
        return self.streams.port(listen)

    # --- the StreamHost of every stream session ------------------------------------------

    def stream_admit(self) -> bool:
        return self.admit()

    def stream_zone(self, name: str) -> LimitTable:
        return self.zones[name]

    def stream_limited(self, zone: str) -> None:
        self.stats.limit_rejected(self.zones.rejected[zone])

    def stream_error(self, level: str, message: str, connection: int = 0) -> None:
        """A stream or mail session's line; ``connection``: its number (nginx's ``*N``)."""
        self.log.write(level, f"*{connection} {message}" if connection else message)

    def stream_logged(self, session: Session) -> None:
        entries = session.server.access_log
        if entries and self.stream_access is not None:
            self.stream_access.write(entries, session)

    def stream_opened(self, session: Session | MailSession) -> int:
        self.sessions.add(session)
        self.stats.connection(+1)
        return self.next_connection_id()

    def stream_closed(self, session: Session | MailSession) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            self.stats.connection(-1)

    def default_settings(self, listen: Listen) -> Settings:
        vhosts: ServerTable = self.handlers[listen.address].vhosts
        return vhosts.default.settings

    def connection(self, listen: Listen) -> asyncio.Protocol:
        """A client connection on ``listen`` (the protocol factory of its server). On a
        cleartext http2 address its first bytes choose HTTP/2 or HTTP/1.1 (``Preface``);
        over TLS, ALPN chooses when the handshake ends."""
        settings = self.default_settings(listen)
        http2 = None
        if listen.http2:
            limits = http2_limits(settings)
            http2 = lambda outer: Http2Connection(outer, limits)  # noqa: E731
        conn = ClientConnection(self.handlers[listen.address], self, settings,
                                self.engine_name, listen.ssl, listen.port,
                                listen.proxy_protocol, http2)
        if listen.http2 and not listen.ssl:
            return Preface(conn)
        return conn

    # --- the clock: one periodic check of every deadline, instead of a timer per request

    def start_clock(self) -> None:
        if self._clock is None:
            self._clock = asyncio.get_running_loop().call_later(CLOCK_TICK, self._tick)

    def stop_clock(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            self._clock = None

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for item in [x for x in (*self.connections, *self.exchanges)
                     if 0.0 < x.deadline <= now]:
            item.expire()
        for group in self.groups.values():
            for peer in group.peers:
                peer.expire_idle(now)
        self._clock = loop.call_later(CLOCK_TICK, self._tick)

    def next_connection_id(self) -> int:
        self._connection_ids += 1
        return self._connection_ids

    def admit(self) -> bool:
        """nginx's worker_connections: past the limit, a new connection is closed at once
        (fastgate counts client connections and stream sessions; upstream ones are
        bounded by the pools)."""
        if len(self.connections) + len(self.sessions) < self.config.worker_connections:
            return True
        now = time.monotonic()
        if now - self._last_full_alert >= 1.0:
            self._last_full_alert = now
            self.log.write("alert", f"{self.config.worker_connections} worker_connections "
                                    "are not enough")
        return False

    # --- the ConnectionObserver of every client connection --------------------------------

    def opened(self, conn: ClientConnection) -> None:
        self.start_clock()
        self.connections.add(conn)
        self.stats.connection(+1)

    def closed(self, conn: ClientConnection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self.stats.connection(-1)

    async def certificate_status(self, conn: ClientConnection, policy: OcspPolicy,
                                 chain: list[bytes]) -> str:
        checker = self.ocsp.get(policy)
        if checker is None:
            checker = self.ocsp[policy] = OcspChecker(
                policy, self.zones.answers.get(policy.cache) if policy.cache else None)
        try:
            return await checker.status(chain)
        except OcspError as e:
            self.log.error(f"{e} while requesting certificate status", conn)
            return OCSP_FAILED


    # --- requests ---------------------------------------------------------------------------

    def refused(self, conn: ClientSide, error: ProtocolError, vhosts: ServerTable,
                started: float) -> None:
        """A request the HTTP layer refused (a line or header it cannot read, headers
        too large): answered as ``_refuse`` answers, with the configuration of the
        server its Host chose when the Host came before the error (nginx picks the
        server as it reads the Host header), else the address's default server's."""
        head: RequestHead | None = None
        server = None
        if error.line is not None:
            method, target, version = error.line
            # (the headers read only go to the access log — an error page gets none —
            # and, as nginx's $http_host, the first Host is the one)
            hosts = [i for i, (name, _) in enumerate(error.headers)
                     if name.lower() == b"host"]
            fields = [f for i, f in enumerate(error.headers) if i not in hosts[1:]]
            head = RequestHead(method, target, version, fields, 0, False, False, None)
            host = normal_host(error.host) if error.host is not None else None
            if host:
                server = vhosts.select(host)
        elif error.unread is not None:
            head = UnreadLine(error.unread)
        self._refuse(conn, error, vhosts, server, head, started)

    def _refuse(self, conn: ClientSide, error: ProtocolError, vhosts: ServerTable,
                server: Server | None = None, head: RequestHead | None = None,
                started: float = 0.0) -> None:
        """A request refused before any phase (its target, Host or headers, TRACE):
        answered, and the connection closed, as nginx closes after such an error.
        ``server``: the one its Host chose, when it was refused after that (else the
        address's default). Where that server has an ``error_page`` for the status,
        the page answers, as nginx's: for a GET (HEAD stays) of the target without
        any of the request's headers — nothing of a request refused goes on, its
        credentials included — through the page's location and its phases. ``head``:
        the request's line, when it was read (its method stays in ``$request``)."""
        chosen = server or vhosts.default
        loc = chosen.fallback
        if error.gone or loc is None or not loc.settings.error_page \
                or loc.settings.error_page_for(error.status) is None:
            self.reject(conn, error, vhosts, server, head)
            conn.finish()
            return
        self.log.info(error.log_line, conn)
        page_head = RequestHead(head.method, head.target, head.version, [], 0, False,
                                False, None) if head is not None and head.method \
            else UnreadLine(error.unread or b"", b"1.1")
        req = Request(page_head, ("/", "", None), conn)
        req.method = "HEAD" if page_head.method == b"HEAD" else "GET"
        req.server = chosen
        req.host = chosen.name
        req.arrived = started
        conn.close_after_response()
        try:
            step = self.phases.fail(conn, req, loc, error.status)
            if step is DONE:
                self.complete(conn, req, started)
                return
        except Exception as e:  # a bug costs this request, never the event loop
            self.failed(conn, req, e, started, req.bytes_sent != 0)
            return
        if step is not TAKEN:
            self.spawn(conn, req, step, started)

    def plain_on_tls(self, conn: ClientSide, req: Request, server: Server) -> Outcome:
        """A request in plain HTTP on a ``listen ... ssl`` address: nginx's 497, through
        the server's own ``error_page 497`` (``https://$host$request_uri`` is the usual
        one), else its 400 page that says why; the connection then closes. Nothing of
        the request goes further: no location's phases run for it, unless the error
        page names one."""
        self.log.info("client sent plain HTTP request to HTTPS port", conn, req)
        fallback = server.fallback
        assert fallback is not None
        return self.phases.fail(conn, req, fallback, 497)

    def _without(self, conn: ClientSide, head: RequestHead, kept: list[Any],
                 dropped: list[bytes], vhosts: ServerTable, server: Server) -> RequestHead:
        """``head`` without the header lines ``ignore_invalid_headers`` drops, each
        logged as nginx logs it while reading the head: the line, then the context of
        that moment — its server (the Host's once a Host line came before it, else the
        address's default), the request line, and that Host."""
        if self.log.verbose:
            names = set(dropped)
            before: list[tuple[bytes, bytes]] = []
            host_read = False
            for name, value in head.headers:
                if name in names:
                    line = (name + b": " + value).decode("utf-8", "surrogateescape")
                    seen = RequestHead(head.method, head.target, head.version, list(before), 0,
                                       False, False, None)
                    self.log.info(f'client sent invalid header line: "{line}" while reading '
                                  "client request headers", conn, self._refused_request(
                                      conn, vhosts, server if host_read else None, seen))
                    continue
                if not host_read and len(name) == 4 and name.lower() == b"host":
                    host_read = True
                before.append((name, value))
        return RequestHead(head.method, head.target, head.version, kept,
                           head.content_length, head.keep_alive, head.expect_continue,
                           head.upgrade)

    def failed(self, conn: ClientSide, req: Request, error: Exception,
               started: float, responded: bool) -> None:
        """An unexpected error in a callback (a bug): logged, and it costs this request
        only — a 500 if nothing of its response has gone out yet (then the connection
        closes, its state unknown), else the connection is cut."""
        self.log.write("alert", f"unexpected error: {type(error).__name__}: {error}", conn, req)
        if not responded and not conn.closed:
            req.status = 0
            req.override = None
            try:
                self.phases.respond.respond_error(conn, req, None, 500)
            except Exception:
                conn.abort()
            else:
                conn.retire()
        else:
            conn.abort()
        self.complete(conn, req, started)

    def spawn(self, conn: ClientSide, req: Request, coro: Any, started: float) -> None:
        task = asyncio.get_running_loop().create_task(self._run(conn, req, coro, started))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, conn: ClientSide, req: Request, coro: Any,
                   started: float) -> None:
        try:
            await coro
        except Exception as e:  # a bug must cost one request, never the worker
            self.log.write("alert", f"unexpected error: {type(e).__name__}: {e}", conn, req)
            conn.abort()
        finally:
            self.complete(conn, req, started)

    def reject(self, conn: ClientSide, error: ProtocolError, vhosts: ServerTable,
               server: Server | None = None, head: RequestHead | None = None) -> None:
        """Answer a request that could not be parsed (or was refused once its Host
        chose ``server``; ``head``: its line, when that was read); the caller
        closes."""
        # the request as the log lines read it, made only if one is written (a flood of
        # 400s to a server without an access log, at the default level, makes none)
        logged = (server or vhosts.default).settings.access_log or self.log.verbose
        req = self._refused_request(conn, vhosts, server, head) if logged else None
        # (nginx's context once the line began: the server, the line as it came, the
        # Host)
        self.log.info(error.log_line, conn, req if head is not None else None)
        # nginx's own codes (494: headers too large) go out as 400, with their page
        status = 400 if error.status in SPECIAL else error.status
        self.stats.request(status, 0.0)
        exchange = conn.exchange
        if error.gone:  # nothing to answer: logged with what was read, 0 bytes sent
            self._log_refused(req, status, 0, 0)
            return
        if exchange is None or conn.closed:
            return
        body = error_body(error.status)
        headers = [(b"Server", b"fastgate"), (b"Date", self.http_date())]
        if body:
            headers.append((b"Content-Type", b"text/html"))
        headers = self._refusal_head(conn, status, headers, server or vhosts.default)
        conn.close_after_response()  # (the engine says Connection: close, once)
        try:
            out = exchange.respond(status, reason(status), headers, len(body))
            out += exchange.body(body) + exchange.end()
        except Exception:  # the engine cannot frame a response in this state: by hand
            out = _raw_error(status, body, [*headers, (b"Connection", b"close")])
        exchange.write(out)
        self._log_refused(req, status, len(body), len(out))

    def _refusal_head(self, conn: ClientSide, status: int, headers: list[tuple[bytes, bytes]],
                      server: Server) -> list[tuple[bytes, bytes]]:
        """The head of a refusal's page as nginx's filters make it with ``server``'s
        configuration — the address's default server's unless the Host chose one
        first: its ``add_header ... always`` (HSTS, say) and its charset."""
        loc = server.fallback
        if loc is None or conn.info is None:
            return headers
        s = loc.settings
        if not s.add_header and (s.charset is None or s.recodes):
            return headers
        req = Request(_UNPARSED, ("", "", None), conn)
        req.server = server
        req.status = status
        if s.add_header:
            self.phases.respond.add_headers(req, loc, status, headers)
        if s.charset is not None and not s.recodes:
            headers = charset.apply(headers, status, s, req)
        return headers

    def log_refused(self, conn: ClientSide, status: int, body: int, sent: int,
                    vhosts: ServerTable, server: Server | None = None,
                    head: RequestHead | None = None) -> None:
        """A refused request (400, 408, 413, 414, 501, 505...) goes to the access log of
        the server its Host chose, else the address's default server's, as nginx writes
        it: ``$request`` is its line when that was read (``head``), else "-"; the
        status and bytes are what was sent."""
        self._log_refused(self._refused_request(conn, vhosts, server, head), status, body,
                          sent)

    def _log_refused(self, req: Request | None, status: int, body: int, sent: int) -> None:
        if req is None or not req.server.settings.access_log:
            return
        req.status = status
        req.body_bytes_sent = body
        req.bytes_sent = sent
        self.access.write(req.server.settings.access_log, req)

    @staticmethod
    def _refused_request(conn: ClientSide, vhosts: ServerTable, server: Server | None,
                         head: RequestHead | None) -> Request | None:
        """A refused request as its log lines read it: of the server its Host chose,
        else the address's default server (None: a connection without its details)."""
        if conn.info is None:
            return None
        server = server or vhosts.default
        target = _logged_target(head)
        req = Request(head or _UNPARSED, target, conn)
        if target is _NO_TARGET:
            req.target = ""  # (nginx's unparsed_uri is set once the target was read)
        # nginx's $host without a valid Host: the server's name
        req.host = req.host or server.name
        req.server = server
        req.location = server.fallback  # (its settings: $request_filename, $document_root)
        return req

    def stub_status(self) -> bytes:
        return self.stats.stub_status()

    def status_page(self) -> bytes:
        return self.stats.exposition(self.engine_name, self.zones,
                                     {url: src.fetched_at for url, src in self.remote.items()},
                                     self.cluster.figures() if self.cluster else None)

    def close(self) -> None:
        self.stop_clock()
        for session in list(self.sessions):  # (past worker_shutdown_timeout: cut)
            session.abort()
        for src in self.remote.values():
            src.close()
        if self.cluster is not None:
            self.cluster.close()
        for g in self.groups.values():
            g.close()
        self.access.close()
        if self.stream_access is not None:
            self.stream_access.close()
        self.log.flush()


# what a refused request is known by: nothing
_UNPARSED = RequestHead(b"", b"", b"", [], 0, False, False, None)


def _logged_target(head: RequestHead | None) -> tuple[str, str, str | None]:
    """A refused request's target as its log line reads it ($uri, $args): nothing
    when its line was not read or its target is not one."""
    if head is None or not head.method:
        return _NO_TARGET
    split = split_target(head.target)
    if split is not None:
        return split
    try:
        path, args, host = parse_target_fully(head.target, False)
    except ProtocolError:
        return _NO_TARGET
    return (path, args, host)


_NO_TARGET: tuple[str, str, str | None] = ("", "", None)


def _raw_error(status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A response written by hand, for when the parser state allows no framed one."""
    lines = [b"HTTP/1.1 %d %s" % (status, reason(status))]
    lines += [n + b": " + v for n, v in headers]
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
