"""memcached's text protocol as nginx's ``ngx_http_memcached_module`` speaks it: one
``get KEY`` (the key escaped: space, "%" and control characters as %XX), and the answer
``VALUE KEY FLAGS LENGTH`` + the value + ``END``, or ``END`` alone for a miss."""

from __future__ import annotations

from fastgate.decimals import decimal
from fastgate.http.engine import ProtocolError

_ESCAPED = frozenset(range(0x20)) | {0x20, 0x25}


def escape(key: bytes) -> bytes:
    return b"".join(b"%%%02X" % c if c in _ESCAPED else bytes((c,)) for c in key)


def request(key: bytes) -> bytes:
    return b"get " + escape(key) + b"\r\n"


class Answer:
    """Reads the answer to ``get key`` (``key`` as sent, escaped) as it arrives:
    ``feed`` returns None until it is whole, then (flags, value), or None for the
    value when the key is not there. ProtocolError (a 502) on anything else."""

    def __init__(self, key: bytes, limit: int) -> None:
        self.key = key
        self.limit = limit  # memcached_buffer_size: the longest first line
        self._buf = b""
        self._head: tuple[int, int, int] | None = None  # flags, length, where it starts

    def feed(self, data: bytes) -> tuple[int, bytes | None] | None:
        buf = self._buf = self._buf + data
        if self._head is None:
            eol = buf.find(b"\n")
            if eol < 0:
                if len(buf) > self.limit:
                    raise ProtocolError("upstream sent too big header", 502)
                return None
            line = buf[:eol]
            if not line.endswith(b"\r"):
                raise ProtocolError(f'memcached sent invalid response: "{_shown(line)}"', 502)
            line = line[:-1]
            if line == b"END":
                return 0, None
            if not line.startswith(b"VALUE "):
                raise ProtocolError(f'memcached sent invalid response: "{_shown(line)}"', 502)
            rest = line[len(b"VALUE "):]
            if not rest.startswith(self.key + b" "):
                raise ProtocolError(f'memcached sent invalid key in response "{_shown(line)}" '
                                    f'for key "{_shown(self.key)}"', 502)
            fields = rest[len(self.key) + 1:].split(b" ")
            flags = decimal(fields[0]) if len(fields) >= 2 else None
            length = decimal(fields[1]) if len(fields) >= 2 else None
            if flags is None or length is None:
                raise ProtocolError(f'memcached sent invalid length in response '
                                    f'"{_shown(line)}" for key "{_shown(self.key)}"', 502)
            self._head = (flags, length, eol + 1)
        flags, length, start = self._head
        end = start + length
        if len(buf) < end + len(b"\r\nEND\r\n"):
            return None
        if buf[end:end + 7] != b"\r\nEND\r\n":
            raise ProtocolError("memcached sent invalid trailer", 502)
        return flags, buf[start:end]


def _shown(raw: bytes) -> str:
    return raw[:64].decode("latin-1").encode("unicode_escape").decode("ascii")
