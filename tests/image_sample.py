"""Images for the image filter's tests, drawn and encoded by libgd (the library the
filter and nginx's module use), through ctypes: a truecolor gradient (JPEG, PNG, WebP)
and a palette image with a transparent colour (GIF, PNG)."""

from __future__ import annotations

import ctypes
from typing import Any

from fastgate import gd


def _lib() -> Any:
    lib = gd._lib()
    lib.gdImageSetPixel.argtypes = [gd._P, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.gdImageSetPixel.restype = None
    lib.gdImageColorAllocate.argtypes = [gd._P, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.gdImageColorAllocate.restype = ctypes.c_int
    return lib


def _encode(lib: Any, img: Any, kind: str) -> bytes:
    size = ctypes.c_int(0)
    out = {"jpeg": lambda: lib.gdImageJpegPtr(img, ctypes.byref(size), 90),
           "png": lambda: lib.gdImagePngPtr(img, ctypes.byref(size)),
           "gif": lambda: lib.gdImageGifPtr(img, ctypes.byref(size)),
           "webp": lambda: lib.gdImageWebpPtrEx(img, ctypes.byref(size), 90)}[kind]()
    try:
        return ctypes.string_at(out, size.value)
    finally:
        lib.gdFree(out)
        lib.gdImageDestroy(img)


def gradient(kind: str, width: int = 80, height: int = 60) -> bytes:
    lib = _lib()
    img = lib.gdImageCreateTrueColor(width, height)
    for x in range(width):
        for y in range(height):
            lib.gdImageSetPixel(img, x, y, (x * 255 // width) << 16
                                | (y * 255 // height) << 8 | ((x + y) % 256))
    return _encode(lib, img, kind)


def palette(kind: str, width: int = 32, height: int = 24) -> bytes:
    lib = _lib()
    img = lib.gdImageCreate(width, height)
    colours = [lib.gdImageColorAllocate(img, r, g, b)
               for r, g, b in ((255, 255, 255), (200, 0, 0), (0, 0, 200), (0, 150, 0))]
    lib.gdImageColorTransparent(img, colours[0])
    for x in range(width):
        for y in range(height):
            lib.gdImageSetPixel(img, x, y, colours[(x // 4 + y // 4) % 4])
    return _encode(lib, img, kind)
