"""A connection to a ``listen ... ssl`` address until its first byte says whether the
client speaks TLS, as nginx's ngx_http_ssl_handshake decides: a TLS record (0x16) or an
SSLv2 hello (high bit set) begins the handshake; anything else is plain HTTP sent to
the HTTPS port, which the HTTP layer answers with nginx's 497 (a 400 page that says so,
or the address's ``error_page 497``, often a redirect to https://). Before, such a
client got its connection closed without a word.

The handshake is the event loop's own TLS protocol (uvloop's, compiled, as
``create_server(ssl=...)`` would make it), given the bytes already read; once it is
under way this protocol is out of the path."""

from __future__ import annotations

import asyncio
import ssl
from asyncio import sslproto
from collections.abc import Callable
from typing import Any

_HANDSHAKE = 0x16  # a TLS handshake record


def _tls_protocol_class(loop: asyncio.AbstractEventLoop) -> Any:
    """uvloop's SSLProtocol on a uvloop loop (the gateway's), asyncio's on another (the
    in-process tests'): the same constructor."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency
        return sslproto.SSLProtocol
    if isinstance(loop, uvloop.Loop):
        return uvloop.loop.SSLProtocol  # type: ignore[attr-defined]
    return sslproto.SSLProtocol


def is_tls(first: int) -> bool:
    return first == _HANDSHAKE or bool(first & 0x80)


class TlsOrPlain(asyncio.Protocol):
    """``conn`` (the application protocol) served over TLS with ``context``, or, when
    the first byte is not TLS and ``plain`` is given, over the bare transport after
    ``plain()`` has told it so (None: the handshake gets the bytes, and fails, as a
    stream or mail address does). ``wait`` bounds the wait for the first byte
    (nginx's client_header_timeout), ``handshake`` the handshake (None: the loop's
    default)."""

    def __init__(self, conn: Any, context: ssl.SSLContext, handshake: float | None,
                 wait: float, plain: Callable[[], None] | None,
                 accepted: Callable[[asyncio.BaseTransport], bool] | None = None,
                 failed: Callable[[BaseException], None] | None = None) -> None:
        self.conn = conn
        self.context = context
        self.handshake = handshake
        self.wait = wait
        self.plain = plain
        # a stream or mail session's: told of the client before its handshake (nginx
        # numbers and logs it then; False: it is not served), and of a handshake that
        # failed (before, such a client left no line)
        self.accepted = accepted
        self.failed = failed
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.accepted is not None and not self.accepted(transport):
            self._done = True
            self.transport.abort()  # type: ignore[union-attr]
            return
        self._timer = asyncio.get_running_loop().call_later(self.wait, self._expired)

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if self._done or transport is None or not data:
            return
        self._done = True
        self._stop_timer()
        if self.plain is not None and not is_tls(data[0]):
            self.plain()
            transport.set_protocol(self.conn)
            self.conn.connection_made(transport)
            if not transport.is_closing():
                self.conn.data_received(data)
            return
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        tls = _tls_protocol_class(loop)(
            loop, self.conn, self.context, waiter, server_side=True, server_hostname=None,
            ssl_handshake_timeout=self.handshake)

        failed = self.failed

        def handshaken(done: asyncio.Future[None]) -> None:
            # (as uvloop's server: a failed handshake closes the connection, and its
            # exception is taken so that it is not reported as never retrieved)
            if not done.cancelled() and (error := done.exception()) is not None:
                if failed is not None:
                    failed(error)
                transport.abort()

        waiter.add_done_callback(handshaken)
        transport.set_protocol(tls)
        tls.connection_made(transport)
        view = memoryview(data)
        while view and not transport.is_closing():
            buf = tls.get_buffer(len(view))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            tls.buffer_updated(n)
            view = view[n:]

    def _expired(self) -> None:
        self._timer = None
        if self.transport is not None and not self._done:
            self._done = True
            if self.failed is not None:
                self.failed(TimeoutError())
            self.transport.abort()  # nothing in time: closed without an answer, as nginx

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def eof_received(self) -> bool | None:
        return False  # closed before its first byte

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        if not self._done and self.failed is not None:
            self.failed(ConnectionResetError())  # (closed before its first byte)
        self._done = True


__all__ = ["TlsOrPlain", "is_tls"]
