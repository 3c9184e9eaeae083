"""The XSLT filter module (``ngx_http_xslt_filter_module``): ``xslt_stylesheet FILE
[PARAM=VALUE[:PARAM=VALUE...]...]`` (compiled at load), ``xslt_param`` and
``xslt_string_param NAME VALUE``, ``xslt_types``, ``xslt_last_modified``,
``xml_entities FILE``. The filter itself is ``proxy.xslt``."""

from __future__ import annotations

from fastgate.config.context import HSL, LOCATION, Context, Spec
from fastgate.config.directives.args import appending, flag_arg, mime_types, setting
from fastgate.config.parser import Directive
from fastgate.stylesheets import Stylesheet, StylesheetError, load_entities, load_stylesheet
from fastgate.variables import Template


def stylesheet(ld: Context, d: Directive) -> tuple[Stylesheet, tuple[Template, ...]]:
    try:
        sheet = load_stylesheet(ld.path_of(d.args[0]))
    except StylesheetError as e:
        raise d.error(str(e)) from None
    return sheet, tuple(ld.compile(a, d) for a in d.args[1:])


def param(quoted: bool):  # type: ignore[no-untyped-def]
    def parse(ld: Context, d: Directive) -> tuple[str, Template, bool]:
        return d.args[0], ld.compile(d.args[1], d), quoted

    return parse


def entities(ld: Context, d: Directive) -> bytes:
    try:  # (the path as given, as nginx's: not under the prefix)
        return load_entities(d.args[0])
    except StylesheetError as e:
        raise d.error(str(e)) from None


SPECS = [
    Spec("xslt_stylesheet", frozenset({LOCATION}), 1, None,
         appending("xslt_stylesheet", stylesheet)),
    Spec("xslt_param", HSL, 2, 2, appending("xslt_param", param(False))),
    Spec("xslt_string_param", HSL, 2, 2, appending("xslt_param", param(True))),
    Spec("xslt_types", HSL, 1, None, mime_types("xslt_types", "text/xml", kept=True)),
    Spec("xslt_last_modified", HSL, 1, 1, setting("xslt_last_modified", flag_arg)),
    Spec("xml_entities", HSL, 1, 1, setting("xml_entities", entities)),
]

__all__ = ["SPECS"]
