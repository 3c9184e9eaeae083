"""The image filter module (``ngx_http_image_filter_module``): ``image_filter off|test|
size|rotate ANGLE|resize W H|crop W H`` (rotate combines with resize or crop, given
before or after it), ``image_filter_jpeg_quality``, ``image_filter_webp_quality``,
``image_filter_sharpen`` (each a number or a value with variables),
``image_filter_transparency``, ``image_filter_interlace``, ``image_filter_buffer``. The
filter is ``proxy.image_filter``; its image work ``fastgate.gd`` (libgd, checked at
load)."""

from __future__ import annotations

import dataclasses

from fastgate import gd
from fastgate.config.context import HSL, LOCATION, Context, Level, Spec
from fastgate.config.directives.args import flag_arg, setting, size_arg
from fastgate.config.model import ImageFilter
from fastgate.config.parser import Directive
from fastgate.variables import Template

_UNBOUNDED = (1 << 64) - 1


def _number(text: str) -> int:
    """ngx_http_image_filter_value read as nginx's directives read it (ngx_int_t): "-"
    is -1, a positive number itself, anything else 0."""
    if text == "-":
        return -1
    return int(text) if text.isascii() and text.isdigit() else 0


def image_filter(ld: Context, lvl: Level, d: Directive) -> None:
    try:
        gd.check()
    except gd.GdError as e:
        raise d.error(str(e)) from None
    lvl.origins.setdefault(d.name, d)
    now: ImageFilter = lvl.fields.get("image_filter") or ImageFilter("off")
    args = d.args
    if len(args) == 1:
        if args[0] not in ("off", "test", "size"):
            raise d.error(f'invalid parameter "{args[0]}"')
        now = dataclasses.replace(now, mode=args[0])
    elif len(args) == 2:
        if args[0] != "rotate":
            raise d.error(f'invalid parameter "{args[0]}"')
        angle = ld.compile(args[1], d)
        if angle.is_literal and _number(args[1]) not in (90, 180, 270):
            raise d.error(f'invalid parameter "{args[1]}"')
        now = dataclasses.replace(
            now, mode=now.mode if now.mode in ("resize", "crop") else "rotate",
            angle=_number(args[1]) if angle.is_literal else angle)
    else:
        if args[0] not in ("resize", "crop"):
            raise d.error(f'invalid parameter "{args[0]}"')
        sizes: list[int | Template] = []
        for text in args[1:]:
            t = ld.compile(text, d)
            n = _number(text)
            if t.is_literal and n == 0:
                raise d.error(f'invalid parameter "{text}"')
            sizes.append((_UNBOUNDED if n == -1 else n) if t.is_literal else t)
        now = dataclasses.replace(now, mode=args[0], width=sizes[0], height=sizes[1])
    lvl.fields["image_filter"] = now


def quality(ld: Context, d: Directive) -> int | Template:
    t = ld.compile(d.args[0], d)
    if not t.is_literal:
        return t
    n = _number(d.args[0])
    # (the sharpening may be 0; "-", read as -1, is no value for either)
    if n < 0 or (n == 0 and d.name != "image_filter_sharpen"):
        raise d.error(f'invalid value "{d.args[0]}"')
    return n


SPECS = [
    Spec("image_filter", frozenset({LOCATION}), 1, 3, image_filter),
    Spec("image_filter_jpeg_quality", HSL, 1, 1, setting("image_filter_jpeg_quality", quality)),
    Spec("image_filter_webp_quality", HSL, 1, 1, setting("image_filter_webp_quality", quality)),
    Spec("image_filter_sharpen", HSL, 1, 1, setting("image_filter_sharpen", quality)),
    Spec("image_filter_transparency", HSL, 1, 1,
         setting("image_filter_transparency", flag_arg)),
    Spec("image_filter_interlace", HSL, 1, 1, setting("image_filter_interlace", flag_arg)),
    Spec("image_filter_buffer", HSL, 1, 1, setting("image_filter_buffer", size_arg)),
]

__all__ = ["SPECS"]
