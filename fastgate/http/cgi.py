"""What nginx's CGI-family modules (FastCGI, uwsgi, SCGI) read back from an
application: a CGI response — header lines, a blank line, the body — where ``Status:``
gives the status (else 302 with a ``Location``, else 200); uwsgi and SCGI applications
may start with an HTTP status line instead, as nginx's modules accept. And the
connection to the application, over TCP or a unix socket."""

from __future__ import annotations

import asyncio
import errno
import os
import ssl
from typing import cast

from fastgate.http.client import probe_when_idle
from fastgate.http.engine import Headers, ProtocolError


class CgiHead:
    """The CGI response head at the start of the application's output: header lines
    up to a blank line (LF or CRLF), at most ``limit`` bytes (nginx's *_buffer_size:
    "upstream sent too big header" past it); with ``status_line``, an HTTP status line
    may come first (then it gives the status). ``feed`` returns None until the head is
    whole, then (status, reason, headers, the body bytes that followed it)."""

    def __init__(self, limit: int, status_line: bool = False) -> None:
        self.limit = limit
        self.status_line = status_line
        self._buf = b""

    def feed(self, data: bytes) -> tuple[int, bytes, Headers, bytes] | None:
        buf = self._buf + data
        end, skip = _blank_line(buf)
        if end < 0:
            if len(buf) > self.limit:
                raise ProtocolError("upstream sent too big header", 502)
            self._buf = buf
            return None
        if end > self.limit:
            raise ProtocolError("upstream sent too big header", 502)
        head, rest = buf[:end], buf[end + skip:]
        self._buf = b""
        headers: Headers = []
        status = reason = None
        location = False
        lines = head.split(b"\n")
        first = lines[0].rstrip(b"\r")
        if self.status_line and first.startswith(b"HTTP/"):
            status, reason = _status_line(first)
            lines = lines[1:]
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                continue
            name, colon, value = line.partition(b":")
            # (a NUL anywhere in the line is invalid, as nginx's header parser has it)
            if (not colon or not name or name != name.strip() or not _is_token(name)
                    or b"\0" in value):
                raise ProtocolError(f'upstream sent invalid header: "{_shown(line)}"', 502)
            value = value.strip(b" \t")
            lower = name.lower()
            if lower == b"status":
                if status is None or not first.startswith(b"HTTP/"):
                    status, reason = _status(value)
                continue
            if lower == b"location":
                location = True
            headers.append((name, value))
        if status is None:
            status, reason = (302, b"Moved Temporarily") if location else (200, b"OK")
        assert reason is not None
        return status, reason, headers, rest


def _blank_line(buf: bytes) -> tuple[int, int]:
    """Where the head ends and how long its blank line is, or (-1, 0)."""
    if buf.startswith(b"\r\n"):
        return 0, 2
    if buf.startswith(b"\n"):
        return 0, 1
    at = buf.find(b"\n\r\n")
    lf = buf.find(b"\n\n")
    if at >= 0 and (lf < 0 or at < lf):
        return at + 1, 2
    if lf >= 0:
        return lf + 1, 1
    return -1, 0


def _status_line(line: bytes) -> tuple[int, bytes]:
    """``HTTP/1.1 200 OK``, as nginx's status line parser takes it."""
    parts = line.split(b" ", 2)
    version = parts[0][5:]
    if (len(parts) < 2 or len(version) != 3 or version[1:2] != b"." or not
            (version[:1].isdigit() and version[2:].isdigit())):
        raise ProtocolError(f'upstream sent invalid status line "{_shown(line)}"', 502)
    code, reason = _status(b" ".join(parts[1:]))
    return code, reason


def _status(value: bytes) -> tuple[int, bytes]:
    """``Status: 404 Not Found``: nginx reads its first three characters as the code."""
    code = value[:3]
    if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 999:
        raise ProtocolError(f'upstream sent invalid status "{_shown(value)}"', 502)
    reason = value[3:].strip()
    return int(code), reason


