"""The ``stream`` block at run time: TCP connections and UDP datagrams proxied as
nginx's stream modules proxy them (ngx_stream_proxy_module and the phases before it).

A ``Session`` drives the client's connection (an ``http.tcp.TcpEnd``, the layer that
owns transports) and, once connected, the upstream's. Its phases, in nginx's order but
for TLS: the PROXY protocol header when the listen asks for one; the TLS handshake on an
``ssl`` listen (asyncio's, before the session sees a byte: nginx's comes after the
access checks) and ``ssl_verify_client``'s check; ``set_real_ip_from`` (a trusted
peer's header names the client); ``set``; ``limit_conn`` (503); ``allow``/``deny``
(403); ``ssl_preread`` (the ClientHello read, not taken: its server name, ALPN
protocols and version become variables); then the
content: ``return``'s text, or a connection to an upstream server — picked by the
group's balancing method, over TLS with ``proxy_ssl``, the next one tried on a failed
connect as ``proxy_next_upstream`` allows — and the bytes relayed both ways, at
``proxy_upload_rate``/``proxy_download_rate`` (``Shaper``), until one side closes (both,
with ``proxy_half_close``) or nothing moves for ``proxy_timeout``. A ``UdpSession`` is
the datagrams of one client address, answered from the listening socket until
``proxy_responses`` came. The session's status (200, 400, 403, 500, 502, 503) and byte
counts go to the block's access log, nginx's variables for them."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastgate import openssl
from fastgate.config import addresses
from fastgate.config.addresses import UNIX, allows, trusted_peer
from fastgate.config.model import (
    LimitZone,
    Listen,
    Resolver,
    Stream,
    StreamServer,
    Upstream,
    UpstreamServer,
    UpstreamTls,
    socket_upstream,
)
from fastgate.config.tls import TlsError, upstream_context, upstream_tls
from fastgate.errors import FastgateError
from fastgate.http.proxy_protocol import BrokenHeader, ProxyHeader, read_header
from fastgate.http.tcp import TcpEnd, connect
from fastgate.http.udp import UdpEnd, UdpPort, open_udp
from fastgate.openssl import NO_CA_ERRORS
from fastgate.proxy import balance
from fastgate.proxy.dns import Names, ResolveError
from fastgate.proxy.failure import DISABLED, unix_connect_failed
from fastgate.proxy.rate import parse_size
from fastgate.variables import Template, set_user_variable

OK, BAD_REQUEST, FORBIDDEN, INTERNAL_ERROR, BAD_GATEWAY, UNAVAILABLE = (
    200, 400, 403, 500, 502, 503)
_HOSTNAME_MISMATCH = 62  # X509_V_ERR_HOSTNAME_MISMATCH
_PENDING_MAX = 64  # a UDP session's datagrams kept while its upstream socket is made


class ConnTable(Protocol):
    """A limit_conn zone's shared table (the worker's)."""

    def acquire(self, key: bytes, limit: int) -> bool: ...

    def release(self, key: bytes) -> None: ...


class StreamHost(Protocol):
    """What a session needs of the worker that runs it."""

    def stream_admit(self) -> bool:
        """Whether a new session may begin (worker_connections: the alert is the host's)."""

    def stream_zone(self, name: str) -> ConnTable: ...

    def stream_limited(self, zone: str) -> None:
        """A connection refused by a zone: counted."""

    def stream_error(self, level: str, message: str, connection: int = 0) -> None: ...

    def stream_logged(self, session: Session) -> None: ...

    def stream_opened(self, session: Session) -> int:
        """The session's number ($connection); it is counted until ``stream_closed``."""

    def stream_closed(self, session: Session) -> None: ...


# --- servers and their failures -----------------------------------------------------------------


class Peer:
    """One server of a group, as the balancing methods see it (``balance.Candidate``),
    with nginx's passive health: ``max_fails`` failed connects within ``fail_timeout``
    take it out for ``fail_timeout``."""

    __slots__ = ("server", "current", "busy", "fails", "failed_at")

    def __init__(self, server: UpstreamServer) -> None:
        self.server = server
        self.current = 0
        self.busy = 0
        self.fails = 0
        self.failed_at = 0.0

    def available(self, now: float) -> bool:
        s = self.server
        if s.down or (s.max_conns and self.busy >= s.max_conns):
            return False
        if s.max_fails and self.fails >= s.max_fails:
            return now - self.failed_at >= s.fail_timeout
        return True

    def failed(self, now: float) -> bool:
        """A failed connect counted; True when it takes the server out."""
        if now - self.failed_at >= self.server.fail_timeout:
            self.fails = 0
        self.fails += 1
        self.failed_at = now
        return self.server.max_fails > 0 and self.fails == self.server.max_fails

    def succeeded(self) -> None:
        self.fails = 0


class Group:
    """An upstream group of the stream block: its primary servers by its balancing
    method, its backup servers when none of those is up (nginx's order)."""

    def __init__(self, upstream: Upstream) -> None:
        self.name = upstream.name
        self.primary = [Peer(s) for s in upstream.servers if not s.backup]
        self.backup = [Peer(s) for s in upstream.servers if s.backup]
        self.size = len(upstream.servers)
        # proxy_ssl's default name: the group's name, or the host a proxy_pass gave (a
        # socket's path)
        host = upstream.name
        if upstream.implicit:
            host = host[5:] if host.startswith("unix:") else host.rpartition(":")[0]
        self.host_name = host[1:-1] if host.startswith("[") else host
        self._pick: Callable[[float, Any, Any], Peer | None] = (
            balance.method(upstream.balance, self.primary) if upstream.balance is not None
            else (lambda now, exclude, r: balance.round_robin(self.primary, now, exclude)))

    def pick(self, now: float, tried: set[Peer], session: Any) -> Peer | None:
        if self.size == 1 and self.primary:
            # one server: never taken out by its failures (nginx's single peer)
            only = self.primary[0]
            return None if only.server.down or only in tried else only
        found = self._pick(now, tried, session)
        if found is None and self.backup:
            found = balance.round_robin(self.backup, now, tried)
        return found


# --- the ClientHello, read ahead (ssl_preread) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preread:
    server_name: str = ""
    alpn: str = ""  # comma-separated, as nginx's $ssl_preread_alpn_protocols
    protocol: str = ""  # the highest version the client offers


_VERSIONS = {0x0300: "SSLv3", 0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2",
             0x0304: "TLSv1.3"}


class NotHello(FastgateError):
    """The first bytes are not a TLS ClientHello (nginx declines: the session goes on
    with the variables empty)."""


def read_hello(data: bytes) -> Preread | None:
    """The ClientHello at the start of ``data`` (it may span several records); None
    while more bytes are needed; ``NotHello`` for what is not one."""
    if len(data) >= 5 and data[0] & 0x80 and data[2] == 1 and data[3] in (0, 3):
        return Preread(protocol=_VERSIONS.get((data[3] << 8) | data[4], ""))  # SSLv2 hello
    body = b""
    pos = 0
    while True:
        if len(data) - pos < 5:
            return None
        if data[pos] != 0x16 or data[pos + 1] != 3:
            raise NotHello
        length = (data[pos + 3] << 8) | data[pos + 4]
        if len(data) - pos - 5 < length:
            return None
        body += data[pos + 5:pos + 5 + length]
        pos += 5 + length
        if len(body) >= 4:
            if body[0] != 1:
                raise NotHello
            size = int.from_bytes(body[1:4], "big")
            if len(body) >= 4 + size:
                return _hello(body[4:4 + size])


def _hello(h: bytes) -> Preread:
    try:
        version = (h[0] << 8) | h[1]
        p = 34
        p += 1 + h[p]  # session id
        p += 2 + int.from_bytes(h[p:p + 2], "big")  # cipher suites
        p += 1 + h[p]  # compression methods
        name = alpn = ""
        best = version
        if p + 2 <= len(h):
            end = p + 2 + int.from_bytes(h[p:p + 2], "big")
            p += 2
            while p + 4 <= end:
                kind = int.from_bytes(h[p:p + 2], "big")
                size = int.from_bytes(h[p + 2:p + 4], "big")
                ext = h[p + 4:p + 4 + size]
                p += 4 + size
                if kind == 0 and len(ext) >= 5 and ext[2] == 0:
                    n = int.from_bytes(ext[3:5], "big")
                    name = ext[5:5 + n].decode("latin-1")
                elif kind == 16 and len(ext) >= 2:
                    names, q = [], 2
                    while q < len(ext):
                        n = ext[q]
                        names.append(ext[q + 1:q + 1 + n].decode("latin-1"))
                        q += 1 + n
                    alpn = ",".join(names)
                elif kind == 43 and ext:
                    offered = [int.from_bytes(ext[i:i + 2], "big")
                               for i in range(1, 1 + ext[0], 2)]
                    known = [v for v in offered if v in _VERSIONS]
                    if known:
                        best = max(known)
    except IndexError:
        raise NotHello from None
    return Preread(name, alpn, _VERSIONS.get(best, ""))


# --- the session --------------------------------------------------------------------------------


@dataclass(slots=True)
class Attempt:
    """One upstream server tried: for $upstream_addr and its companions."""

    addr: str
    connect: float = -1.0
    first_byte: float = -1.0
    session: float = -1.0
    sent: int = 0
    received: int = 0

    def came(self, size: int, started: float) -> None:
        """``size`` bytes from the server (``started``: when its connection was begun)."""
        if self.first_byte < 0:
            self.first_byte = time.monotonic() - started
        self.received += size


class Session:
    """One client connection of a stream server (see the module's text): the owner of
    its client end (``http.tcp.TcpEnd``) and, once connected, of an ``UpstreamSide``."""

    def __init__(self, streams: Streams, server: StreamServer, listen: Listen) -> None:
        self.streams = streams
        self.server = server
        self.listen = listen
        self.host = streams.host
        self.client: TcpEnd | None = None
        self.upstream: UpstreamSide | None = None
        self.status = OK
        self.bytes_received = 0  # from the client
        self.bytes_sent = 0  # to the client
        self.remote_addr = ""
        self.remote_port = 0
        self.server_addr = ""
        self.server_port = listen.port
        self.connection_id = 0
        self.started = time.monotonic()
        self.proxy_protocol: ProxyHeader | None = None
        self.preread: Preread | None = None
        self.tls: Any = None
        self.client_certificate: tuple[bytes, int, str] | None = None  # (DER, code, words)
        self.realip_remote_addr = ""  # the peer's, whatever set_real_ip_from made the client
        self.realip_remote_port = 0
        self.attempts: list[Attempt] = []
        self.memo: dict[Any, Any] = {}
        self.variables: dict[str, str] = {}  # set's
        self.captures: tuple[str, ...] = ()
        self.location = None  # ($geoip_* read the server's settings where there is none)
        self._held = b""  # read before the upstream is there
        self._uncounted = 0  # of it, what $bytes_received leaves out (the ClientHello)
        self._stage = "header" if listen.proxy_protocol and not listen.ssl else "start"
        self._timer: asyncio.TimerHandle | None = None
        self._eof = False
        self._closed = False
        self._last = 0.0  # the last time a byte moved (proxy_timeout)
        self._connecting: asyncio.Task[None] | None = None
        # the server connected to, or being connected to (its count of sessions is ours)
        self._peer: Peer | None = None
        self._slots: list[tuple[ConnTable, bytes]] = []  # limit_conn's, given back at the end
        self.limit_conn_status = ""
        self._held_client: set[str] = set()  # why reading from the client waits
        self._held_upstream: set[str] = set()
        self._up_rate: Shaper | None = None  # proxy_upload_rate's, once connected
        self._down_rate: Shaper | None = None

    # -- the client end (TcpOwner) -----------------------------------------------------------

    def made(self, end: TcpEnd) -> None:
        self.client = end
        if not self.connection_id:  # (else accepted before its TLS handshake)
            if not self._admitted(end):
                end.abort()
                return
        self.tls = end.info("ssl_object")
        if self.tls is not None and self.server.settings.ssl_verify_client != "off" \
                and not self._certificate_checked():
            return
        if self._stage == "header":
            self._arm(self.server.proxy_protocol_timeout, self._header_timeout)
            return
        self._start()

    def accepted(self, end: TcpEnd) -> bool:
        """A ``listen ... ssl`` client, before its handshake: numbered and said now, as
        nginx does (a handshake that fails is then this session's)."""
        self.client = end
        return self._admitted(end)

    def _admitted(self, end: TcpEnd) -> bool:
        if not self.host.stream_admit():
            self._closed = True  # (never begun: not logged, not counted)
            return False
        self.connection_id = self.host.stream_opened(self)
        self.remote_addr, self.remote_port = end.address("peername")
        self.server_addr = end.address("sockname")[0]
        self._connected(udp=False)
        return True

    def handshake_failed(self, why: str) -> None:
        self._log("info", f"{why} while SSL handshaking, client: {self.remote_addr}, "
                          f"server: {self._srv()}")
        self._finish(INTERNAL_ERROR, client_gone=True)  # (nginx's 500, in the log)

    def header_given(self, header: ProxyHeader) -> None:
        self.proxy_protocol = header

    def _certificate_checked(self) -> bool:
        """nginx's stream SSL phase with ``ssl_verify_client``: a certificate whose
        verification failed (but for what ``optional_no_ca`` lets through), or none
        when one is required, ends the session (500); False then."""
        tls = self.tls
        der = tls.getpeercert(binary_form=True)
        mode = self.server.settings.ssl_verify_client
        if der is not None:
            code, words = openssl.verify_result(tls)
            self.client_certificate = (der, code, words)
            if code and not (mode == "optional_no_ca" and code in NO_CA_ERRORS):
                self._refuse_certificate(f"client SSL certificate verify error: "
                                         f"({code}:{words})")
                return False
        elif mode == "on":
            self._refuse_certificate("client sent no required SSL certificate")
            return False
        return True

    def _refuse_certificate(self, why: str) -> None:
        self._log("info", f"{why} while SSL handshaking, client: "
                          f"{self.remote_addr}, server: {self._srv()}")
        self._finish(INTERNAL_ERROR)

    @property
    def connection(self) -> Session:
        """(what ``$ssl_client_*`` read the certificate from: the session is its own
        connection)"""
        return self

    def header_broken(self, end: TcpEnd, why: str) -> None:
        self.client = end
        self.connection_id = self.host.stream_opened(self)
        self.remote_addr, self.remote_port = end.address("peername")
        self._log("error", f"broken header: {why} while reading PROXY protocol"
                           f", client: {self.remote_addr}, server: {self._srv()}")
        self._finish(BAD_REQUEST, client_gone=True)  # (the caller aborts the connection)

    def received(self, data: bytes) -> None:
        self._last = time.monotonic()
        up = self.upstream
        if up is not None and self._stage == "proxy":
            self.bytes_received += len(data)
            if self._up_rate is not None:
                self._up_rate.push(data)
            else:
                up.write(data)
            return
        self._held += data
        if self._stage == "header":
            self._read_header()
        elif self._stage == "preread":
            self._read_hello()

    def ended(self) -> bool | None:
        self._eof = True
        up = self.upstream
        if self._stage == "proxy" and up is not None:
            if self.server.half_close:
                up.end.write_eof()
                if up.eof:
                    self._finish(OK)
                return True
            self._finish(OK)
            return None
        if self._stage == "preread":
            # nginx: the client went before its hello was all there
            self.preread = Preread()
            self._finish(OK)
        elif self._stage == "header":
            self._finish(BAD_REQUEST)
        # connecting: what came goes up once connected, then the session ends
        return True

    def blocked(self) -> None:
        self._reading(False, "blocked", True)

    def unblocked(self) -> None:
        self._reading(False, "blocked", False)

    def lost(self) -> None:
        self._finish(self.status, client_gone=True)

    # -- phases ------------------------------------------------------------------------------

    def _read_header(self) -> None:
        try:
            found = read_header(self._held)
        except BrokenHeader as e:
            self._log("error", f"broken header: {e} while reading PROXY "
                               f"protocol, client: {self.remote_addr}, "
                               f"server: {self._srv()}")
            self._finish(BAD_REQUEST)
            return
        if found is None:
            return
        self._disarm()
        self.proxy_protocol, used = found
        self._held = self._held[used:]
        self._start()

    def _header_timeout(self) -> None:
        self._log("error", f"client timed out (110: Connection timed out) while "
                           f"reading PROXY protocol, client: {self.remote_addr}"
                           f", server: {self._srv()}")
        self._finish(OK)

    def _start(self) -> None:
        self.realip_remote_addr, self.realip_remote_port = self.remote_addr, self.remote_port
        header = self.proxy_protocol
        if header is not None and header.addr and trusted_peer(
                self.remote_addr, self.server.settings.set_real_ip_from):
            # nginx's stream realip module (post-accept, before the limits and access):
            # a trusted peer's PROXY header names the client
            self.remote_addr, self.remote_port = header.addr, header.port
        for v in self.server.sets:  # (nginx's set module runs before limit_conn)
            set_user_variable(self, v.name, v.value.render(self))
        if self.server.settings.limit_conn and not self._limit():
            return
        if not allows(self.remote_addr, self.server.settings.access_rules):
            self._log("error", f"access forbidden by rule while initializing "
                               f"session, client: {self.remote_addr}, server: "
                               f"{self._srv()}")
            self._finish(FORBIDDEN)
            return
        if self.server.preread and not self.listen.udp:  # (nginx's preread: TCP only)
            self._stage = "preread"
            self._arm(self.server.preread_timeout, self._preread_timeout)
            if self._held:
                self._read_hello()
            return
        self._content()

    def _limit(self) -> bool:
        """limit_conn (nginx's pre-access phase, before allow/deny): False when a zone
        refused the connection (503, closed)."""
        s = self.server.settings
        for lc in s.limit_conn:
            zone = self.streams.zones[lc.zone]
            key = zone.key.render(self).encode("utf-8", "surrogateescape")
            if not key:  # (an empty key is not limited)
                continue
            table = self.host.stream_zone(lc.zone)
            if table.acquire(key, lc.limit):
                self._slots.append((table, key))
                self.limit_conn_status = self.limit_conn_status or "PASSED"
                continue
            dry = s.limit_conn_dry_run
            self.limit_conn_status = "REJECTED_DRY_RUN" if dry else "REJECTED"
            self.host.stream_limited(lc.zone)
            self._log(s.limit_conn_log_level,
                      f'limiting connections{", dry run," if dry else ""} by '
                      f'zone "{lc.zone}", client: {self.remote_addr}, server: '
                      f"{self._srv()}")
            if not dry:
                self._finish(UNAVAILABLE)
                return False
        return True

    def _preread_timeout(self) -> None:
        self.preread = Preread()  # (nginx's variables: there, and empty)
        self._finish(OK)

    def _read_hello(self) -> None:
        try:
            found = read_hello(self._held)
        except NotHello:
            self.preread = None  # (nginx declines: the variables are not there)
        else:
            if found is None:
                if len(self._held) >= self.server.preread_buffer_size:
                    self._log("error", f"preread buffer full, client: "
                                       f"{self.remote_addr}, server: {self._srv()}")
                    self._finish(BAD_REQUEST)
                return
            self.preread = found
        self._disarm()
        self._content()

    def _content(self) -> None:
        # what was read ahead (the ClientHello) goes upstream but is not counted in
        # $bytes_received, as nginx's preread buffer is not; what comes from here on is
        self._uncounted = len(self._held)
        self._stage = "content"
        client = self.client
        assert client is not None
        text = self.server.return_value
        if text is not None:
            data = text.render(self).encode("utf-8", "surrogateescape")
            self.bytes_sent += len(data)
            client.write(data)
            self._finish(OK)
            return
        self._reading(True, "connecting", True)
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        try:
            await self._connect_upstream()
        except Exception as e:  # a bug: logged, and this session ends
            self.crashed(e)

    def _rate(self, given: Template | None, where: str) -> int:
        """A proxy_upload_rate or proxy_download_rate, its variables read now (0: no
        limit); a value that is no size is none, logged, as nginx's."""
        if given is None:
            return 0
        text = given.render(self)
        size = parse_size(text)
        if size is None:
            self._log("error", f'invalid size "{text}" {where}')
            return 0
        return size

    def crashed(self, error: Exception) -> None:
        """An unexpected error (a bug) under the session's callbacks: logged, both
        connections cut (their state is unknown), status 500."""
        self._log("alert", f"unexpected error: {type(error).__name__}: {error}"
                           f", client: {self.remote_addr}, server: {self._srv()}")
        if not self._closed:
            self.status = INTERNAL_ERROR
            self.abort()

    async def _connect_upstream(self) -> None:
        srv = self.server
        group = await self._group()
        if isinstance(group, int):
            self._finish(group)
            return
        loop = asyncio.get_running_loop()
        begun = loop.time()
        tried: set[Peer] = set()
        tries = srv.next_upstream_tries or group.size
        while True:
            peer = self._pick(group, tried)
            if peer is None:
                return
            tried.add(peer)
            address = peer.server.address
            attempt = Attempt(address)
            self.attempts.append(attempt)
            started = loop.time()
            side = UpstreamSide(self, attempt)
            why = ""
            level = "error"
            action = "connecting to"
            name: str | None = None
            # the session counts against the server from the connect on, as nginx's
            # peer->conns: max_conns and least_conn see a connect in progress (the
            # session's end takes the count back, or a failed connect here)
            peer.busy += 1
            self._peer = peer
            try:
                tls, name = self._tls(group) if srv.proxy_ssl else (None, None)
                await asyncio.wait_for(connect(side, peer.server.host, peer.server.port,
                                               srv.tcp_nodelay, tls, name, peer.server.unix),
                                       srv.connect_timeout)
            except TimeoutError:
                why = "upstream timed out (110: Connection timed out)"
            except ssl.SSLCertVerificationError as e:
                # (OpenSSL checks the name as it verifies; nginx checks it after, in
                # words of its own)
                why = (f'upstream SSL certificate does not match "{name}"'
                       if e.verify_code == _HOSTNAME_MISMATCH else
                       f"upstream SSL certificate verify error: ({e.verify_code}:"
                       f"{e.verify_message})")
                action = "SSL handshaking to"
            except ssl.SSLError as e:
                why = f"SSL_do_handshake() failed ({e.reason or e})"
                action = "SSL handshaking to"
            except TlsError as e:  # a file the context needs changed since the load
                why = e.message
                action = "SSL handshaking to"
            except OSError as e:
                if peer.server.unix is not None:  # (nginx names the socket, crit or error)
                    why, level = unix_connect_failed(address, e, during="")
                else:
                    why = f"connect() failed ({e.errno}: {e.strerror})"
            if self._closed:
                side.end.close()
                return
            if not why:
                attempt.connect = loop.time() - started
                peer.succeeded()
                break
            self._peer = None
            peer.busy -= 1
            attempt.session = loop.time() - started
            where = (f'while {action} upstream, client: {self.remote_addr}, server: '
                     f'{self._srv()}, upstream: "{address}"')
            self._log(level, f"{why} {where}")
            if group.size > 1 and peer.failed(time.monotonic()):
                self._log("warn", f"{DISABLED} {where}")
            spent = loop.time() - begun
            if (not srv.next_upstream or len(tried) >= tries
                    or (srv.next_upstream_timeout and spent >= srv.next_upstream_timeout)):
                self._finish(BAD_GATEWAY)
                return
        self.upstream = side
        self._connected(False, side.end.address("sockname"), address)
        where = (f'while connecting to upstream, client: {self.remote_addr}, server: '
                 f'{self._srv()}, upstream: "{address}"')
        up, down = self._rate(srv.upload_rate, where), self._rate(srv.download_rate, where)
        if up:
            self._up_rate = Shaper(up, self._to_upstream,
                                   lambda hold: self._reading(True, "rate", hold))
        if down:
            self._down_rate = Shaper(down, self._to_client,
                                     lambda hold: self._reading(False, "rate", hold))
        if srv.send_proxy_protocol:
            side.write(self._proxy_line())
        if self._held:
            self.bytes_received += len(self._held) - self._uncounted
            if self._up_rate is not None:
                self._up_rate.push(self._held)
            else:
                side.write(self._held)
            self._held = b""
        self._stage = "proxy"
        self._last = time.monotonic()
        self._arm(srv.timeout, self._idle)
        if self._eof and not srv.half_close:
            self._finish(OK)
            return
        if self._eof:
            side.end.write_eof()
        else:
            self._reading(True, "connecting", False)

    def _pick(self, group: Group, tried: set[Peer]) -> Peer | None:
        """The group's next server; None when none is up (logged, the session ended 502)."""
        peer = group.pick(time.monotonic(), tried, self)
        if peer is None:
            self._log("error", f"no live upstreams while connecting to upstream, "
                               f"client: {self.remote_addr}, server: "
                               f'{self._srv()}, upstream: "{group.name}"')
            self._finish(BAD_GATEWAY)
        return peer

    async def _group(self) -> Group | int:
        """The group ``proxy_pass`` names: a block, or for a value with variables a
        block by its name, an address, a socket, or a name the ``resolver`` resolves;
        else, logged, nginx's status: 500 for a value it cannot read, 502 for a name
        that does not resolve."""
        srv = self.server
        if srv.upstream is not None:
            return self.streams.groups[srv.upstream]
        assert srv.proxy_pass is not None
        value = srv.proxy_pass.render(self)
        group = self.streams.groups.get(value)
        if group is not None:
            return group
        where = f", client: {self.remote_addr}, server: {self._srv()}"
        if value[:5].lower() == "unix:":
            if not value[5:]:
                self._log("error", "no path in the unix domain socket in "
                                   f'upstream "{value}"{where}')
                return INTERNAL_ERROR
            return self.streams.socket(value)
        try:
            host, port, address = addresses.upstream_address(value)
        except ValueError as e:
            self._log("error", f'{e} in upstream "{value}"{where}')
            return INTERNAL_ERROR
        if not port:
            self._log("error", f'no port in upstream "{host}"{where}')
            return INTERNAL_ERROR
        if address is not None:
            return self.streams.direct(str(address), port, (str(address),))
        s = srv.settings
        if s.resolver is None:
            self._log("error", f"no resolver defined to resolve {host}{where}")
            return INTERNAL_ERROR
        try:
            found = await self.streams.names(s.resolver).resolve(host, s.resolver_timeout)
        except ResolveError as e:
            self._log("error", f"{e}{where}")
            return BAD_GATEWAY
        return self.streams.direct(host, port, found)

    def _tls(self, group: Group) -> tuple[ssl.SSLContext, str]:
        """proxy_ssl's context and the name sent and checked (proxy_ssl_name, with
        variables rendered now, else the proxy_pass host; "": none)."""
        s = self.server.settings
        given = s.proxy_ssl_name
        # (str(): a variable's value may be a str subclass, which ssl refuses as a name)
        t = upstream_tls(s, group.host_name, str(given.render(self))
                         if isinstance(given, Template) else None)
        return self.streams.tls_context(t), t.name if t.server_name or t.verify else ""

    def _proxy_line(self) -> bytes:
        if self.remote_addr == UNIX:  # (nginx's for a client of no address family it writes)
            return b"PROXY UNKNOWN\r\n"
        v6 = ":" in self.remote_addr
        return (f"PROXY {'TCP6' if v6 else 'TCP4'} {self.remote_addr} {self.server_addr} "
                f"{self.remote_port} {self.server_port}\r\n").encode("ascii")

    def _idle(self) -> None:
        """proxy_timeout's check: again when bytes moved since, else the session ends."""
        self._timer = None
        if self._closed:
            return
        left = self.server.timeout - (time.monotonic() - self._last)
        if left > 0.001:
            self._arm(left, self._idle)
            return
        self._timed_out()

    def _timed_out(self) -> None:
        # (nginx's words: the client's connection timed out, whichever side was quiet)
        up = self.upstream
        self._log("info", f"connection timed out (110: Connection timed out) while proxying "
                          f"connection, client: {self.remote_addr}, server: {self._srv()}"
                          + (f', upstream: "{up.attempt.addr}"' if up else ""))
        self._finish(OK, by=None)

    # -- from the upstream side --------------------------------------------------------------

    def from_upstream(self, data: bytes) -> None:
        self.bytes_sent += len(data)
        self._last = time.monotonic()
        if self._down_rate is not None:
            self._down_rate.push(data)
        elif self.client is not None:
            self.client.write(data)

    def _to_client(self, data: bytes) -> None:  # (a rate's pace: bytes moving)
        self._last = time.monotonic()
        if self.client is not None:
            self.client.write(data)

    def _to_upstream(self, data: bytes) -> None:
        self._last = time.monotonic()
        if self.upstream is not None:
            self.upstream.write(data)

    # -- reading, held back by the other side's backlog or a rate ---------------------------

    def _reading(self, client: bool, why: str, hold: bool) -> None:
        """Reading from the client (``client``) or the upstream stops while any reason
        holds it (the other side's write buffer is full; a rate's delay)."""
        held = self._held_client if client else self._held_upstream
        if hold:
            held.add(why)
        else:
            held.discard(why)
        end = self.client if client else (self.upstream.end if self.upstream else None)
        if end is None or self._closed:
            return
        if held:
            end.pause()
        else:
            end.resume()

    def upstream_ended(self) -> bool | None:
        if self.server.half_close and self.client is not None and not self._closed:
            self.client.write_eof()
            if self._eof:
                self._finish(OK, by="upstream")
            return True
        self._finish(OK, by="upstream")
        return None

    def upstream_lost(self) -> None:
        if self._stage == "proxy":
            self._finish(OK, by="upstream")

    def client_pause(self) -> None:
        self._reading(True, "blocked", True)

    def client_resume(self) -> None:
        self._reading(True, "blocked", False)

    # -- the end -----------------------------------------------------------------------------

    def _finish(self, status: int, client_gone: bool = False,
                by: str | None = "client") -> None:
        """The session ends; ``by``: the side whose close ended it (None: neither,
        said already)."""
        if self._closed:
            return
        self._closed = True
        self.status = status
        if self._stage == "proxy" and by is not None:
            self._disconnected(by)
        self._disarm()
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self.upstream is not None:
            self.upstream.end.close()
        if self._peer is not None:
            self._peer.busy -= 1
        for table, key in self._slots:
            table.release(key)
        self._slots.clear()
        for shaper in (self._up_rate, self._down_rate):
            if shaper is not None:
                shaper.stop()
        if self.client is not None and not client_gone:
            self.client.close()  # (what is written still goes out)
        for a in self.attempts:
            if a.session < 0:
                a.session = time.monotonic() - self.started
        self.host.stream_logged(self)
        self.host.stream_closed(self)

    def _disconnected(self, who: str) -> None:
        up = self.upstream
        self._log(
            "info", f"{who} disconnected, bytes from/to client:{self.bytes_received}/"
                    f"{self.bytes_sent}, bytes from/to upstream:"
                    f"{up.attempt.received if up else 0}/{up.attempt.sent if up else 0}",
            context=False)

    def abort(self) -> None:
        """The worker stops at once: both connections reset, the session logged now."""
        if self.upstream is not None:
            self.upstream.end.abort()
        if self.client is not None:
            self.client.abort()
        self._finish(self.status, client_gone=True)

    def _arm(self, seconds: float, then: Callable[[], None]) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(seconds, then)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _srv(self) -> str:
        return self.listen.written

    def _log(self, level: str, message: str, context: bool = True) -> None:
        """An error log line of this session: nginx's ``*N``, and once the proxy
        handler runs (a ``proxy_pass`` server past its access and preread phases) its
        log handler's tail, the byte counts; ``context`` False: a line nginx writes
        without any (its handler set aside)."""
        if context and self._stage in ("content", "proxy") and \
                self.server.return_value is None:
            a = self.attempts[-1] if self.attempts else None
            message += (f", bytes from/to client:{self.bytes_received}/{self.bytes_sent}, "
                        f"bytes from/to upstream:{a.received if a else 0}/"
                        f"{a.sent if a else 0}")
        self.host.stream_error(level, message, self.connection_id)

    def _connected(self, udp: bool, local: tuple[str, int] | None = None,
                   upstream: str = "") -> None:
        """nginx's lines at info as a session begins (who connected, to which address)
        and as its upstream connection is made (``local``: that socket's address)."""
        addr, port = local if local is not None else (self.remote_addr, self.remote_port)
        who = (f"[{addr}]:{port}" if ":" in addr and port else
               f"{addr}:{port}" if port else addr)
        said = f"proxy {who} connected to {upstream}" if local is not None else \
            f"client {who} connected to {self._srv()}"
        self._log("info", ("udp " if udp else "") + said, context=False)

    # -- for the variables -------------------------------------------------------------------

    def upstream_addrs(self) -> str:
        return ", ".join(a.addr for a in self.attempts)

    def upstream_values(self, which: str) -> str:
        out = []
        for a in self.attempts:
            value = getattr(a, which)
            if which in ("sent", "received"):
                out.append(str(value))
            else:
                out.append(f"{value:.3f}" if value >= 0 else "-")
        return ", ".join(out)


class Shaper:
    """Bytes one way at ``rate`` per second, as nginx's proxy_upload_rate and
    proxy_download_rate: a second's worth at once, then what the time since allows;
    what comes past the allowance waits here, and reading from its side waits with it
    (``hold``), so a fast sender is slowed, not buffered without end."""

    __slots__ = ("rate", "send", "hold", "started", "sent", "queue", "timer")

    def __init__(self, rate: int, send: Callable[[bytes], None],
                 hold: Callable[[bool], None]) -> None:
        self.rate = rate
        self.send = send
        self.hold = hold
        self.started = time.monotonic()
        self.sent = 0
        self.queue = bytearray()
        self.timer: asyncio.TimerHandle | None = None

    def push(self, data: bytes) -> None:
        self.queue += data
        if self.timer is None:
            self._pump()

    def _pump(self) -> None:
        self.timer = None
        allowed = int(self.rate * (time.monotonic() - self.started + 1)) - self.sent
        if allowed > 0 and self.queue:
            n = min(allowed, len(self.queue))
            chunk = bytes(self.queue[:n])
            del self.queue[:n]
            self.sent += n
            self.send(chunk)
        if not self.queue:
            self.hold(False)
            return
        self.hold(True)
        # again when a tenth of a second's worth (or all that waits) is allowed
        need = min(len(self.queue), max(self.rate // 10, 1))
        wait = (self.sent + need) / self.rate - (time.monotonic() - self.started + 1)
        self.timer = asyncio.get_running_loop().call_later(max(wait, 0.005), self._pump)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class UpstreamSide:
    """The upstream end of a session (its ``TcpOwner``)."""

    def __init__(self, session: Session, attempt: Attempt) -> None:
        self.session = session
        self.attempt = attempt
        self.end = TcpEnd(self)  # replaced by the connected one
        self.eof = False
        self._started = time.monotonic()

    def made(self, end: TcpEnd) -> None:
        self.end = end

    def write(self, data: bytes) -> None:
        if self.end.open:
            self.attempt.sent += len(data)
            self.end.write(data)

    def received(self, data: bytes) -> None:
        self.attempt.came(len(data), self._started)
        self.session.from_upstream(data)

    def ended(self) -> bool | None:
        self.eof = True
        return self.session.upstream_ended()

    def blocked(self) -> None:
        self.session.client_pause()

    def unblocked(self) -> None:
        self.session.client_resume()

    def lost(self) -> None:
        if self.attempt.session < 0:
            self.attempt.session = time.monotonic() - self._started
        if self.session.upstream is self:
            self.session.upstream_lost()

    def header_given(self, header: ProxyHeader) -> None:
        raise AssertionError("an upstream connection reads no PROXY header")

    def header_broken(self, end: TcpEnd, why: str) -> None:
        raise AssertionError("an upstream connection reads no PROXY header")

    def accepted(self, end: TcpEnd) -> bool:
        raise AssertionError("an upstream connection is not accepted")

    def handshake_failed(self, why: str) -> None:
        raise AssertionError("an upstream connection's handshake is the connector's")

    def crashed(self, error: Exception) -> None:
        self.session.crashed(error)


class UdpSession(Session):
    """A ``listen ... udp`` session: the datagrams of one client address (until
    ``proxy_requests`` of them), proxied over a socket connected to one server, its
    answers sent back from the listening socket. It ends when ``proxy_responses``
    answers per datagram came (200), or when nothing moved for ``proxy_timeout``: 200
    if the answers expected came (or none were counted), else 502 (nginx's "upstream
    timed out")."""

    def __init__(self, streams: Streams, server: StreamServer, listen: Listen,
                 port: UdpPort, addr: tuple[str, int],
                 table: dict[tuple[str, int], UdpSession]) -> None:
        super().__init__(streams, server, listen)
        self.port = port
        self.addr = addr
        self.table = table
        self.requests = 0
        self.responses = 0
        self.side: UdpSide | None = None
        self._pending: list[bytes] = []

    def begin(self, data: bytes) -> None:
        self.connection_id = self.host.stream_opened(self)
        self.remote_addr, self.remote_port = str(self.addr[0]), int(self.addr[1])
        self.server_addr = self.port.local()[0]
        self._connected(udp=True)
        self.datagram(data)
        self._start()

    def datagram(self, data: bytes) -> None:
        self.requests += 1
        self.bytes_received += len(data)  # (nginx counts a UDP session's first too)
        self._last = time.monotonic()
        if self.side is not None:
            self.side.write(data)
        elif len(self._pending) < _PENDING_MAX:  # (more before the socket is there: lost,
            self._pending.append(data)            # as datagrams may be)
        limit = self.server.proxy_requests
        if limit and self.requests >= limit and self.table.get(self.addr) is self:
            del self.table[self.addr]  # (the client's next datagram: a new session)

    def _content(self) -> None:
        self._stage = "content"
        text = self.server.return_value
        if text is not None:
            data = text.render(self).encode("utf-8", "surrogateescape")
            self.bytes_sent += len(data)
            self.port.send(data, self.addr)
            self._finish(OK)
            return
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect_upstream(self) -> None:
        group = await self._group()
        if isinstance(group, int):
            self._finish(group)
            return
        peer = self._pick(group, set())
        if peer is None:
            return
        attempt = Attempt(peer.server.address)
        self.attempts.append(attempt)
        started = time.monotonic()
        side = UdpSide(self, attempt)
        try:
            side.bound(await open_udp(side, peer.server.host, peer.server.port))
        except OSError as e:
            attempt.session = time.monotonic() - started
            self._log("error", f"connect() failed ({e.errno}: {e.strerror}) "
                               f"while connecting to upstream, client: "
                               f"{self.remote_addr}, server: {self._srv()}, "
                               f'upstream: "{attempt.addr}"')
            self._finish(BAD_GATEWAY)
            return
        if self._closed:
            side.close()
            return
        attempt.connect = time.monotonic() - started
        self.side = side
        if side.end is not None:
            self._connected(True, side.end.local(), attempt.addr)
        self._stage = "proxy"
        for data in self._pending:
            side.write(data)
        self._pending.clear()
        self._last = time.monotonic()
        self._arm(self.server.timeout, self._idle)

    def from_upstream(self, data: bytes) -> None:
        self.bytes_sent += len(data)
        self.responses += 1
        self._last = time.monotonic()
        self.port.send(data, self.addr)
        srv = self.server
        if srv.proxy_requests and self.requests < srv.proxy_requests:
            return
        if srv.proxy_responses is not None and \
                self.responses >= srv.proxy_responses * self.requests:
            self._said("done")
            self._finish(OK)

    def upstream_failed(self, error: OSError) -> None:
        """The server's host refused a datagram (ICMP): the session ends, 502."""
        self._log("error", f"recv() failed ({error.errno}: {error.strerror}) "
                           f"while proxying connection, client: "
                           f"{self.remote_addr}, server: {self._srv()}, "
                           f'upstream: "{self.upstream_addrs()}"')
        self._finish(BAD_GATEWAY)

    def _timed_out(self) -> None:
        expected = self.server.proxy_responses
        if expected is None or self.responses >= expected * self.requests:
            self._said("timed out")
            self._finish(OK)
            return
        self._log("error", f"upstream timed out (110: Connection timed out) "
                           f"while proxying connection, client: "
                           f"{self.remote_addr}, server: {self._srv()}, "
                           f'upstream: "{self.upstream_addrs()}"')
        self._finish(BAD_GATEWAY)

    def _said(self, how: str) -> None:
        a = self.attempts[-1] if self.attempts else None
        self._log(
            "info", f"udp {how}, packets from/to client:{self.requests}/{self.responses}, "
                    f"bytes from/to client:{self.bytes_received}/{self.bytes_sent}, bytes "
                    f"from/to upstream:{a.received if a else 0}/{a.sent if a else 0}",
            context=False)

    def _disconnected(self, who: str) -> None:
        """(a UDP session says how it ended as it ends: _said)"""

    def _finish(self, status: int, client_gone: bool = False, by: str | None = "client") -> None:
        if self._closed:
            return
        if self.side is not None:
            self.side.close()
        if self.table.get(self.addr) is self:
            del self.table[self.addr]
        super()._finish(status, client_gone=True, by=by)

    def abort(self) -> None:
        if self.side is not None:
            self.side.close()
        super().abort()


class UdpSide:
    """The upstream socket of a UDP session (its ``EndOwner``)."""

    def __init__(self, session: UdpSession, attempt: Attempt) -> None:
        self.session = session
        self.attempt = attempt
        self.end: UdpEnd | None = None
        self._started = time.monotonic()

    def bound(self, end: UdpEnd) -> None:
        self.end = end

    def write(self, data: bytes) -> None:
        if self.end is not None:
            self.attempt.sent += len(data)
            self.end.send(data)

    def received(self, data: bytes) -> None:
        self.attempt.came(len(data), self._started)
        try:
            self.session.from_upstream(data)
        except Exception as e:  # a bug: logged, and the session ends
            self.session.crashed(e)

    def failed(self, error: OSError) -> None:
        try:
            self.session.upstream_failed(error)
        except Exception as e:
            self.session.crashed(e)

    def close(self) -> None:
        if self.end is not None:
            self.end.close()


class Datagrams:
    """A ``listen ... udp`` socket's owner: each datagram to its client's session, or a
    new session for a client that has none."""

    def __init__(self, streams: Streams, server: StreamServer, listen: Listen) -> None:
        self.streams = streams
        self.server = server
        self.listen = listen
        self.sessions: dict[tuple[str, int], UdpSession] = {}

    def datagram(self, port: UdpPort, data: bytes, addr: tuple[str, int]) -> None:
        session = self.sessions.get(addr)
        try:
            if session is not None:
                session.datagram(data)
                return
            if not self.streams.host.stream_admit():
                return  # (the datagram is dropped, as nginx's when it is full)
            session = UdpSession(self.streams, self.server, self.listen, port, addr,
                                 self.sessions)
            self.sessions[addr] = session
            session.begin(data)
        except Exception as e:  # a bug: logged, and the session ends
            if session is not None:
                session.crashed(e)


class Streams:
    """A worker's stream block: its groups (passive health per worker, as nginx's
    without a zone) and each listening address's server."""

    def __init__(self, stream: Stream, host: StreamHost,
                 zones: Mapping[str, LimitZone] | None = None) -> None:
        self.stream = stream
        self.host = host
        self.zones = zones or {}  # limit_conn_zone's definitions (their keys)
        self.groups = {name: Group(u) for name, u in stream.upstreams.items()}
        self._direct: dict[tuple[str, int, tuple[str, ...]], Group] = {}
        self._contexts: dict[UpstreamTls, ssl.SSLContext] = {}
        self._names: dict[Resolver, Names] = {}
        self.by_address: dict[tuple[str, int, bool], tuple[StreamServer, Listen]] = {
            (x.host, x.port, x.udp): (s, x) for s in stream.servers for x in s.listens}

    def listens(self) -> list[Listen]:
        return [listen for _, listen in self.by_address.values()]

    def server_of(self, listen: Listen) -> StreamServer:
        return self.by_address[listen.host, listen.port, listen.udp][0]

    def accept(self, listen: Listen) -> TcpEnd:
        """The protocol of a new connection on ``listen``: a session's client end."""
        server, listen = self.by_address[listen.host, listen.port, False]
        return TcpEnd(Session(self, server, listen), server.tcp_nodelay)

    def port(self, listen: Listen) -> UdpPort:
        """The protocol of a ``listen ... udp`` socket."""
        server, listen = self.by_address[listen.host, listen.port, True]
        return UdpPort(Datagrams(self, server, listen))

    def tls_context(self, t: UpstreamTls) -> ssl.SSLContext:
        """proxy_ssl's context for these settings (made once: it does not depend on the
        name, which goes with each connection — but on whether there is one: with
        verification and none, no certificate passes, as nginx's)."""
        key = dataclasses.replace(t, name="named" if t.name else "")
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = upstream_context(t)
        return ctx

    def direct(self, host: str, port: int, addresses: tuple[str, ...]) -> Group:
        """The group a proxy_pass with variables reached: the addresses of ``host``
        (itself, when it is one), round robin, named as written (its passive health
        kept while the addresses are the same)."""
        name = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return self._kept((host, port, addresses), lambda: Group(Upstream(
            name, tuple(UpstreamServer(a, port) for a in addresses), implicit=True)))

    def socket(self, value: str) -> Group:
        """The group a proxy_pass with variables reached with ``unix:PATH`` (the
        prefix in any case, as nginx's, and so written in ``$upstream_addr``)."""
        return self._kept((value, 0, ()), lambda: Group(socket_upstream(value[5:], value)))

    def _kept(self, key: tuple[str, int, tuple[str, ...]], make: Callable[[], Group]) -> Group:
        group = self._direct.get(key)
        if group is None:
            if len(self._direct) > 1024:  # (a bound: the values come from requests)
                self._direct.clear()
            group = self._direct[key] = make()
        return group

    def names(self, config: Resolver) -> Names:
        """The resolver's names (one cache per resolver configuration, per worker)."""
        found = self._names.get(config)
        if found is None:
            found = self._names[config] = Names(config)
        return found


__all__ = ["Group", "Peer", "Preread", "Session", "StreamHost", "Streams", "UpstreamSide",
           "read_hello"]
