"""The realip module: behind a load balancer, the client's address is the one the
balancer names in a header — believed only from the peers ``set_real_ip_from`` lists."""

from __future__ import annotations

import ipaddress

from fastgate.config.addresses import UNIX
from fastgate.config.context import HSL, Context, Spec
from fastgate.config.directives.args import appending, flag_arg, setting
from fastgate.config.parser import Directive

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_network(ld: Context, d: Directive) -> Network | str:
    value = d.args[0]
    if value == UNIX:  # (the clients of a "listen unix:" socket)
        return UNIX
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise d.error(f'invalid parameter "{value}"') from None


def real_ip_header(ld: Context, d: Directive) -> str:
    name = d.args[0]
    return name if name == "proxy_protocol" else name.lower()


SPECS = [
    Spec("set_real_ip_from", HSL, 1, 1, appending("set_real_ip_from", trusted_network)),
    Spec("real_ip_header", HSL, 1, 1, setting("real_ip_header", real_ip_header)),
    Spec("real_ip_recursive", HSL, 1, 1, setting("real_ip_recursive", flag_arg)),
]