_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                   b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _is_token(name: bytes) -> bool:
    return all(c in _TOKEN for c in name)


def _shown(raw: bytes) -> str:
    return raw[:64].decode("latin-1").encode("unicode_escape").decode("ascii")


# past this much unread, reading from the application waits for the reader
_READ_AHEAD = 65536


def _broken_pipe() -> OSError:
    """A write on a connection that is gone, as the kernel reports it (an errno, so
    a message says "32: Broken pipe", never "None: None")."""
    return BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


class _AppProtocol(asyncio.Protocol):
    """What the application sent, kept in order with how its connection ended: a
    reset after an answer is seen after the answer (asyncio's StreamReader raises it
    first, losing bytes nginx's recv() would have returned)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.ended = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.writable: asyncio.Future[None] | None = None
        self.reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > _READ_AHEAD and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        self._wake()
        if self.writable is not None and not self.writable.done():
            self.writable.set_exception(exc or _broken_pipe())

    def pause_writing(self) -> None:
        if self.writable is None or self.writable.done():
            self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class AppConnection:
    """One connection to an application, over TCP or a unix socket: the request
    written, what it answers read as it comes, the connection dropped after."""

    def __init__(self, protocol: _AppProtocol) -> None:
        self._p = protocol

    @classmethod
    async def open(cls, host: str, port: int, unix: str | None,
                   tls: ssl.SSLContext | None = None, name: str = "",
                   keepalive: bool = False) -> AppConnection:
        """Connected — with ``tls``, its handshake made (SNI and the name checked:
        ``name``, "" none), with TCP keep-alive probes when ``keepalive`` — or the
        OSError (ssl.SSLError among them) why not."""
        loop = asyncio.get_running_loop()
        # (asyncio takes "" as no name: no SNI, nothing checked; None would send host)
        hostname = name if tls is not None else None
        if unix is not None:
            _, p = await loop.create_unix_connection(lambda: _AppProtocol(loop), unix,
                                                     ssl=tls, server_hostname=hostname)
        else:
            _, p = await loop.create_connection(lambda: _AppProtocol(loop), host, port,
                                                ssl=tls, server_hostname=hostname)
        if keepalive:
            probe_when_idle(p.transport)
        return cls(p)

    async def send(self, data: bytes, timeout: float) -> None:
        """``data`` handed to the kernel (TimeoutError after ``timeout`` seconds; the
        OSError when the connection failed first)."""
        p = self._p
        if p.transport is None or p.transport.is_closing():
            if isinstance(p.error, OSError):
                raise p.error
            if p.ended and p.error is None:
                # the application closed its side: the kernel would take this write (as
                # nginx's writev after a FIN), and what it sent first is read next
                return
            raise _broken_pipe()
        p.transport.write(data)
        if p.writable is not None and not p.writable.done():
            await asyncio.wait_for(asyncio.shield(p.writable), timeout)

    async def read(self, timeout: float) -> bytes:
        """What arrives next; b"" when the application closed, its OSError when the
        connection failed — after every byte that came before (TimeoutError after
        ``timeout`` seconds of silence)."""
        p = self._p
        if not p.chunks and not p.ended:
            p.waiter = p.loop.create_future()
            try:
                await asyncio.wait_for(p.waiter, timeout)
            finally:
                p.waiter = None
        if p.chunks:
            data = p.chunks[0] if len(p.chunks) == 1 else b"".join(p.chunks)
            p.chunks.clear()
            p.size = 0
            if p.reading_paused and p.transport is not None and not p.transport.is_closing():
                p.reading_paused = False
                p.transport.resume_reading()
            return data
        if isinstance(p.error, OSError):
            raise p.error
        return b""

    def abort(self) -> None:
        if self._p.transport is not None and not self._p.transport.is_closing():
            self._p.transport.abort()
