"""nginx's gzip filter (ngx_http_gzip_filter_module), with the core module's test of
whether a request may have a compressed answer (ngx_http_gzip_ok).

A response is compressed when the location has ``gzip on``, its status is 200, 403 or
404, it has no Content-Encoding of its own, its length is unknown or at least
``gzip_min_length``, its type is one of ``gzip_types`` (text/html always, ``*`` any) —
then ``gzip_vary on`` adds ``Vary: Accept-Encoding`` whether or not this client gets it
compressed — and the request may have it: a main request (never a subrequest's answer,
which the main one's compression takes in) whose first Accept-Encoding names gzip with
a quality above 0, of at least ``gzip_http_version``, not from an MSIE 4-6 under
``gzip_disable msie6`` nor from a User-Agent a ``gzip_disable`` regex matches, and,
when a proxy asked (a Via header), as ``gzip_proxied`` allows. Such a response loses
its Content-Length and Accept-Ranges (it goes chunked), its ETag becomes weak, and
``Content-Encoding: gzip`` comes last; its body is deflated by zlib with nginx's
parameters (the level, and the window and hash sizes made smaller for a short body
of known length), so the bytes are nginx's. A relay that flushes each piece (an
unbuffered upstream answer) flushes the compressor with each one too, as nginx's
flush buffers do. ``$gzip_ratio`` is the ratio of what went in to what came out.

nginx's gunzip filter is here too: with ``gunzip on``, an answer with
``Content-Encoding: gzip`` to a client that may not have it compressed (the same test)
is inflated before the other filters see it (``gzip_static always`` with ``gunzip on``
keeps only the ``.gz`` files)."""

from __future__ import annotations

import time
import zlib
from typing import TYPE_CHECKING

from fastgate.browsers import msie6
from fastgate.errors import OutputFailed
from fastgate.proxy.headers import html_or_of, kind_of
from fastgate.proxy.ranges import http_time
from fastgate.variables import GZIP_KEY, GZIP_VARY_KEY, SUBREQUEST_KEY

if TYPE_CHECKING:
    from fastgate.config.model import Settings
    from fastgate.http.engine import Headers
    from fastgate.proxy.request import Request

# the statuses nginx compresses
_STATUSES = frozenset({200, 403, 404})
# what a compressed response loses
_DROPPED = frozenset({b"content-length", b"accept-ranges"})


_GZIP_HEADER = 10  # (RFC 1952: zlib writes no name, comment or extra field)


class Gzip:
    """One response's compressor: ``feed`` each piece of its body, ``finish`` at its
    end; each returns the bytes that may go to the client now."""

    __slots__ = ("_z", "_held", "flushing", "taken", "given")

    def __init__(self, level: int, wbits: int, memlevel: int) -> None:
        # (+16: zlib writes the gzip header and trailer, as nginx asks it to)
        self._z = zlib.compressobj(level, zlib.DEFLATED, wbits + 16, memlevel,
                                   zlib.Z_DEFAULT_STRATEGY)
        self.flushing = False  # each piece flushed (an unbuffered relay's)
        self.taken = 0
        self.given = 0
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        if not data:
            return b""
        self.taken += len(data)
        out = self._held + self._z.compress(data)
        if self.flushing:
            out += self._z.flush(zlib.Z_SYNC_FLUSH)
        elif not self.given and len(out) <= _GZIP_HEADER:
            # zlib gives the gzip header at once and holds the deflated bytes: the
            # header waits for them, one piece as nginx's buffers send (not a chunk
            # of its own)
            self._held = out
            return b""
        self._held = b""
        self.given += len(out)
        return out

    def finish(self) -> bytes:
        out = self._held + self._z.flush(zlib.Z_FINISH)
        self._held = b""
        self.given += len(out)
        return out

    def ratio(self) -> str:
        """``$gzip_ratio``: nginx's "%ui.%02ui", the hundredths rounded half up."""
        if not self.given:
            return ""
        whole = self.taken // self.given
        hundredths = self.taken * 100 // self.given % 100
        if self.taken * 1000 // self.given % 10 > 4:
            hundredths += 1
            if hundredths > 99:
                whole += 1
                hundredths = 0
        return f"{whole}.{hundredths:02d}"


