"""The image filter (``image_filter``), as nginx's ngx_http_image_filter_module, on a
response held whole (``proxy.held``): every response but a 304 — an error page too, as
nginx's — is looked at:

- ``test``: an image (JPEG, GIF, PNG, WebP, by its first bytes) goes on with its type
  made the image's; anything else is a 415;
- ``size``: the image's type and size as JSON (``{}`` for what is not one), and only
  that: the response's other headers go (nginx's ngx_http_clean_header);
- ``resize``, ``crop``, ``rotate``: the image made anew by libgd (``fastgate.gd``)
  unless it already fits and nothing forces it (a JPEG whose application data is more
  than a twentieth of it); the ETag made weak; a size of 0, an angle other than 90, 180
  or 270, or an image libgd cannot read is a 415.

A response larger than ``image_filter_buffer`` is a 415 ("too big response"); ranges
are not served; a Refresh header goes. One difference, for safety: an image whose
header declares more than ``MAX_PIXELS`` is not made anew (415), where nginx lets libgd
allocate whatever a few kilobytes ask (a decompression bomb)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastgate import gd
from fastgate.decimals import decimal
from fastgate.proxy.held import Failed

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastgate.config.model import ImageFilter, Settings
    from fastgate.http.engine import Headers
    from fastgate.proxy.request import Request
    from fastgate.variables import Template

_TYPES = {gd.JPEG: b"image/jpeg", gd.GIF: b"image/gif", gd.PNG: b"image/png",
          gd.WEBP: b"image/webp"}
_UNBOUNDED = (1 << 64) - 1  # nginx's (ngx_uint_t) -1: a "-" size
# the most pixels an image may declare to be made anew (64M: 256 MB as truecolor); nginx
# has no bound, and lets libgd allocate what a small file's header asks
MAX_PIXELS = 1 << 26


def applies(s: Settings, status: int, headers: Headers) -> bool:
    """Whether the filter looks at this response: every one but a 304."""
    f = s.image_filter
    return f is not None and f.mode != "off" and status != 304


def too_big(log: Callable[[str], None]) -> None:
    log("image filter: too big response")
    raise Failed(415)


def kind_of(data: bytes) -> int:
    """ngx_http_image_test: the image's type by its first bytes (0: none)."""
    p = data
    if len(p) < 16:
        return 0
    if p[0] == 0xFF and p[1] == 0xD8:
        return gd.JPEG
    if p[:4] == b"GIF8" and p[5:6] == b"a" and p[4:5] in (b"9", b"7"):
        return gd.GIF
    if p[:8] == b"\x89PNG\r\n\x1a\n":
        return gd.PNG
    if p[:4] == b"RIFF" and p[8:12] == b"WEBP":
        return gd.WEBP
    return 0


def size_of(data: bytes, kind: int) -> tuple[int, int, bool] | None:
    """ngx_http_image_size: width, height, and whether a conversion is forced (a JPEG's
    application data past a twentieth of it); None when the header does not say."""
    p = data
    n = len(p)
    if kind == gd.JPEG:
        i, last = 2, n - 10
        width = height = app = 0
        while i < last:
            if p[i] == 0xFF and p[i + 1] != 0xFF:
                i += 1
                if p[i] in (0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB) and (
                        width == 0 or height == 0):
                    width = p[i + 6] * 256 + p[i + 7]
                    height = p[i + 4] * 256 + p[i + 5]
                length = p[i + 1] * 256 + p[i + 2]
                if 0xE1 <= p[i] <= 0xEF:
                    app += length  # application data: EXIF, XMP...
                i += length
                continue
            i += 1
        if width == 0 or height == 0:
            return None
        return width, height, n // 20 < app
    if kind == gd.GIF:
        return (p[7] * 256 + p[6], p[9] * 256 + p[8], False) if n >= 10 else None
    if kind == gd.PNG:
        return (p[18] * 256 + p[19], p[22] * 256 + p[23], False) if n >= 24 else None
    if n < 30 or p[12:15] != b"VP8":
        return None
    if p[15] == 0x20:  # "VP8 "
        if p[20] & 1 or p[23:26] != b"\x9d\x01\x2a":
            return None
        return (p[26] | p[27] << 8) & 0x3FFF, (p[28] | p[29] << 8) & 0x3FFF, False
    if p[15] == 0x4C:  # "VP8L"
        if p[20] != 0x2F:
            return None
        return (((p[21] | p[22] << 8) & 0x3FFF) + 1,
                ((p[22] >> 6 | p[23] << 2 | p[24] << 10) & 0x3FFF) + 1, False)
    if p[15] == 0x58:  # "VP8X"
        return ((p[24] | p[25] << 8 | p[26] << 16) + 1,
                (p[27] | p[28] << 8 | p[29] << 16) + 1, False)
    return None


