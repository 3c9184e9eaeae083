"""One end of a proxied TCP connection, for the stream block (``proxy.stream``): the
transport stays here, in the layer that owns transports; the layer above sees bytes
in, bytes out, flow control and the ends, through its ``TcpOwner``."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
from typing import Any, Protocol

from fastgate.http.proxy_protocol import ProxyHeader


class TcpOwner(Protocol):
    """What an end tells the session that owns it."""

    def made(self, end: TcpEnd) -> None: ...

    def received(self, data: bytes) -> None: ...

    def ended(self) -> bool | None:
        """The other side ended its sending: True keeps this end open for writing."""

    def lost(self) -> None: ...

    def blocked(self) -> None:
        """What is written to this end waits: stop reading what feeds it."""

    def unblocked(self) -> None: ...

    def header_given(self, header: ProxyHeader) -> None:
        """``listen ... ssl proxy_protocol``: the header, read before the handshake."""

    def header_broken(self, end: TcpEnd, why: str) -> None:
        """``listen ... ssl proxy_protocol``: what came first was not a header."""

    def accepted(self, end: TcpEnd) -> bool:
        """``listen ... ssl``: a client accepted, its handshake to come (nginx numbers
        and logs it now); False: not served (the connection is cut)."""

    def handshake_failed(self, why: str) -> None:
        """``listen ... ssl``: the accepted client's handshake failed (``why``, nginx's
        words); the connection is cut."""

    def crashed(self, error: Exception) -> None:
        """An unexpected error under a callback (a bug): log it, end the session."""


def handshake_failure(error: BaseException) -> str:
    """A client's failed TLS handshake in nginx's words (what follows is "while SSL
    handshaking")."""
    if isinstance(error, (ConnectionError, EOFError, ssl.SSLEOFError)) or not str(error):
        return "peer closed connection in SSL handshake"
    if isinstance(error, ssl.SSLError) and error.reason:
        return f"SSL_do_handshake() failed (SSL: {error.reason.lower().replace('_', ' ')})"
    if isinstance(error, TimeoutError):
        return "SSL handshake timed out"
    return f"SSL_do_handshake() failed ({error})"


class TcpEnd(asyncio.Protocol):
    """A client's or an upstream server's connection, as a session drives it."""

    def __init__(self, owner: TcpOwner, nodelay: bool = True) -> None:
        self.owner = owner
        self.nodelay = nodelay
        self._t: asyncio.Transport | None = None
        self._wrote_eof = False

    # -- asyncio ---------------------------------------------------------------------------------

    # (an error under a callback is a bug: the owner logs it and ends the session,
    # rather than asyncio printing a traceback)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._t = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and self.nodelay:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # (not TCP: nothing to set)
                pass
        try:
            self.owner.made(self)
        except Exception as e:
            self.owner.crashed(e)

    def data_received(self, data: bytes) -> None:
        try:
            self.owner.received(data)
        except Exception as e:
            self.owner.crashed(e)

    def eof_received(self) -> bool | None:
        try:
            return self.owner.ended()
        except Exception as e:
            self.owner.crashed(e)
            return None

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self.owner.lost()
        except Exception as e:
            self.owner.crashed(e)

    def pause_writing(self) -> None:
        try:
            self.owner.blocked()
        except Exception as e:
            self.owner.crashed(e)

    def resume_writing(self) -> None:
        try:
            self.owner.unblocked()
        except Exception as e:
            self.owner.crashed(e)

    def header_given(self, header: ProxyHeader) -> None:
        self.owner.header_given(header)

    def header_broken(self, transport: asyncio.BaseTransport, why: str) -> None:
        self._t = transport  # type: ignore[assignment]
        try:
            self.owner.header_broken(self, why)
        except Exception as e:
            self.owner.crashed(e)

    def accepted(self, transport: asyncio.BaseTransport) -> bool:
        """(``TlsOrPlain``'s: the connection, before its handshake)"""
        self._t = transport  # type: ignore[assignment]
        try:
            return self.owner.accepted(self)
        except Exception as e:
            self.owner.crashed(e)
            return False

    def handshake_failed(self, error: BaseException) -> None:
        """(``TlsOrPlain``'s: the handshake's error, in nginx's words for the owner)"""
        try:
            self.owner.handshake_failed(handshake_failure(error))
        except Exception as e:
            self.owner.crashed(e)

    # -- what the session does -------------------------------------------------------------------

    def info(self, name: str) -> Any:
        return self._t.get_extra_info(name) if self._t is not None else None

    def address(self, which: str) -> tuple[str, int]:
        """``peername`` or ``sockname``, as text and port: a unix socket's as nginx
        writes them, the client ``unix:`` and the listening socket ``unix:PATH``, with no
        port."""
        found = self.info(which)
        if isinstance(found, (str, bytes)):  # (a unix socket; an unnamed client's is "")
            return ("unix:" + os.fsdecode(found) if which == "sockname" else "unix:"), 0
        if not found:
            return "", 0
        return str(found[0]), int(found[1])

    @property
    def open(self) -> bool:
        return self._t is not None and not self._t.is_closing()

    def write(self, data: bytes) -> None:
        if self.open:
            assert self._t is not None
            self._t.write(data)

    def write_eof(self) -> None:
        """End this side's sending (what was written still goes first)."""
        t = self._t
        if t is not None and not self._wrote_eof and not t.is_closing() and t.can_write_eof():
            self._wrote_eof = True
            t.write_eof()

    def pause(self) -> None:
        if self.open:
            assert self._t is not None
            self._t.pause_reading()

    def resume(self) -> None:
        if self.open:
            assert self._t is not None
            self._t.resume_reading()

    async def start_tls(self, ctx: ssl.SSLContext, timeout: float) -> None:
        """STARTTLS: a server's TLS handshake on this connection, after what was written
        in clear has gone; from then on its bytes are TLS's (ssl.SSLError, OSError or
        TimeoutError when the handshake fails)."""
        t = self._t
        if t is None or t.is_closing():
            raise ConnectionError("the connection is closed")
        new = await asyncio.get_running_loop().start_tls(
            t, self, ctx, server_side=True, ssl_handshake_timeout=timeout)
        if new is None:
            raise ConnectionError("the connection closed during the handshake")
        self._t = new

    def close(self) -> None:
        """Closed once what was written has gone."""
        if self._t is not None:
            self._t.close()

    def close_unread(self) -> None:
        """Closed once what was written has gone, as a socket closed with bytes left
        unread is: with a reset (SO_LINGER 0), what the peer sent after being refused
        never read."""
        sock = self.info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.close()

    def abort(self) -> None:
        if self._t is not None:
            self._t.abort()


async def connect(owner: TcpOwner, host: str, port: int, nodelay: bool,
                  tls: ssl.SSLContext | None = None, name: str | None = None,
                  unix: str | None = None) -> TcpEnd:
    """A connection to ``host:port`` (the socket at ``unix``, when given) for ``owner``,
    over TLS with ``tls`` (``name``: the SNI sent and the name checked); OSError
    (ssl.SSLError for the handshake) when it cannot be made."""
    end = TcpEnd(owner, nodelay)
    loop = asyncio.get_running_loop()
    sni = name if tls is not None else None
    if unix is not None:
        await loop.create_unix_connection(lambda: end, unix, ssl=tls, server_hostname=sni)
    else:
        await loop.create_connection(lambda: end, host, port, ssl=tls, server_hostname=sni)
    return end


__all__ = ["TcpEnd", "TcpOwner", "connect"]