class Gunzip:
    """One response's inflater (nginx's gunzip filter): gzip members one after the
    other, as nginx's inflateReset takes them; ``OutputFailed`` with nginx's log line
    when the bytes do not inflate, or end inside a member."""

    __slots__ = ("_z", "_fed")

    def __init__(self) -> None:
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._fed = False  # the member at hand has had bytes

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            self._fed = True
            try:
                out.append(self._z.decompress(data))
            except zlib.error:
                raise OutputFailed("inflate() failed: 0, -3") from None
            if not self._z.eof:
                break
            data = self._z.unused_data  # (another member: nginx's inflateReset)
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._fed = False
        return b"".join(out)

    def finish(self) -> bytes:
        if self._fed:
            raise OutputFailed("inflate() returned -5 on response end")
        return b""


def gunzip_start(req: Request, s: Settings, headers: Headers, length: int,
                 head_only: bool) -> tuple[Gunzip | None, Headers, int]:
    """nginx's gunzip header filter where the location has ``gunzip on``: an answer
    with ``Content-Encoding: gzip`` to a client that may not have it compressed is
    inflated; it loses Content-Encoding, Content-Length and Accept-Ranges, its ETag
    becomes weak (the headers and length the client gets)."""
    encoded = next((v for n, v in headers if n.lower() == b"content-encoding"), None)
    if encoded is None or encoded.lower() != b"gzip":
        return None, headers, length
    if s.gzip_vary:
        headers = vary(req, headers)
    if may_compress(req, s, headers):
        return None, headers, length
    out: Headers = []
    for name, value in headers:
        low = name.lower()
        if low in _DROPPED or low == b"content-encoding":
            continue
        if low == b"etag" and not value.startswith(b"W/"):
            if not value.startswith(b'"'):
                continue
            value = b"W/" + value
        out.append((name, value))
    return (None if head_only else Gunzip()), out, -1


def start(req: Request, s: Settings, headers: Headers, length: int, status: int,
          head_only: bool) -> tuple[Gzip | None, Headers, int]:
    """nginx's header filter for a response with ``headers`` and ``length`` (-1:
    unknown) where the location has ``gzip on``: the compressor (None: the body goes as
    it is, or there is none), and the headers and length the client gets."""
    if status not in _STATUSES or length != -1 and length < s.gzip_min_length:
        return None, headers, length
    kind = None
    for name, value in headers:
        low = name.lower()
        if low == b"content-encoding" and value:
            return None, headers, length
        if low == b"content-type":
            kind = value
    # (with "*" nginx takes an answer without a type too: ngx_http_test_content_type)
    if "*" not in s.gzip_types and (
            kind is None or not html_or_of(kind_of([(b"Content-Type", kind)]), s.gzip_types)):
        return None, headers, length
    if s.gzip_vary:
        headers = vary(req, headers)
    if not may_compress(req, s, headers):
        return None, headers, length
    out: Headers = []
    for name, value in headers:
        low = name.lower()
        if low in _DROPPED:
            continue
        if low == b"etag" and not value.startswith(b"W/"):
            if not value.startswith(b'"'):
                continue  # (nginx's ngx_http_weak_etag drops one it cannot weaken)
            value = b"W/" + value
        out.append((name, value))
    out.append((b"Content-Encoding", b"gzip"))
    if head_only:
        return None, out, -1
    wbits, memlevel = s.gzip_window, s.gzip_hash
    if length > 0:  # a short body needs less: nginx's ngx_http_gzip_filter_memory
        while length < (1 << (wbits - 1)) - 262:
            wbits -= 1
            memlevel -= 1
        memlevel = max(memlevel, 1)
    gz = Gzip(s.gzip_comp_level, wbits, memlevel)
    req.memo[GZIP_KEY] = gz
    return gz, out, -1


def vary(req: Request, headers: Headers) -> Headers:
    """``headers`` with ``Vary: Accept-Encoding``, once per response (nginx's
    r->gzip_vary, which gzip_static and the gzip filter both set)."""
    memo = req.memo
    if GZIP_VARY_KEY in memo:
        return headers
    memo[GZIP_VARY_KEY] = True
    return [*headers, (b"Vary", b"Accept-Encoding")]


