"""nginx's charset filter, its header part: ``charset NAME`` adds ``; charset=NAME`` to
the Content-Type of a response — proxied or fastgate's own — whose type is one of
``charset_types`` (``*``: any) and which names no charset yet; never to a 301 or 302
(nginx: old browsers took a redirect's charset for the next page's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastgate.config.model import Settings
    from fastgate.http.engine import Headers
    from fastgate.proxy.request import Request


def apply(headers: Headers, status: int, s: Settings, req: Request) -> Headers:
    """``headers`` with the charset added where it applies (the same list otherwise)."""
    if status in (301, 302) or s.charset is None:
        return headers
    for i, (name, value) in enumerate(headers):
        if name.lower() != b"content-type":
            continue
        kind, _, params = value.partition(b";")
        if b"charset=" in params.lower():
            return headers  # the response names its own
        low = kind.strip().lower().decode("latin-1")
        if "*" not in s.charset_types and low not in s.charset_types:
            return headers
        name_ = s.charset.render(req)
        if not name_:
            return headers
        out = list(headers)
        out[i] = (name, value + b"; charset=" + name_.encode("latin-1", "replace"))
        return out
    return headers
