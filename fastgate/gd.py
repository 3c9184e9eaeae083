"""The image filter's image work (``image_filter resize|crop|rotate``), as nginx's
ngx_http_image_filter_module does it: decoded, resized, cropped, rotated, sharpened and
encoded by libgd — the library nginx's module links, loaded with ctypes from Debian's
``libgd3`` — following the module's own steps call for call (ngx_http_image_resize),
so the bytes out are nginx's for the same image and settings.

Called off the event loop (``asyncio.to_thread``): libgd holds no lock of Python's."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass
from typing import Any

from fastgate.errors import FastgateError

JPEG, GIF, PNG, WEBP = 1, 2, 3, 4
_MAX_COLORS = 256


class GdError(FastgateError):
    """libgd could not do it (nginx's log line), or is not installed."""


class _Image(ctypes.Structure):
    # the head of gd.h's gdImageStruct: what gd's macros read (gdImageSX, SY,
    # ColorsTotal, GetTransparent, Red/Green/Blue)
    _fields_ = [("pixels", ctypes.c_void_p), ("sx", ctypes.c_int), ("sy", ctypes.c_int),
                ("colorsTotal", ctypes.c_int), ("red", ctypes.c_int * _MAX_COLORS),
                ("green", ctypes.c_int * _MAX_COLORS), ("blue", ctypes.c_int * _MAX_COLORS),
                ("open", ctypes.c_int * _MAX_COLORS), ("transparent", ctypes.c_int),
                ("polyInts", ctypes.c_void_p), ("polyAllocated", ctypes.c_int),
                ("brush", ctypes.c_void_p), ("tile", ctypes.c_void_p),
                ("brushColorMap", ctypes.c_int * _MAX_COLORS),
                ("tileColorMap", ctypes.c_int * _MAX_COLORS), ("styleLength", ctypes.c_int),
                ("stylePos", ctypes.c_int), ("style", ctypes.c_void_p),
                ("interlace", ctypes.c_int), ("thick", ctypes.c_int),
                ("alpha", ctypes.c_int * _MAX_COLORS), ("trueColor", ctypes.c_int)]


_P = ctypes.POINTER(_Image)


@functools.cache
def _lib() -> Any:
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("gd") or "libgd.so.3")
    except OSError:
        raise GdError("the image filter needs libgd, nginx's image library (Debian package "
                      "libgd3)") from None
    i, v, pi = ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)
    signatures: dict[str, tuple[list[Any], Any]] = {
        "gdImageCreateFromJpegPtr": ([i, v], _P), "gdImageCreateFromGifPtr": ([i, v], _P),
        "gdImageCreateFromPngPtr": ([i, v], _P), "gdImageCreateFromWebpPtr": ([i, v], _P),
        "gdImageCreateTrueColor": ([i, i], _P), "gdImageCreate": ([i, i], _P),
        "gdImageSaveAlpha": ([_P, i], None), "gdImageAlphaBlending": ([_P, i], None),
        "gdImageCopyResampled": ([_P, _P, i, i, i, i, i, i, i, i], None),
        "gdImageTrueColorToPalette": ([_P, i, i], i), "gdImageDestroy": ([_P], None),
        "gdImageCopyRotated": ([_P, _P, ctypes.c_double, ctypes.c_double, i, i, i, i, i],
                               None),
        "gdImageCopy": ([_P, _P, i, i, i, i, i, i], None),
        "gdImageColorExact": ([_P, i, i, i], i), "gdImageColorTransparent": ([_P, i], None),
        "gdImageSharpen": ([_P, i], None), "gdImageInterlace": ([_P, i], None),
        "gdImageJpegPtr": ([_P, pi, i], v), "gdImageGifPtr": ([_P, pi], v),
        "gdImagePngPtr": ([_P, pi], v), "gdImageWebpPtrEx": ([_P, pi, i], v),
        "gdFree": ([v], None),
    }
    for name, (args, result) in signatures.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = args, result
    return lib


def check() -> None:
    """libgd is there (GdError: not), for ``-t``."""
    _lib()


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do to one image: nginx's ``ctx`` and ``conf`` as the request makes them."""

    kind: int  # JPEG, GIF, PNG, WEBP
    mode: str  # "resize", "crop" or "rotate"
    max_width: int
    max_height: int
    angle: int
    force: bool
    transparency: bool
    sharpen: int
    interlace: bool
    quality: int  # JPEG's or WebP's


_DECODERS = {JPEG: ("gdImageCreateFromJpegPtr", "gdImageCreateFromJpegPtr() failed"),
             GIF: ("gdImageCreateFromGifPtr", "gdImageCreateFromGifPtr() failed"),
             PNG: ("gdImageCreateFromPngPtr", "gdImageCreateFromPngPtr() failed"),
             WEBP: ("gdImageCreateFromWebpPtr", "gdImageCreateFromWebpPtr() failed")}


def _new(lib: Any, w: int, h: int, colors: int) -> Any:
    img = lib.gdImageCreateTrueColor(w, h) if colors == 0 else lib.gdImageCreate(w, h)
    if not img:
        raise GdError("gdImageCreateTrueColor() failed" if colors == 0
                      else "gdImageCreate() failed")
    return img


def _rgb(im: _Image, c: int) -> tuple[int, int, int]:
    if im.trueColor:  # (gdTrueColorGetRed...)
        return (c >> 16) & 0xFF, (c >> 8) & 0xFF, c & 0xFF
    return im.red[c], im.green[c], im.blue[c]


