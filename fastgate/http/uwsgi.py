"""The uwsgi protocol's request, as nginx's ``ngx_http_uwsgi_module`` writes it: a
4-byte header (modifier1, the size of the variables as 16 bits little-endian,
modifier2), the variables as (16-bit length, name, 16-bit length, value) pairs, then the
body as it is. The answer is the application's raw output (``http.cgi``), until it
closes the connection."""

from __future__ import annotations

import struct
from collections.abc import Iterable

from fastgate.errors import FastgateError

MAX_VARS = 65535


class TooBig(FastgateError):
    """The variables do not fit the 16-bit size of the packet (nginx: "uwsgi request is
    too big", a 500)."""


def request(params: Iterable[tuple[bytes, bytes]], body: bytes, modifier1: int = 0,
            modifier2: int = 0, string: bytes = b"") -> bytes:
    """The whole request; ``string`` is ``uwsgi_string``'s bytes, sent after the
    variables (and counted in their size), as nginx does."""
    pack = struct.Struct("<H").pack
    parts = []
    for name, value in params:
        if len(name) > MAX_VARS or len(value) > MAX_VARS:
            raise TooBig(f"uwsgi request is too big: {len(name) + len(value)}")
        parts.append(pack(len(name)) + name + pack(len(value)) + value)
    data = b"".join(parts) + string
    if len(data) > MAX_VARS:
        raise TooBig(f"uwsgi request is too big: {len(data)}")
    return bytes((modifier1,)) + pack(len(data)) + bytes((modifier2,)) + data + body


def read_vars(packet: bytes) -> tuple[int, int, list[tuple[bytes, bytes]], bytes]:
    """(modifier1, modifier2, the variables, what follows them) of a request (for
    tests and the recording backend)."""
    size = struct.unpack_from("<H", packet, 1)[0]
    data = packet[4:4 + size]
    out = []
    i = 0
    while i < len(data):
        k = struct.unpack_from("<H", data, i)[0]
        name = data[i + 2:i + 2 + k]
        i += 2 + k
        v = struct.unpack_from("<H", data, i)[0]
        out.append((name, data[i + 2:i + 2 + v]))
        i += 2 + v
    return packet[0], packet[3], out, packet[4 + size:]
