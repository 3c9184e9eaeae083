# cython: language_level=3
# cython: embedsignature=True
# cython: annotation_typing=False
"""One client connection, driven by the engine's callbacks: a request is dispatched as
soon as its head is parsed, pipelined requests are answered in order (the engine holds
the next one back until ``request_done``), timeouts are timers rather than waiting
coroutines, writes apply back-pressure, and the connection closes with a lingering
close or becomes a raw tunnel after an upgrade.

The common request (no body, proxied to a pooled upstream connection) runs entirely in
callbacks; everything else runs as one task per request (``fastgate.proxy.phases``).

A C class (its fields in server.pxd): uvloop and the engine call it for every read and
every request, and a C method is entered without a Python frame. The annotations are
the types mypy reads (server.pyi), not Cython's (annotation_typing is off).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from fastgate import openssl
from fastgate._wire import ConnectionInfo
from fastgate.errors import FastgateError
from fastgate.http.engine import ProtocolError
from fastgate.http.engines import server_engine
from fastgate.http.exchange import Exchange
from fastgate.http.flow import BodyBuffer, WriteGate
from fastgate.http.handler import (
    ConnectionObserver,
    ConnectionPolicy,
    RequestHandler,
    RequestPolicy,
)
from fastgate._wire cimport RequestHead
from fastgate.http.clock cimport monotonic
from fastgate.http.httptools_engine cimport HttptoolsServer
from fastgate.http.proxy_protocol import BrokenHeader, ProxyHeader, read_header
from fastgate.http.uri import target_first
from fastgate.openssl import OcspPolicy


cdef inline bint _backlogged(engine):
    # (the httptools engine's answer in C; any other engine's by its property)
    if type(engine) is HttptoolsServer:
        return (<HttptoolsServer>engine)._backlogged()
    return engine.backlogged


cdef inline bint _keeps_alive(engine):
    if type(engine) is HttptoolsServer:
        return (<HttptoolsServer>engine)._keeps_alive()
    return engine.keep_alive


class ClientGone(FastgateError):
    pass


def client_certificate(tls: ssl.SSLObject) -> tuple[bytes, int, str] | None:
    """The client's certificate (DER) and its verification (X509_V_OK, 0, and "", or
    OpenSSL's error and its words: the handshake let it through, as nginx's, and the
    request is answered for it), or None."""
    der = tls.getpeercert(binary_form=True)
    if der is None:
        return None
    return (der, *openssl.verify_result(tls))


_LINGER_ZERO = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # struct linger {1, 0}: reset at close


def _reset_on_close(transport: Any) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        except OSError:  # (gone already, or a socket that has no linger: closed as it is)
            pass


cdef class ClientConnection:
    # (an asyncio protocol by its methods: a C class cannot derive from asyncio.Protocol)

    def __init__(self, handler: RequestHandler[ClientConnection],
                 observer: ConnectionObserver[ClientConnection], policy: ConnectionPolicy,
                 engine: str, tls: bool, port: int, proxy_protocol: bool = False,
                 http2: Callable[[ClientConnection], Any] | None = None,
                 protocol: str = "",
                 certificate: tuple[bytes, int, str] | None = None) -> None:
        """``handler`` serves this listening address's requests, ``observer`` is the
        worker's view of its connections, ``policy`` the address's limits; ``engine``
        names the HTTP/1.1 engine; ``tls``, ``port`` and ``proxy_protocol`` (a PROXY
        protocol header comes first) describe the listener. ``http2`` makes the
        connection that takes over when the client speaks HTTP/2 (``listen ... http2``);
        ``protocol`` is "h2"/"h2c" for the connection of one HTTP/2 stream
        (``fastgate.http.http2``), and ``certificate`` then its connection's client
        certificate, as checked there."""
        self.handler = handler
        self.observer = observer
        gauge = getattr(getattr(observer, "idle", None), "__self__", None)
        self._gauge = gauge if isinstance(gauge, IdleGauge) else None
        self.engine_name = engine
        self.scheme = "https" if tls else "http"
        self.connection_id = observer.next_connection_id()
        self.requests = 0
        # the request being served came in bytes read with an earlier one ($pipe): it
        # is handed over while the engine starts the next request, not as bytes arrive
        self.pipelined = False
        self._starting_next = False
        self.transport = None
        self.engine = None
        self.gate = WriteGate()
        self.closed = False
        self.body = None
        self.idle = True  # between requests: a graceful stop may close it at once
        # how the layers above answer: made with the engine (``fastgate.http.exchange``)
        self.exchange = None
        self._lost = None  # made when a task asks
        self.remote_addr = ""
        self.remote_port = 0
        self.server_addr = ""
        self.server_port = port
        self.info = None  # once connection_made knows the addresses
        # timeouts are deadlines the worker's clock checks (no timer per request)
        self.deadline = 0.0
        self._loop = asyncio.get_event_loop()
        self._got_bytes = False
        self._born = 0.0  # when accepted: keepalive_time counts from here
        self._lingering = False
        # the rest of an answered request's body is being read and dropped (nginx's
        # discarded body); the connection then carries on
        self._discarding = False
        self._linger_until = 0.0  # lingering or discarding ends by then (lingering_time)
        self._peer_eof = False  # the client has closed its side
        self._tunnel = None
        self._dispatching = False
        self._feeding = False  # the engine is parsing bytes data_received gave it
        self._answered_early = False  # a request was answered inside its dispatch
        self._held_back = False  # reading paused: the engine holds a later request
        self._next_on_drain = False  # the next request waits for the client to read
        self._settings = policy
        # keepalive_* and lingering_* of the request in progress: the default server's
        # until its location is known (located), as nginx reads them from that location
        self._take_policy(policy.conn_policy)
        self._last = False  # the request being answered is the connection's last
        # the PROXY protocol header read so far, until it is whole (None: not expected,
        # or read before a TLS handshake: then it is _given_header)
        self._proxy_header = b"" if proxy_protocol else None
        self._given_header = None
        self._http2 = http2
        self._h2 = None  # the HTTP/2 connection that took this one over
        self._protocol = protocol
        self._certificate = certificate
        self._ocsp = None  # the certificate's status, asked

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if not self.observer.admit():
            self.closed = True
            transport.close()
            return
        peer = transport.get_extra_info("peername") or ("", 0)
        sock = transport.get_extra_info("sockname") or ("", 0)
        if isinstance(sock, str):  # a unix socket: nginx's "unix:" and "unix:PATH", no ports
            self.remote_addr, self.remote_port = "unix:", 0
            self.server_addr, self.server_port = "unix:" + sock, 0
        else:
            self.remote_addr, self.remote_port = str(peer[0]), (int(peer[1]) if len(peer) > 1
                                                                else 0)
            self.server_addr, self.server_port = str(sock[0]), (int(sock[1]) if len(sock) > 1
                                                                else 0)
        tls = transport.get_extra_info("ssl_object")
        certificate = self._certificate
        if tls is not None and not self._protocol:
            certificate = client_certificate(tls)
        raw = transport.get_extra_info("socket")
        self.info = ConnectionInfo(self.scheme, self.remote_addr, self.remote_port,
                                   self.server_addr, self.server_port, self.connection_id,
                                   (tls.version() or "") if tls is not None else "",
                                   self._given_header, certificate, self._protocol, tls,
                                   raw, time.monotonic())
        if raw is not None:
            try:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        count, size = self._settings.large_client_header_buffers
        self.engine = server_engine(self.engine_name, self, count * size, size,
                                    self._settings.client_header_buffer_size)
        self.exchange = Exchange(self, self.engine, transport, self.gate)
        self._alive_named = 0
        self._take_policy(self.policy)
        self._born = monotonic()
        self._arm(self._settings.client_header_timeout)
        self.observer.opened(self)
        self._count_idle(1)
        policy = getattr(tls.context, "ocsp", None) if tls is not None else None
        if policy is not None and certificate is not None and certificate[1] == 0:
            self._ask_status(policy, certificate)
            return
        self._begin(tls)

    def _begin(self, tls: ssl.SSLObject | None) -> None:
        """The connection's bytes are read from here: as HTTP/2 when ALPN chose it."""
        if (self._http2 is not None and tls is not None
                and tls.selected_alpn_protocol() == "h2"):
            self.speak_http2(b"")

    def _ask_status(self, policy: OcspPolicy, certificate: tuple[bytes, int, str]) -> None:
        """``ssl_ocsp``: nothing is read until the certificate's status is known (the
        wait is bounded by client_header_timeout, as the head it holds back); a status
        other than good makes the certificate a failed one (``FAILED:`` and 495)."""
        assert self.transport is not None
        self.transport.pause_reading()
        tls = self.transport.get_extra_info("ssl_object")
        self._ocsp = self._loop.create_task(self.observer.certificate_status(
            self, policy, openssl.verified_chain(tls)))

        def done(task: asyncio.Task[str]) -> None:
            self._ocsp = None
            if self.closed or task.cancelled():
                return
            try:
                words = task.result()
            except Exception as e:  # a bug: it costs this connection only
                self._crashed(e)
                return
            if words and self.info is not None:
                i = self.info
                self.info = i.learned(i.proxy_protocol, (certificate[0], -1, words))
            assert self.transport is not None
            self.transport.resume_reading()
            self._begin(self.transport.get_extra_info("ssl_object"))

        self._ocsp.add_done_callback(done)

    def speak_http2(self, data: bytes) -> None:
        """The client speaks HTTP/2 (chosen by ALPN, or begun with its preface): the
        connection's bytes go to an ``Http2Connection`` from here on; this one stays
        the connection the worker counts, times and stops, and it delegates."""
        assert self._http2 is not None and self.transport is not None
        self._disarm()
        h2 = self._h2 = self._http2(self)
        self.transport.set_protocol(h2)
        h2.connection_made(self.transport)
        if data:
            h2.data_received(data)

    def plain_on_tls(self, handler: RequestHandler[ClientConnection]) -> None:
        """The client of this ``listen ... ssl`` address sent plain HTTP
        (``http.tls_or_plain``): its requests are http ones, served by ``handler``
        (the address's, answering nginx's 497)."""
        self.handler = handler
        self.scheme = "http"

    @property
    def speaks_http2(self) -> bool:
        return self._h2 is not None

    def stream_connection(self, observer: ConnectionObserver[ClientConnection],
                          protocol: str) -> ClientConnection:
        """The connection one HTTP/2 stream of this one is served on: the same
        address's handler, limits and engine; ``observer`` is the HTTP/2 connection."""
        conn = ClientConnection(self.handler, observer, self._settings, self.engine_name,
                                self.scheme == "https", self.server_port, protocol=protocol,
                                certificate=self.info.client_certificate
                                if self.info is not None else None)
        if self.info is not None and self.info.proxy_protocol is not None:
            conn.header_given(self.info.proxy_protocol)
        return conn

    def data_received(self, data: bytes) -> None:
        if self.engine is None:
            return
        if self._proxy_header is not None:
            data = self.after_proxy_header(data)
            if not data:
                return
        if self._tunnel is not None:
            self._tunnel.write(data)
            return
        if self._lingering:
            self._linger_on()
            return
        if self._discarding and not self._linger_on():
            return  # (past lingering_time: closed, and nothing more is parsed)
        self._got_bytes = True
        engine = self.engine
        self._feeding = True
        try:
            if type(engine) is HttptoolsServer:  # (a C call)
                (<HttptoolsServer>engine).feed(data)
            else:
                engine.feed(data)
            # requests answered inside their dispatch (a refusal, a return): the next
            # one is taken here, once the engine is out of its callbacks — in a loop,
            # not a recursion, however many were pipelined
            while self._answered_early:
                self._answered_early = False
                self._after_response()
        except Exception as e:  # a bug: it costs this connection, never the event loop
            self._crashed(e)
            return
        finally:
            self._feeding = False
        if _backlogged(engine) and self.transport is not None:
            # pipelined requests wait in the engine: read no more until they are served
            # (again if a body's flow control resumed reading in between)
            self._held_back = True
            self.transport.pause_reading()

    def _decide_last(self, policy: RequestPolicy) -> None:
        """Whether this response is the connection's last, by ``policy``: then it says
        so (nginx's r->keepalive = 0: the exchange adds Connection: close to the head)
        and the connection closes after it."""
        self._last = last = (
            self.requests >= policy.keepalive_requests or policy.keepalive_timeout <= 0
            or monotonic() - self._born >= policy.keepalive_time)
        exchange = self.exchange
        if exchange is not None:
            exchange.last = last

    def located(self, policy: RequestPolicy, again: bool = False) -> None:
        if again and self._protocol:
            # an HTTP/2 stream's pushes are its last location's (nginx's header filter
            # reads r's loc conf as the answer goes)
            self.transport.promise((), False, None)
        if again:
            # a further location of the same request (an internal redirect): as nginx's
            # r->keepalive, once off it stays off
            self._take_policy(policy)
            if not self._last:
                self._decide_last(policy)
        elif policy is not self.policy:
            self._take_policy(policy)
            self._decide_last(policy)

    cdef int _take_policy(self, policy) except -1:
        """The policy of the location answering (keepalive_*, lingering_*): its values
        read on every request kept in C, and its Keep-Alive timeout (keepalive_timeout's
        second value) told to the engine when that changes (a configuration that sets
        none never does)."""
        self.policy = policy
        self._keepalive_timeout = policy.keepalive_timeout
        self._keepalive_requests = policy.keepalive_requests
        self._keepalive_time = policy.keepalive_time
        cdef int timeout = policy.keepalive_header
        if timeout != self._alive_named and self.engine is not None:
            self._alive_named = timeout
            self.engine.keep_alive_names(timeout)
        return 0

    def promise(self, paths: tuple[bytes, ...], preload: bool,
                warn: Callable[[bytes], None]) -> None:
        """``http2_push`` and ``http2_push_preload``: what the answer pushes, when this
        connection is an HTTP/2 stream's (its transport, ``http2.Stream``, promises)."""
        if self._protocol and self.transport is not None:
            self.transport.promise(paths, preload, warn)

    def close_after_response(self) -> None:
        """The response about to go ends this connection (``Connection: close``)."""
        if self.engine is not None:
            self.engine.no_keep_alive()

    def header_given(self, header: ProxyHeader) -> None:
        """A TLS listener's PROXY protocol header, read before the handshake (by
        ``TlsAfterHeader``), before this connection is made."""
        self._proxy_header = None
        self._given_header = header

    def header_broken(self, transport: asyncio.BaseTransport, message: str) -> None:
        """A TLS listener's connection began with something else: logged (with the
        peer's address), and closed by the caller."""
        peer = transport.get_extra_info("peername") or ("",)
        self.remote_addr = str(peer[0]) if isinstance(peer, tuple) else "unix:"
        self.handler.on_broken_header(self, message)

    def after_proxy_header(self, data: bytes) -> bytes:
        """The bytes after the PROXY protocol header the address expects, once it is
        whole (its addresses kept in ``info.proxy_protocol``); ``data`` as it is when no
        header is (still) expected. A broken header closes the connection."""
        if self._proxy_header is None:
            return data
        assert self.info is not None
        data = self._proxy_header + data
        try:
            found = read_header(data)
        except BrokenHeader as e:
            self._proxy_header = None
            self.handler.on_broken_header(self, str(e))
            self.abort()
            return b""
        if found is None:
            self._proxy_header = data
            return b""
        self._proxy_header = None
        header, used = found
        i = self.info
        self.info = i.learned(header, i.client_certificate)
        return data[used:]

    def _crashed(self, error: Exception) -> None:
        """An unexpected error under the engine's callbacks that nothing nearer caught:
        logged, and the connection cut (its state is unknown; a response that began
        must not look complete)."""
        self.handler.on_crash(self, error)
        self.abort()

    def eof_received(self) -> bool:
        if self.engine is None:
            return False
        # True keeps our side open (to finish the response in progress, or the tunnel's
        # other direction); a TLS transport closes whatever this says (and warns on
        # stderr for True), so over TLS it says False
        keep = bool(self._protocol) or self.info is None or self.info.tls is None
        if self._tunnel is not None:
            t = self._tunnel.transport
            if t is not None and t.can_write_eof():
                t.write_eof()
            return keep
        if self._lingering:
            self.close()
            return False
        self._peer_eof = True
        self.engine.feed(b"")
        return keep

    def connection_lost(self, exc: Exception | None) -> None:
        if self.engine is None:  # refused at once (worker_connections)
            return
        self.set_idle(False)
        self.closed = True
        self._disarm()
        gone = ClientGone("client closed the connection")
        self.gate.close(gone)
        if self.body is not None:
            self.body.fail(gone)
        if self.exchange is not None:
            self.exchange.on_gone()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if self._tunnel is not None:
            self._tunnel.close()
        if self._ocsp is not None:
            self._ocsp.cancel()
        self.observer.closed(self)

    def pause_writing(self) -> None:
        self.gate.pause()

    def resume_writing(self) -> None:
        self.gate.resume()
        if self.exchange is not None:
            self.exchange.on_writable()
        if self._next_on_drain:
            self._next_on_drain = False
            self._after_response()

    # --- engine callbacks --------------------------------------------------------------------

    cpdef on_request(self, RequestHead head):
        self.deadline = 0.0
        if self.exchange is not None:
            self.exchange.began = False
        if self.idle:
            self.idle = False
            self._idle_owed = True  # (counted after the dispatch, if it is still busy)
        self.requests += 1
        if self.policy is not self._settings.conn_policy:  # (a location's was)
            self._take_policy(self._settings.conn_policy)
        # _decide_last(policy), inline: once per request
        self._last = last = (
            self.requests >= self._keepalive_requests or self._keepalive_timeout <= 0
            or monotonic() - self._born >= self._keepalive_time)
        if last and self.exchange is not None:
            self.exchange.last = True
        self.pipelined = self._starting_next
        if head.content_length != 0:
            assert self.transport is not None
            self.body = BodyBuffer(self.transport.pause_reading, self.transport.resume_reading)
        else:
            self.body = None
        self._dispatching = True
        try:
            handler = self.handler
            if isinstance(handler, RequestHandlerBase):  # (a C call)
                (<RequestHandlerBase>handler).on_request(self, head)
            else:
                handler.on_request(self, head)
        finally:
            self._dispatching = False
            if self._idle_owed:  # (still busy: answered later, counted idle then)
                self._idle_owed = False
                self._count_idle(-1)

    def on_body(self, data: bytes) -> None:
        if self.body is not None:
            self.body.push(data)

    cpdef on_end(self):
        if self.body is not None:
            self.body.finish()
        if self._discarding:  # the discarded body has ended: the next request, if any
            self._discarding = False
            self._loop.call_soon(self._after_response)

    def on_error(self, error: ProtocolError) -> None:
        if self._discarding:
            # the rest of an answered request's body is malformed: nothing after it can
            # be trusted to start a request, and nothing is owed (nginx closes)
            self._discarding = False
            self.close()
            return
        if not self.idle:
            # the body of the request in progress is malformed: whoever reads it fails;
            # the engine parses no further, so the connection ends after this request
            if self.body is not None:
                self.body.fail(error)
            return
        self.set_idle(False)
        self.deadline = 0.0
        self.body = None
        # answered, maybe by an error page's location (a proxied one takes a while):
        # the handler ends the connection once its answer is out
        self.handler.on_refused(self, target_first(error))

    def on_eof(self) -> None:
        if self.idle:
            self.finish()

    # --- the request cycle ---------------------------------------------------------------------

    cpdef request_done(self):
        """The response is written: close, or wait for the next request."""
        if not self.idle:
            self._become_idle()
        if self._dispatching:
            # answered inside dispatch, before the engine has even reported the end of
            # the request: decided once the engine's feed returns (data_received), or
            # from the loop — never from deeper in this stack. (An HTTP/2 stream's
            # connection is fed from inside its connection's frame handling: from the
            # loop, so that nothing of that connection changes under it.)
            if self._feeding and not self._protocol:
                self._answered_early = True
            else:
                asyncio.get_running_loop().call_soon(self._after_response)
        else:
            self._after_response()

    def set_idle(self, idle: bool) -> None:
        if idle != self.idle:
            if idle:
                self._become_idle()
            else:
                self.idle = False
                self._count_idle(-1)

    cdef void _count_idle(self, int delta) except *:
        if self._gauge is not None:
            self._gauge.idle(delta)
        else:
            self.observer.idle(delta)

    cdef void _become_idle(self) except *:
        self.idle = True
        if self._idle_owed:
            self._idle_owed = False  # busy and idle again within one dispatch: no change
        else:
            self._count_idle(1)

    cpdef _after_response(self):
        if not self.idle:
            return
        # after the client's EOF the engine still hands over the requests it already
        # holds (pipelined), then reports the end
        if self.closed or self._last or self.observer.stopping:
            self.finish()
            return
        engine = self.engine
        if not _keeps_alive(engine):
            if not self._protocol and engine.discarding:
                self._discard()
            else:
                self.finish()
            return
        self._got_bytes = False
        self.deadline = monotonic() + self._keepalive_timeout
        if self.gate.paused:
            # the client is not reading our responses: serve no further pipelined
            # request until it does (else their answers pile up in our write buffer)
            self._next_on_drain = True
            return
        self._starting_next = True
        try:
            if type(engine) is HttptoolsServer:
                (<HttptoolsServer>engine).start_next()
            else:
                engine.start_next()
        finally:
            self._starting_next = False
        if (self._held_back and not _backlogged(engine) and not self.closed
                and self.transport is not None):
            self._held_back = False
            self.transport.resume_reading()

    def _discard(self) -> None:
        """The response went before the request's body was read (a refusal, a
        ``return``): the rest of the body is read and dropped, as it comes, for at most
        ``lingering_time`` (``lingering_timeout`` between reads), then the connection
        carries the next request, as nginx's discarded body; one that does not end in
        time closes it. The engine frames the body, so none of it is ever taken for a
        request. (An HTTP/2 stream's connection ends with its stream instead.)"""
        self._discarding = True
        if self.body is not None:
            self.body.discard()
        self._linger_until = monotonic() + self.policy.lingering_time
        self._linger_on()

    def _linger_on(self) -> bool:
        """Bytes came while lingering or discarding: wait ``lingering_timeout`` more,
        within ``lingering_time`` (False: that has passed, and the connection is
        closed)."""
        now = monotonic()
        if now >= self._linger_until:
            self.close()
            return False
        self.deadline = min(now + self.policy.lingering_timeout, self._linger_until)
        return True

    def _arm(self, timeout: float) -> None:
        self.deadline = monotonic() + timeout

    def _disarm(self) -> None:
        self.deadline = 0.0

    def expire(self) -> None:
        """The worker's clock found our deadline passed."""
        self.deadline = 0.0
        if self._h2 is not None:
            self._h2.expire()
            return
        if self._lingering or self._discarding:
            self.close()
            return
        if not self.idle:
            return
        if self._got_bytes:
            # a head that never completed (slowloris): closed without an answer, as
            # nginx, and reset with the default server's reset_timedout_connection (a
            # connection that sent nothing, or a keep-alive one, is closed: nginx had no
            # request to read the setting from)
            self.handler.on_header_timeout(self)
            if self.policy.reset_timedout_connection:
                self.abort(True)
                return
        self.close()  # (a timed-out connection does not linger, whatever lingering_close)

    # --- used by the phases --------------------------------------------------------------------

    def lost(self) -> asyncio.Future[None]:
        """Done when the client connection is lost: a task waiting on the upstream
        stops waiting for a client that went away."""
        if self._lost is None:
            self._lost = self._loop.create_future()
            if self.closed:
                self._lost.set_result(None)
        return self._lost

    def write(self, data: bytes) -> None:
        if data and not self.closed and self.transport is not None:
            self.transport.write(data)

    def finish(self) -> None:
        """Close after the last response; linger if the client may still be sending, so
        that our response is not lost to a TCP reset (nginx's lingering close:
        ``lingering_close on``, or always, or never)."""
        self._disarm()
        if self.closed or self.transport is None or self._tunnel is not None:
            return
        mode = self.policy.lingering_close
        if (mode != "off" and not self._peer_eof and self.transport.can_write_eof()
                and (mode == "always" or (self.body is not None and not self.body.done))):
            self._lingering = True
            try:
                self.transport.write_eof()
            except (OSError, RuntimeError):
                self.close()
                return
            self._linger_until = monotonic() + self.policy.lingering_time
            self._linger_on()
            return
        self.close()

    def retire(self) -> None:
        """Close after what has been written, and serve nothing more: the connection's
        state is unknown (a bug cost its request)."""
        self.finish()
        self.closed = True

    def close(self) -> None:
        self._disarm()
        if self._h2 is not None and not self.closed:
            self._h2.close()  # GOAWAY first; closed once its streams are answered
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self, reset: bool = False) -> None:
        """Cut the connection: a response that cannot be completed must not look complete.
        Once some of the answer is out it is reset, not closed: a close ends an HTTP/1.0
        client's body of no stated length (and a front proxy's, nginx's HTTP/1.0 by
        default) as if it were whole; a reset says it is not (nginx closes). With
        nothing of an answer out it is closed as nginx closes it (``return 444``, a
        request given no answer) — unless ``reset`` (reset_timedout_connection)."""
        self.closed = True
        self._disarm()
        if self.transport is not None:
            if reset or (not self.idle and self.exchange is not None
                         and self.exchange.began):
                _reset_on_close(self.transport)
            self.transport.abort()

    def start_tunnel(self, upstream: Any, client_rest: bytes, upstream_rest: bytes) -> None:
        """After a 101: bytes pass through unchanged both ways until either side closes."""
        self._tunnel = upstream
        upstream.tunnel = self
        if self._held_back and self.transport is not None:
            # bytes after the upgrade request (a first frame) held reading back: they
            # are the tunnel's now, and so is everything after them
            self._held_back = False
            self.transport.resume_reading()
        if upstream_rest:
            self.write(upstream_rest)
        if client_rest:
            upstream.write(client_rest)

    # the upstream side of a tunnel calls these
    def tunnel_write(self, data: bytes) -> None:
        self.write(data)

    def tunnel_eof(self) -> None:
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()

    def tunnel_close(self) -> None:
        self.close()