def resize(data: bytes, plan: Plan) -> bytes | None:
    """The image made anew (ngx_http_image_resize), or None when it is to go as it is
    (it fits, nothing forces a conversion). GdError: libgd failed (logged by nginx)."""
    lib = _lib()
    decoder, failed = _DECODERS[plan.kind]
    src = getattr(lib, decoder)(len(data), data)
    if not src:
        raise GdError(failed)
    s = src.contents
    sx, sy = s.sx, s.sy
    if (not plan.force and plan.angle == 0 and sx <= plan.max_width
            and sy <= plan.max_height):
        lib.gdImageDestroy(src)
        return None
    colors = 0 if s.trueColor else s.colorsTotal
    transparent, palette, red, green, blue = -1, 0, 0, 0, 0
    if colors and plan.transparency and s.transparent != -1:
        transparent, palette = s.transparent, colors
        red, green, blue = _rgb(s, transparent)
    lib.gdImageColorTransparent(src, -1)
    dst = None
    dx, dy = sx, sy
    resizing = False
    if plan.mode == "resize":
        if dx > plan.max_width:
            dy = dy * plan.max_width // dx or 1
            dx = plan.max_width
        if dy > plan.max_height:
            dx = dx * plan.max_height // dy or 1
            dy = plan.max_height
        resizing = True
    elif plan.mode == "crop":
        if dx / dy < plan.max_width / plan.max_height:
            if dx > plan.max_width:
                dy = dy * plan.max_width // dx or 1
                dx = plan.max_width
                resizing = True
        elif dy > plan.max_height:
            dx = dx * plan.max_height // dy or 1
            dy = plan.max_height
            resizing = True
    try:
        if resizing:
            dst = _new(lib, dx, dy, palette)
            if colors == 0:
                lib.gdImageSaveAlpha(dst, 1)
                lib.gdImageAlphaBlending(dst, 0)
            lib.gdImageCopyResampled(dst, src, 0, 0, 0, 0, dx, dy, sx, sy)
            if colors:
                lib.gdImageTrueColorToPalette(dst, 1, 256)
            lib.gdImageDestroy(src)
        else:
            dst = src
        src = None
        if plan.angle in (90, 180, 270):  # (nginx turns by no other angle)
            src, dst = dst, None
            ax = 1 if dx % 2 == 0 else 0
            ay = 1 if dy % 2 == 0 else 0
            if plan.angle in (90, 270):
                dst = _new(lib, dy, dx, palette)
                if plan.angle == 90:
                    ox, oy = dy // 2 + ay, dx // 2 - ax
                else:
                    ox, oy = dy // 2 - ay, dx // 2 + ax
                lib.gdImageCopyRotated(dst, src, float(ox), float(oy), 0, 0, dx + ax,
                                       dy + ay, plan.angle)
                dx, dy = dy, dx
            else:  # 180
                dst = _new(lib, dx, dy, palette)
                lib.gdImageCopyRotated(dst, src, float(dx // 2 - ax), float(dy // 2 - ay),
                                       0, 0, dx + ax, dy + ay, plan.angle)
            lib.gdImageDestroy(src)
            src = None
        if plan.mode == "crop":
            ox = dx - plan.max_width if dx > plan.max_width else 0
            oy = dy - plan.max_height if dy > plan.max_height else 0
            if ox or oy:
                src, dst = dst, None
                dst = _new(lib, dx - ox, dy - oy, colors)
                ox //= 2
                oy //= 2
                if colors == 0:
                    lib.gdImageSaveAlpha(dst, 1)
                    lib.gdImageAlphaBlending(dst, 0)
                lib.gdImageCopy(dst, src, 0, 0, ox, oy, dx - ox, dy - oy)
                if colors:
                    lib.gdImageTrueColorToPalette(dst, 1, 256)
                lib.gdImageDestroy(src)
                src = None
        if transparent != -1 and colors:
            lib.gdImageColorTransparent(dst, lib.gdImageColorExact(dst, red, green, blue))
        if plan.sharpen > 0:
            lib.gdImageSharpen(dst, plan.sharpen)
        lib.gdImageInterlace(dst, int(plan.interlace))
        return _encode(lib, dst, plan)
    finally:
        if src:
            lib.gdImageDestroy(src)
        if dst:
            lib.gdImageDestroy(dst)


def _encode(lib: Any, img: Any, plan: Plan) -> bytes:
    size = ctypes.c_int(0)
    if plan.kind in (JPEG, WEBP) and plan.quality <= 0:
        raise GdError("")  # (nginx: no message, a 415)
    if plan.kind == JPEG:
        out, failed = lib.gdImageJpegPtr(img, ctypes.byref(size), plan.quality), \
            "gdImageJpegPtr() failed"
    elif plan.kind == GIF:
        out, failed = lib.gdImageGifPtr(img, ctypes.byref(size)), "gdImageGifPtr() failed"
    elif plan.kind == PNG:
        out, failed = lib.gdImagePngPtr(img, ctypes.byref(size)), "gdImagePngPtr() failed"
    else:
        out, failed = lib.gdImageWebpPtrEx(img, ctypes.byref(size), plan.quality), \
            "gdImageWebpPtrEx() failed"
    if not out:
        raise GdError(failed)
    try:
        return ctypes.string_at(out, size.value)
    finally:
        lib.gdFree(out)


__all__ = ["GIF", "JPEG", "PNG", "WEBP", "GdError", "Plan", "check", "resize"]
