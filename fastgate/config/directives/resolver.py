"""``resolver`` and ``resolver_timeout``: the DNS servers a ``proxy_pass`` with
variables asks for names that are not an upstream block's (nginx's core module
directives, read here)."""

from __future__ import annotations

import ipaddress
import socket

from fastgate.config.context import HSL, Context, Spec
from fastgate.config.directives.args import setting, time_arg
from fastgate.config.model import Resolver
from fastgate.config.parser import Directive
from fastgate.config.values import parse_flag, parse_host_port, parse_time


def _address(d: Directive, text: str) -> list[tuple[str, int]]:
    try:
        return [(str(ipaddress.ip_address(text)), 53)]  # an IPv6 address without brackets
    except ValueError:
        pass
    host, port = parse_host_port(d, text, 53)
    try:
        ipaddress.ip_address(host)
        return [(host, port)]
    except ValueError:
        pass
    # a name, resolved once at load by the system (as nginx does)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError:
        raise d.error(f'host not found in resolver "{text}"') from None
    return list(dict.fromkeys((str(info[4][0]), port) for info in infos))


def resolver(ld: Context, d: Directive) -> Resolver:
    addresses: list[tuple[str, int]] = []
    valid: float | None = None
    ipv6 = True
    for a in d.args:
        if a.startswith("valid="):
            valid = parse_time(d, a[6:], seconds_only=True)  # (ngx_parse_time(.., 1))
        elif a.startswith("ipv6="):
            ipv6 = parse_flag(d, a[5:])
        elif a.startswith("ipv4="):
            if not parse_flag(d, a[5:]):
                raise d.error('"ipv4=off" is not supported: upstreams are reached by '
                              "their IPv4 addresses too")
        elif a.startswith("status_zone="):
            ld.warn_once('the "status_zone" parameter of "resolver" is ignored',
                         "fastgate keeps no resolver statistics", d)
        else:
            addresses.extend(_address(d, a))
    if not addresses:
        raise d.error('no name servers defined in "resolver"')
    return Resolver(tuple(addresses), valid, ipv6)


SPECS = [
    Spec("resolver", HSL, 1, None, setting("resolver", resolver)),
    Spec("resolver_timeout", HSL, 1, 1, setting("resolver_timeout", time_arg)),
]
