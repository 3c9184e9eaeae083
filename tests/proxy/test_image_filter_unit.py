"""The image filter's reading of image headers (nginx's ngx_http_image_test and
ngx_http_image_size, byte for byte) and its bound on what libgd is asked to allocate."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest
from image_sample import gradient, palette

from fastgate import gd
from fastgate.config.model import ImageFilter, Settings
from fastgate.proxy.held import Failed
from fastgate.proxy.image_filter import MAX_PIXELS, kind_of, size_of, transform


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)))


def test_types_and_sizes() -> None:
    assert [kind_of(gradient(k)) for k in ("jpeg", "png", "webp")] == [gd.JPEG, gd.PNG, gd.WEBP]
    assert kind_of(palette("gif")) == gd.GIF and kind_of(b"GIF89a") == 0  # (16 bytes at least)
    assert size_of(gradient("jpeg", 33, 17), gd.JPEG) == (33, 17, False)
    assert size_of(palette("gif", 5, 7), gd.GIF) == (5, 7, False)
    assert size_of(_png_header(70000, 3)[:20], gd.PNG) is None  # (the header cut short)


@pytest.mark.parametrize("mode", ["resize", "crop", "rotate"])
def test_an_image_declaring_too_many_pixels_is_not_made(mode: str) -> None:
    side = int(MAX_PIXELS ** 0.5) + 1
    bomb = _png_header(side, side) + b"\x00" * 64
    s = Settings(image_filter=ImageFilter(mode, 100, 100, 90))
    logged: list[str] = []
    with pytest.raises(Failed) as info:
        asyncio.run(transform(None, s, 200, [(b"Content-Type", b"image/png")], bomb,  # type: ignore[arg-type]
                              logged.append))
    assert info.value.status == 415
    assert logged == [f"image filter: too large image: {side}x{side}"]
