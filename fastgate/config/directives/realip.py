"""The realip module: behind a load balancer, the client's address is the one the
balancer names in a header — believed only from the peers ``set_real_ip_from`` lists."""

from __future__ import annotations

import ipaddress
import re
import socket

from fastgate.config.addresses import UNIX
from fastgate.config.context import HSL, Context, Level, Spec
from fastgate.config.directives.args import flag_arg, setting
from fastgate.config.parser import Directive

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(ld: Context, d: Directive) -> tuple[Network | str, ...]:
    """``set_real_ip_from``'s peers: an address or a CIDR network, ``unix:``, or, as
    nginx's, a host name — each of its addresses, resolved by the system at load
    (nginx's ``host not found in set_real_ip_from "NAME"`` when it does not resolve)."""
    value = d.args[0]
    if value == UNIX:  # (the clients of a "listen unix:" socket)
        return (UNIX,)
    try:
        return (ipaddress.ip_network(value, strict=False),)
    except ValueError:
        pass
    if not _HOST.fullmatch(value):
        raise d.error(f'invalid parameter "{value}"')
    try:
        found = socket.getaddrinfo(value, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise d.error(f'host not found in set_real_ip_from "{value}"') from None
    return tuple(dict.fromkeys(ipaddress.ip_network(str(info[4][0]).partition("%")[0])
                               for info in found))


def set_real_ip_from(ld: Context, lvl: Level, d: Directive) -> None:
    """Every one of a level; an inner level that has any replaces the outer list."""
    lvl.origins.setdefault(d.name, d)
    lvl.fields["set_real_ip_from"] = (lvl.fields.get("set_real_ip_from", ())
                                      + trusted_networks(ld, d))


_HOST = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")


def real_ip_header(ld: Context, d: Directive) -> str:
    name = d.args[0]
    return name if name == "proxy_protocol" else name.lower()


SPECS = [
    Spec("set_real_ip_from", HSL, 1, 1, set_real_ip_from),
    Spec("real_ip_header", HSL, 1, 1, setting("real_ip_header", real_ip_header)),
    Spec("real_ip_recursive", HSL, 1, 1, setting("real_ip_recursive", flag_arg)),
]
