"""FastCGI on the wire (the FastCGI 1.0 specification, as nginx's
``ngx_http_fastcgi_module`` speaks it): a request is a BEGIN_REQUEST record (role
responder), its parameters as name-value pairs in PARAMS records ended by an empty one,
and its body in STDIN records ended by an empty one. The application answers with
STDOUT records — a CGI response: header lines, a blank line, the body — STDERR records
(logged), and END_REQUEST.

Only framing lives here: what the parameters are is the proxy's business
(``proxy.fastcgi``).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable

from fastgate.http.engine import Headers, ProtocolError

VERSION = 1
BEGIN_REQUEST = 1
ABORT_REQUEST = 2
END_REQUEST = 3
PARAMS = 4
STDIN = 5
STDOUT = 6
STDERR = 7
RESPONDER = 1
KEEP_CONN = 1
# nginx's request id: one request per connection at a time
REQUEST_ID = 1
MAX_CONTENT = 65535

_HEADER = struct.Struct(">BBHHBx")
_END = struct.Struct(">IB3x")


def record(kind: int, content: bytes = b"") -> bytes:
    """One record, padded to a multiple of 8 bytes as nginx pads its own."""
    padding = -len(content) % 8
    return _HEADER.pack(VERSION, kind, REQUEST_ID, len(content), padding) + content + (
        b"\0" * padding)


def stream(kind: int, data: bytes) -> bytes:
    """``data`` as records of ``kind`` (at most 65535 bytes each); b"" for none."""
    return b"".join(record(kind, data[i:i + MAX_CONTENT])
                    for i in range(0, len(data), MAX_CONTENT))


def _length(n: int) -> bytes:
    return bytes((n,)) if n < 128 else struct.pack(">I", n | 0x80000000)


def pairs(params: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Name-value pairs: each length in one byte below 128, else four (high bit set)."""
    return b"".join(_length(len(k)) + _length(len(v)) + k + v for k, v in params)


def request(params: Iterable[tuple[bytes, bytes]], body: bytes, keep_conn: bool) -> bytes:
    """A whole request: begin, parameters, body, each stream closed by its empty record."""
    begin = record(BEGIN_REQUEST, struct.pack(">HB5x", RESPONDER,
                                              KEEP_CONN if keep_conn else 0))
    return (begin + stream(PARAMS, pairs(params)) + record(PARAMS)
            + stream(STDIN, body) + record(STDIN))


def read_pairs(data: bytes) -> list[tuple[bytes, bytes]]:
    """The name-value pairs of a PARAMS stream (for tests and the recording backend)."""
    out: list[tuple[bytes, bytes]] = []
    i = 0
    lengths = [0, 0]
    while i < len(data):
        for j in range(2):
            if data[i] < 128:
                lengths[j] = data[i]
                i += 1
            else:
                lengths[j] = struct.unpack(">I", data[i:i + 4])[0] & 0x7FFFFFFF
                i += 4
        k, v = lengths
        out.append((data[i:i + k], data[i + k:i + k + v]))
        i += k + v
    return out


class Records:
    """Splits the application's bytes into records as they arrive: ``feed`` returns
    the (type, content) of every record completed; END_REQUEST's content is its
    (app status, protocol status). Raises ProtocolError (a 502) on a record that is not
    FastCGI 1.0."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buf + data if self._buf else data
        out: list[tuple[int, bytes]] = []
        i = 0
        while len(buf) - i >= 8:
            version, kind, _, length, padding = _HEADER.unpack_from(buf, i)
            if version != VERSION:
                raise ProtocolError(f"upstream sent unsupported FastCGI protocol version: "
                                    f"{version}", 502)
            end = i + 8 + length + padding
            if len(buf) < end:
                break
            out.append((kind, buf[i + 8:i + 8 + length]))
            i = end
        self._buf = buf[i:]
        return out

    @property
    def pending(self) -> bool:
        """Part of a record has arrived and not the rest."""
        return bool(self._buf)


def end_status(content: bytes) -> tuple[int, int]:
    """END_REQUEST's application status and protocol status."""
    if len(content) < 8:
        raise ProtocolError("upstream sent invalid FastCGI end request record", 502)
    app, proto = _END.unpack_from(content)
    return app, proto


class CgiHead:
    """The CGI response head at the start of STDOUT: header lines up to a blank line
    (LF or CRLF), at most ``limit`` bytes (nginx's fastcgi_buffer_size: "upstream sent
    too big header" past it). ``feed`` returns None until the head is whole, then
    (status, reason, headers, the body bytes that followed it)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
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
        for raw in head.split(b"\n"):
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                continue
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip() or not _is_token(name):
                raise ProtocolError(f'upstream sent invalid header: "{_shown(line)}"', 502)
            value = value.strip(b" \t")
            lower = name.lower()
            if lower == b"status":
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


class FastcgiConnection:
    """One connection to a FastCGI application, over TCP or a unix socket: the
    request written, the records read as they come, the connection dropped after."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int, unix: str | None) -> FastcgiConnection:
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
