"""The sub filter module (``ngx_http_sub_filter_module``): ``sub_filter``,
``sub_filter_once``, ``sub_filter_types``, ``sub_filter_last_modified``. The filter
itself is ``proxy.sub_filter``."""

from __future__ import annotations

from fastgate.config.context import HSL, Context, Spec
from fastgate.config.directives.args import appending, flag_arg, mime_types, setting
from fastgate.config.parser import Directive
from fastgate.variables import Template


def pair(ld: Context, d: Directive) -> tuple[Template, Template]:
    if not d.args[0]:
        raise d.error('empty search pattern in "sub_filter" directive')
    return ld.compile(d.args[0], d), ld.compile(d.args[1], d)


SPECS = [
    Spec("sub_filter", HSL, 2, 2, appending("sub_filter", pair)),
    Spec("sub_filter_once", HSL, 1, 1, setting("sub_filter_once", flag_arg)),
    Spec("sub_filter_types", HSL, 1, None, mime_types("sub_filter_types", "text/html")),
    Spec("sub_filter_last_modified", HSL, 1, 1,
         setting("sub_filter_last_modified", flag_arg)),
]

__all__ = ["SPECS"]
