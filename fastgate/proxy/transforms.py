"""Whether a response is transformed whole — by the image filter (``proxy.image_filter``)
or XSLT (``proxy.xslt``), held by ``proxy.held`` — and so whether nginx's filters around
those are split: sub_filter's replacements before the transformation, the charset
module (naming the charset, recoding) and SSI after it (``proxy.output``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.proxy.image_filter import applies as image_applies
from fastgate.proxy.xslt import applies as xslt_applies

if TYPE_CHECKING:
    from fastgate.config.model import Settings
    from fastgate.http.engine import Headers


def transformed(s: Settings, status: int, headers: Headers) -> bool:
    return image_applies(s, status, headers) or (
        bool(s.xslt_stylesheet) and xslt_applies(s, status, headers))


__all__ = ["transformed"]
