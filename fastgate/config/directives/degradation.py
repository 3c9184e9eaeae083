"""The degradation module (``ngx_http_degradation_module``): ``degradation sbrk=SIZE``
(http) and ``degrade 204|444``; the check is ``proxy.degradation``."""

from __future__ import annotations

from fastgate.config.context import HSL, HTTP, Context, Spec
from fastgate.config.directives.args import setting
from fastgate.config.errors import ConfigError
from fastgate.config.parser import Directive
from fastgate.config.values import parse_size


def degradation(ld: Context, d: Directive) -> int:
    value = d.args[0]
    if not value.startswith("sbrk="):
        raise d.error(f'invalid parameter "{value}"')
    try:
        return parse_size(d, value[5:])
    except ConfigError:
        raise d.error(f'invalid sbrk size "{value}"') from None


def degrade(ld: Context, d: Directive) -> int:
    if d.args[0] not in ("204", "444"):
        raise d.error(f'invalid value "{d.args[0]}"')
    return int(d.args[0])


SPECS = [
    Spec("degradation", frozenset({HTTP}), 1, 1, setting("degradation_sbrk", degradation)),
    Spec("degrade", HSL, 1, 1, setting("degrade", degrade)),
]

__all__ = ["SPECS"]
