"""The access module: ``allow`` and ``deny`` by client address, and ``satisfy``,
which says whether every access check must pass (all) or one is enough (any)."""

from __future__ import annotations

import ipaddress

from fastgate.config.addresses import UNIX
from fastgate.config.context import HSL, LMT, Context, Spec
from fastgate.config.directives.args import appending, one_of, setting, time_arg
from fastgate.config.model import AccessRule
from fastgate.config.parser import Directive


def access_rule(ld: Context, d: Directive) -> AccessRule:
    value = d.args[0]
    allow = d.name == "allow"
    if value == "all":
        return AccessRule(allow, None)
    if value == UNIX:  # (the clients of a "listen unix:" socket)
        return AccessRule(allow, None, unix=True)
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise d.error(f'invalid parameter "{value}"') from None
    return AccessRule(allow, network)


SPECS = [
    Spec("allow", HSL | {LMT}, 1, 1, appending("access_rules", access_rule)),
    Spec("deny", HSL | {LMT}, 1, 1, appending("access_rules", access_rule)),
    Spec("satisfy", HSL, 1, 1, setting("satisfy", one_of("all", "any"))),
    # nginx keeps it in the core module; it brakes the access phase's 401s
    Spec("auth_delay", HSL, 1, 1, setting("auth_delay", time_arg)),
]
