"""The addition filter module (``ngx_http_addition_filter_module``): ``add_before_body``,
``add_after_body``, ``addition_types``. What a response gets: ``proxy.addition``."""

from __future__ import annotations

from fastgate.config.context import HSL, Context, Spec
from fastgate.config.directives.args import mime_types, setting
from fastgate.config.parser import Directive


def _uri(ld: Context, d: Directive) -> str:
    return d.args[0]


SPECS = [
    Spec("add_before_body", HSL, 1, 1, setting("add_before_body", _uri)),
    Spec("add_after_body", HSL, 1, 1, setting("add_after_body", _uri)),
    Spec("addition_types", HSL, 1, None, mime_types("addition_types", "text/html")),
]

__all__ = ["SPECS"]
