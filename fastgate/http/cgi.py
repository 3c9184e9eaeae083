"""What nginx's CGI-family modules (FastCGI, uwsgi, SCGI) read back from an
application: a CGI response — header lines, a blank line, the body — where ``Status:``
gives the status (else 302 with a ``Location``, else 200); uwsgi and SCGI applications
may start with an HTTP status line instead, as nginx's modules accept. And the
connection to the application, over TCP or a unix socket."""

from __future__ import annotations

import asyncio

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
            if not colon or not name or name != name.strip() or not _is_token(name):
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


class AppConnection:
    """One connection to an application, over TCP or a unix socket: the request
    written, what it answers read as it comes, the connection dropped after."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int, unix: str | None) -> AppConnection:
        """Connected (OSError when it cannot be)."""
        if unix is not None:
            reader, writer = await asyncio.open_unix_connection(unix)
        else:
            reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, data: bytes, timeout: float) -> None:
        """``data`` written and drained (TimeoutError after ``timeout`` seconds)."""
        self._writer.write(data)
        await asyncio.wait_for(self._writer.drain(), timeout)

    async def read(self, timeout: float) -> bytes:
        """What arrives next; b"" when the application closed (TimeoutError after
        ``timeout`` seconds of silence)."""
        return await asyncio.wait_for(self._reader.read(65536), timeout)

    def abort(self) -> None:
        self._writer.transport.abort()