def may_compress(req: Request, s: Settings, headers: Headers) -> bool:
    """nginx's ngx_http_gzip_ok: whether this client may have the response with
    ``headers`` compressed (never a subrequest's part: its page is)."""
    if SUBREQUEST_KEY in req.memo:
        return False
    accepted = req.header(b"accept-encoding")
    if accepted is None or len(accepted) < 4:
        return False
    if not accepted.startswith(b"gzip,") and not accepts_gzip(accepted):
        return False
    if s.gzip_disable_msie6 and msie6(req.header(b"user-agent")):
        return False
    version = req.head.version  # (b"1.1": an HTTP/2 stream's is too)
    if version != b"1.1" and (1, 0 if version == b"1.0" else -1) < s.gzip_http_version:
        return False
    if req.header(b"via") is not None and not _proxied_ok(req, s.gzip_proxied, headers):
        return False
    if s.gzip_disable:
        agent = req.header(b"user-agent")
        if agent is not None:
            text = agent.decode("latin-1")
            if any(p.search(text) for p in s.gzip_disable):
                return False
    return True


def accepts_gzip(value: bytes) -> bool:
    """nginx's ngx_http_gzip_accept_encoding: "gzip" (any case) at the start or after
    "," or " ", then the end, ",", or ";q=" with a quality above 0 (at most three
    decimals, at most 1)."""
    low = value.lower()
    at = 0
    while True:
        at = low.find(b"gzip", at)
        if at < 0:
            return False
        if at == 0 or value[at - 1:at] in (b",", b" "):
            break
        at += 4
    rest = value[at + 4:]
    i = 0
    while i < len(rest):
        c = rest[i:i + 1]
        i += 1
        if c == b",":
            return True
        if c == b";":
            break
        if c != b" ":
            return False
    else:
        return True
    while i < len(rest):  # after ";": spaces, then q or Q
        c = rest[i:i + 1]
        i += 1
        if c in (b"q", b"Q"):
            break
        if c != b" ":
            return False
    else:
        return True
    if i + 2 > len(rest) or rest[i:i + 1] != b"=":
        return False
    return _quantity(rest[i + 1:]) > 0


def _quantity(p: bytes) -> int:
    """nginx's ngx_http_gzip_quantity: "0"/"1", then "." and digits, in thousandths
    summed as nginx sums them; 0 for anything else."""
    if p[:1] not in (b"0", b"1"):
        return 0
    q = (p[0] - 48) * 100
    if len(p) == 1 or p[1:2] in (b",", b" "):
        return q
    if p[1:2] != b".":
        return 0
    n = 0
    for c in p[2:]:
        if c in (44, 32):  # "," or " "
            break
        if 48 <= c <= 57:
            q += c - 48
            n += 1
            continue
        return 0
    return 0 if q > 100 or n > 3 else q


def _proxied_ok(req: Request, words: frozenset[str], headers: Headers) -> bool:
    """``gzip_proxied`` for a request a proxy made (it has Via)."""
    if "off" in words:
        return False
    if "any" in words:
        return True
    if "auth" in words and req.header(b"authorization") is not None:
        return True
    expires = date = None
    controls: list[bytes] = []
    modified = etag = False
    for name, value in headers:
        low = name.lower()
        if low == b"expires":
            expires = value
        elif low == b"date":
            date = value
        elif low == b"cache-control":
            controls.append(value)
        elif low == b"last-modified":
            modified = True
        elif low == b"etag":
            etag = True
    if expires is not None:
        if "expired" not in words:
            return False
        when = http_time(expires)
        now = http_time(date) if date is not None else int(time.time())
        return when is not None and now is not None and when < now
    if controls:
        tokens = {t.split(b"=", 1)[0].split(b";", 1)[0].strip().lower()
                  for v in controls for t in v.split(b",")}
        return any(word in words and word.encode() in tokens
                   for word in ("no-cache", "no-store", "private"))
    if "no_last_modified" in words and modified:
        return False
    return not ("no_etag" in words and etag)


__all__ = ["Gunzip", "Gzip", "accepts_gzip", "gunzip_start", "may_compress", "start", "vary"]