def value(req: Request, v: int | Template) -> int:
    """ngx_http_image_filter_get_value: a number, "-" (no bound), anything else 0."""
    if isinstance(v, int):
        return v
    text = v.render(req)
    if text == "-":
        return _UNBOUNDED
    number = decimal(text)  # (ngx_atoi's: past 2^63 - 1, none)
    return number if number else 0


def _json(headers: Headers, size: tuple[int, int, bool] | None, kind: int
          ) -> tuple[int, Headers, bytes]:
    if size is None:
        body = b"{}\r\n"
    else:
        body = b'{ "img" : { "width": %d, "height": %d, "type": "%s" } }\r\n' % (
            size[0], size[1], _TYPES[kind][6:])
    # the response's headers are dropped (ngx_http_clean_header): its own come back
    kept = [(n, v) for n, v in headers if n.lower() in (b"server", b"date")]
    return 200, [*kept, (b"Content-Type", b"application/json")], body


def _typed(headers: Headers, kind: int, weak: bool) -> Headers:
    out: Headers = []
    for name, v in headers:
        low = name.lower()
        if low in (b"content-length", b"accept-ranges", b"refresh"):
            continue
        if low == b"content-type":
            v = _TYPES[kind]
        if low == b"etag" and weak and not v.startswith(b"W/"):
            v = b"W/" + v
        out.append((name, v))
    if not any(n.lower() == b"content-type" for n, _ in out):
        out.append((b"Content-Type", _TYPES[kind]))
    return out


async def transform(req: Request, s: Settings, status: int, headers: Headers, body: bytes,
                    log: Callable[[str], None]) -> tuple[int, Headers, bytes]:
    """The response through the image filter (Failed(415): logged where nginx logs)."""
    f: ImageFilter | None = s.image_filter
    assert f is not None
    if len(body) > s.image_filter_buffer:
        log(f"image filter: too big response: {len(body)}")
        raise Failed(415)
    if any(n.lower() == b"content-type" and v.lower().startswith(b"multipart/x-mixed-replace")
           for n, v in headers):
        log("image filter: multipart/x-mixed-replace response")
        raise Failed(500)
    kind = kind_of(body)
    if kind == 0:
        if f.mode == "size":
            return _json(headers, None, 0)
        raise Failed(415)
    if f.mode == "test":
        return status, _typed(headers, kind, False), body
    size = size_of(body, kind)
    if f.mode == "size":
        return _json(headers, size, kind)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        # (a few kilobytes may declare gigabytes of pixels: libgd would allocate them)
        log(f"image filter: too large image: {size[0]}x{size[1]}")
        raise Failed(415)
    angle = value(req, f.angle)
    if f.mode == "rotate" and angle not in (90, 180, 270):
        raise Failed(415)
    width = height = _UNBOUNDED
    if f.mode != "rotate":
        width, height = value(req, f.width), value(req, f.height)
        if width == 0 or height == 0:
            raise Failed(415)
        if (size is not None and size[0] <= width and size[1] <= height and angle == 0
                and not size[2]):
            return status, _typed(headers, kind, False), body
    quality = value(req, s.image_filter_jpeg_quality if kind == gd.JPEG
                    else s.image_filter_webp_quality)
    plan = gd.Plan(kind, f.mode, width, height, angle, size is not None and size[2],
                   s.image_filter_transparency, value(req, s.image_filter_sharpen),
                   s.image_filter_interlace, quality)
    try:
        made = await asyncio.to_thread(gd.resize, body, plan)
    except gd.GdError as e:
        if str(e):
            log(str(e))
        raise Failed(415) from None
    if made is None:  # (it fits: as it is)
        return status, _typed(headers, kind, False), body
    return status, _typed(headers, kind, True), made


__all__ = ["applies", "kind_of", "size_of", "too_big", "transform", "value"]
