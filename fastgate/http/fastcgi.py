"""FastCGI on the wire (the FastCGI 1.0 specification, as nginx's
``ngx_http_fastcgi_module`` speaks it): a request is a BEGIN_REQUEST record (role
responder), its parameters as name-value pairs in PARAMS records ended by an empty one,
and its body in STDIN records ended by an empty one. The application answers with
STDOUT records — a CGI response: header lines, a blank line, the body — STDERR records
(logged), and END_REQUEST.

Only framing lives here: the CGI response in STDOUT is read by ``http.cgi``, and what
the parameters are is the proxy's business (``proxy.cgi``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from fastgate.http.engine import ProtocolError

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


def request_head(params: Iterable[tuple[bytes, bytes]], keep_conn: bool) -> bytes:
    """What comes before the body: begin, the parameters and their empty record (the
    body then goes as ``stream(STDIN, ...)`` pieces, ended by ``record(STDIN)``)."""
    begin = record(BEGIN_REQUEST, struct.pack(">HB5x", RESPONDER,
                                              KEEP_CONN if keep_conn else 0))
    return begin + stream(PARAMS, pairs(params)) + record(PARAMS)


def request(params: Iterable[tuple[bytes, bytes]], body: bytes, keep_conn: bool) -> bytes:
    """A whole request: begin, parameters, body, each stream closed by its empty record."""
    return request_head(params, keep_conn) + stream(STDIN, body) + record(STDIN)


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
