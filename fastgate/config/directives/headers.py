"""The headers module: ``add_header`` and ``expires``."""

from __future__ import annotations

from fastgate.config.context import (
    HSL,
    LIF,
    Context,
    Spec,
)
from fastgate.config.directives.args import appending, check_header_name, setting
from fastgate.config.model import (
    Expires,
)
from fastgate.config.parser import Directive
from fastgate.config.values import (
    parse_time,
)
from fastgate.variables import Template


def expires_arg(ld: Context, d: Directive) -> Expires | None:
    """``expires off|epoch|max|[-]TIME`` (ngx_http_headers_filter_module)."""
    if len(d.args) > 1 or d.args[0].startswith(("@", "$")) or d.args[0] == "modified":
        # what these need (the time of day, a variable read from the response, the
        # file's date) fastgate does not have: refused rather than half done
        raise d.error(f'"expires {" ".join(d.args)}" is not supported: give "off", '
                      '"epoch", "max" or a time')
    value = d.args[0]
    if value == "off":
        return None
    if value in ("epoch", "max"):
        return Expires(value)
    if value.startswith("-"):
        return Expires("after", -parse_time(d, value[1:]))
    return Expires("after", parse_time(d, value))


def add_header(ld: Context, d: Directive) -> tuple[str, Template, bool]:
    name = d.args[0]
    check_header_name(d, name)
    always = False
    if len(d.args) == 3:
        if d.args[2] != "always":
            raise d.error(f'invalid parameter "{d.args[2]}"')
        always = True
    return (name, ld.compile(d.args[1], d), always)


SPECS = [
    Spec("add_header", HSL | {LIF}, 2, 3, appending("add_header", add_header)),
    Spec("expires", HSL | {LIF}, 1, 2, setting("expires", expires_arg)),
]
