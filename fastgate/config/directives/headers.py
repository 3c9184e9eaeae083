"""The headers module: ``add_header``, ``add_trailer`` and ``expires``."""

from __future__ import annotations

from fastgate.config.context import (
    HSL,
    LIF,
    Context,
    Spec,
)
from fastgate.config.directives.args import (
    appending,
    check_header_name,
    header_value,
    setting,
)
from fastgate.config.expires import ExpiresError, parse_expires
from fastgate.config.model import (
    Expires,
)
from fastgate.config.parser import Directive
from fastgate.variables import Template


def expires_arg(ld: Context, d: Directive) -> Expires | None:
    """``expires [modified] TIME|@TIME|epoch|max|off`` (ngx_http_headers_filter_module);
    a value with variables is parsed for each response."""
    modified = len(d.args) == 2
    if modified and d.args[0] != "modified":
        raise d.error(f'"{d.name}" directive invalid value')
    text = d.args[-1]
    value = ld.compile(text, d)
    if not value.is_literal:
        return Expires("value", template=value, modified=modified)
    try:
        return parse_expires(text, modified)
    except ExpiresError as e:
        raise d.error(f'"{d.name}" directive {e}') from None


def add_header(ld: Context, d: Directive) -> tuple[str, Template, bool]:
    name = d.args[0]
    check_header_name(d, name)
    always = False
    if len(d.args) == 3:
        if d.args[2] != "always":
            raise d.error(f'invalid parameter "{d.args[2]}"')
        always = True
    return (name, header_value(ld, d), always)


SPECS = [
    Spec("add_header", HSL | {LIF}, 2, 3, appending("add_header", add_header)),
    Spec("add_trailer", HSL | {LIF}, 2, 3, appending("add_trailer", add_header)),
    Spec("expires", HSL | {LIF}, 1, 2, setting("expires", expires_arg)),
]
