"""nginx's charset filter: ``charset NAME`` names the charset in the Content-Type of a
response — proxied, a file or fastgate's own — whose type is one of ``charset_types``
(``*``: any) and which names none yet; never for a 301 or 302 (nginx: old browsers
took a redirect's charset for the next page's).

With ``source_charset`` (the charset of responses that name none) or ``override_charset
on`` (a response's own charset is recoded too), a body in another charset is recoded
to ``charset``'s through the ``charset_map`` between the two, as nginx's: bytes to
bytes keep the length; to or from UTF-8 the length goes (the client's engine frames
the body). A character the map does not have becomes "?" (to bytes from bytes, or to
UTF-8) or an HTML character reference ``&#N;`` (from UTF-8); a byte that is not UTF-8
"?". A response with a Content-Encoding is not recoded and keeps its charset; two
charsets without a map between them (known only with variables: the loader refuses
the rest) are logged and the response goes as it is. Recoding runs after sub_filter,
as nginx's filters do.

An upstream's ``X-Accel-Charset`` (unless ``*_ignore_headers`` names it; hidden from the
client) names the charset its response goes in, as nginx's does: a charset the
configuration knows is the destination whatever the location's ``charset``,
``charset_types`` and ``override_charset`` say (the body recoded from its own or the
source charset when a map joins them); one it does not know is an error, and the
response goes with no charset work at all."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from fastgate.variables import Template

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from fastgate.config.model import CharsetMap, Settings
    from fastgate.http.engine import Headers
    from fastgate.proxy.request import Request


class Recoder(Protocol):
    """A body recoded as it streams: ``feed`` each piece, ``finish`` at the end."""

    keeps_length: bool

    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class BytesRecoder:
    """One byte for one byte, through a 256-byte table."""

    keeps_length = True

    def __init__(self, table: bytes) -> None:
        self._table = table

    def feed(self, data: bytes) -> bytes:
        return data.translate(self._table)

    def finish(self) -> bytes:
        return b""


class ToUtf8:
    """Each byte to its character in UTF-8."""

    keeps_length = False

    def __init__(self, table: dict[int, str]) -> None:
        self._table = table

    def feed(self, data: bytes) -> bytes:
        return data.decode("latin-1").translate(self._table).encode("utf-8")

    def finish(self) -> bytes:
        return b""


_HIGH = re.compile(rb"[\x80-\xff]")


class FromUtf8:
    """UTF-8 to bytes, read as nginx's ngx_utf8_decode reads it: an overlong form, a
    lead byte without its continuation or a code point past U+10FFFF is "?"; a
    character split between two pieces waits for the next."""

    keeps_length = False

    def __init__(self, table: dict[int, int]) -> None:
        self._table = table
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        buf = self._held + data if self._held else data
        self._held = b""
        out = bytearray()
        i, n = 0, len(buf)
        table = self._table
        while i < n:
            m = _HIGH.search(buf, i)
            if m is None:
                out += buf[i:]
                break
            j = m.start()
            out += buf[i:j]
            i = j
            c = buf[i]
            if c >= 0xF0:
                u, more, smallest = c & 0x07, 3, 0x10000
            elif c >= 0xE0:
                u, more, smallest = c & 0x0F, 2, 0x800
            elif c >= 0xC2:
                u, more, smallest = c & 0x1F, 1, 0x80
            else:
                out += b"?"
                i += 1
                continue
            if n - i - 1 < more:
                self._held = buf[i:]  # the rest of it is in the next piece
                break
            i += 1
            for _ in range(more):
                b = buf[i]
                i += 1
                if b < 0x80:  # (consumed, as nginx's decoder does)
                    u = -1
                    break
                u = (u << 6) | (b & 0x3F)
            if u < smallest or u > 0x10FFFF:
                out += b"?"
                continue
            byte = table.get(u)
            out += bytes((byte,)) if byte is not None else b"&#%d;" % u
        return bytes(out)

    def finish(self) -> bytes:
        self._held = b""  # a character the body ends inside of is dropped, as nginx's
        return b""


def recoder(m: CharsetMap) -> Recoder:
    if m.kind == "bytes":
        assert isinstance(m.table, bytes)
        return BytesRecoder(m.table)
    assert isinstance(m.table, dict)
    if m.kind == "to_utf8":
        return ToUtf8(m.table)  # type: ignore[arg-type]
    return FromUtf8(m.table)  # type: ignore[arg-type]


def _own_charset(value: bytes) -> tuple[int, bytes] | None:
    """Where the Content-Type's ``charset=`` parameter begins (its ";") and its value,
    or None when it names no charset."""
    at = 0
    while True:
        semi = value.find(b";", at)
        if semi < 0:
            return None
        param = value[semi + 1:].lstrip(b" ")
        if param[:8].lower() == b"charset=":
            name = param[8:].split(b";", 1)[0]
            if name.startswith(b'"'):
                name = name[1:].split(b'"', 1)[0]
            return semi, name.strip()
        at = semi + 1


def decide(headers: Headers, status: int, s: Settings, req: Request
           ) -> tuple[Headers, CharsetMap | None, str | None]:
    """nginx's charset header filter: the headers the client gets, the map that
    recodes the body (None: it goes as it is) and an error to log."""
    if s.charset is None:
        return headers, None, None
    i = next((i for i, (name, _) in enumerate(headers) if name.lower() == b"content-type"),
             -1)
    if i < 0:
        return headers, None, None
    value = headers[i][1]
    own = _own_charset(value)
    if own is not None:
        if not s.override_charset:
            return headers, None, None
    else:
        kind = value.split(b";", 1)[0].strip().lower().decode("latin-1")
        if "*" not in s.charset_types and kind not in s.charset_types:
            return headers, None, None
    dst = s.charset.render(req)
    if not dst:
        return headers, None, None
    if own is not None:
        src = own[1].decode("latin-1")
    elif s.source_charset is not None:
        src = s.source_charset.render(req)
    else:
        return _named(headers, i, value, own, dst, status), None, None
    if src.lower() == dst.lower():
        return _named(headers, i, value, own, dst, status), None, None
    m = s.charset_maps.get((src.lower(), dst.lower()))
    if m is None:
        return headers, None, (f'no "charset_map" between the charsets "{src}" and '
                               f'"{dst}"')
    if any(n.lower() == b"content-encoding" and v for n, v in headers):
        return headers, None, None  # (compressed: left as it is)
    return _named(headers, i, value, own, dst, status), m, None


def _named(headers: Headers, i: int, value: bytes, own: tuple[int, bytes] | None,
           dst: str, status: int) -> Headers:
    """The Content-Type naming ``dst`` (what followed its own charset goes, as
    nginx's), except for a 301 or 302."""
    if status in (301, 302):
        return headers
    kept = value if own is None else value[:own[0]]
    out = list(headers)
    out[i] = (headers[i][0], kept + b"; charset=" + dst.encode("latin-1", "replace"))
    return out


_ACCEL = b"x-accel-charset"


def accel_charset(headers: Headers, ignored: Collection[str]) -> str | None:
    """The charset an upstream's ``X-Accel-Charset`` names (None: none, empty, or
    ignored)."""
    if "x-accel-charset" in ignored:
        return None
    for name, value in headers:
        if len(name) == 15 and name.lower() == _ACCEL:
            text = value.strip()
            return text.decode("latin-1") if text else None
    return None


def overriding(s: Settings, name: str) -> tuple[Settings, str | None]:
    """The settings a response is filtered with when its upstream's X-Accel-Charset
    names ``name`` (nginx's ngx_http_destination_charset), and an error to log."""
    if name.lower() not in s.charset_names:
        return replace(s, charset=None), f'unknown charset "{name}" to override'
    return replace(s, charset=Template(name, (name,)), charset_types=("*",),
                   override_charset=True), None


def apply(headers: Headers, status: int, s: Settings, req: Request) -> Headers:
    """The headers with the charset named where it applies (the same list otherwise)."""
    return decide(headers, status, s, req)[0]


def start(req: Request, s: Settings, headers: Headers, status: int,
          log: Callable[[str], None]) -> tuple[Recoder | None, Headers]:
    """The recoder for a response's body (None: none applies) and its headers."""
    headers, m, error = decide(headers, status, s, req)
    if error is not None:
        log(error)
    return (recoder(m) if m is not None else None), headers


__all__ = ["BytesRecoder", "FromUtf8", "Recoder", "ToUtf8", "accel_charset", "apply",
           "decide", "overriding", "recoder", "start"]
