"""Client addresses as nginx reads them from text: ``ngx_parse_addr`` for a value
(``geo $address``) and ``ngx_http_get_forwarded_addr`` for the address a trusted
proxy forwarded (``geo``'s ``proxy``, the realip module). One reading for both, so the
address a geo block sees is the one realip would set."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Protocol

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse(text: str) -> Address | None:
    """An IPv4 address as ``ngx_inet_addr`` reads it (decimal octets, leading zeros
    allowed, 255.255.255.255 is not one) or an IPv6 one without a zone."""
    if ":" not in text:
        octets = text.split(".")
        if len(octets) != 4 or any(o and not (o.isascii() and o.isdigit()) for o in octets):
            return None
        value = 0
        for o in octets:
            n = int(o) if o else 0
            if n > 255:
                return None
            value = value << 8 | n
        return None if value == 0xFFFFFFFF else ipaddress.IPv4Address(value)
    if "%" in text:
        return None
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        return None


def address_port(text: str) -> tuple[Address, int] | None:
    """``ngx_parse_addr_port``: an address and its port (0 when none is given)."""
    found = parse(text)
    if found is not None:
        return found, 0
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or end == len(text) - 1 or text[end + 1] != ":":
            return None
        host, port = text[1:end], text[end + 2:]
    else:
        host, sep, port = text.partition(":")
        if not sep:
            return None
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        return None
    found = parse(host)
    return (found, int(port)) if found is not None else None


def _atoi(text: str) -> int:
    """``ngx_atoi``: decimal digits only, -1 otherwise."""
    return int(text) if text.isascii() and text.isdigit() else -1


def upstream_address(text: str) -> tuple[str, int, Address | None]:
    """``ngx_parse_url`` of an upstream address given without a URI and not resolved
    (the stream block's ``proxy_pass $value``; a ``unix:`` one is the caller's): the
    host as nginx keeps it (``[::1]`` for IPv6), the port (0: none given) and the
    address the host is, when it is one; ValueError with nginx's words otherwise."""
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1:]
        if end < 0 or "/" in rest or (rest and rest[0] != ":"):
            raise ValueError("invalid host")
        port = _atoi(rest[1:]) if rest else 0
        if rest and not 1 <= port <= 65535:
            raise ValueError("invalid port")
        if end == 1:
            raise ValueError("no host")
        try:
            return text[:end + 1], port, ipaddress.IPv6Address(text[1:end])
        except ValueError:
            raise ValueError("invalid IPv6 address") from None
    if "/" in text or "?" in text:
        raise ValueError("invalid host")
    host, colon, after = text.partition(":")
    port = _atoi(after) if colon else 0
    if colon and not 1 <= port <= 65535:
        raise ValueError("invalid port")
    if not host:
        raise ValueError("no host")
    return host, port, parse(host)


# ``set_real_ip_from unix:``, ``allow unix:``: the clients of a unix socket
UNIX = "unix:"


class Rule(Protocol):
    """What ``allows`` reads of an ``allow``/``deny`` (model.AccessRule)."""

    @property
    def allow(self) -> bool: ...

    @property
    def network(self) -> Network | None: ...

    @property
    def unix(self) -> bool: ...


def allows(addr: str, rules: Sequence[Rule]) -> bool:
    """``allow``/``deny`` (nginx's access modules, HTTP's and the stream block's): the
    first rule that matches the address decides; none matching allows."""
    return matching_rule(addr, rules) is not False


def matching_rule(addr: str, rules: Sequence[Rule]) -> bool | None:
    """What the first rule that matches the address says (True: allow, False: deny),
    None when none matches — nginx's access handler then declines, which under
    ``satisfy any`` neither lets the request in nor refuses it. An address that does not
    parse matches only ``all``; a unix socket's client (``UNIX``) only ``all`` and
    ``unix:``."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        ip = None
    for rule in rules:
        if rule.unix:
            if addr == UNIX:  # (a unix socket's client: only unix: and all match it)
                return rule.allow
        elif rule.network is None or (ip is not None and ip in rule.network):
            return rule.allow
    return None


def trusted(addr: Address | None, proxies: Sequence[Network | str]) -> bool:
    """``addr`` is one of ``proxies`` (``set_real_ip_from``) as ``ngx_cidr_match``
    reads them; None is a unix socket's client."""
    if addr is None:  # (a unix socket's client)
        return UNIX in proxies
    # an IPv4-mapped address is matched as the IPv4 address it carries (ngx_cidr_match)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(not isinstance(net, str) and addr in net for net in proxies)


def trusted_peer(addr: str, proxies: Sequence[Network | str]) -> bool:
    """``trusted`` for a peer's address as text (``UNIX``: a unix socket's client)."""
    if addr == UNIX:
        return trusted(None, proxies)
    found = parse(addr)
    return found is not None and trusted(found, proxies)


def forwarded(addr: Address | None, values: Sequence[str], proxies: Sequence[Network | str],
              recursive: bool) -> tuple[Address | None, int | None]:
    """The client's address behind trusted ``proxies``, and its port when the header
    gave one (0: none given; None: the address is ``addr`` itself, untouched): from a
    trusted ``addr`` (None: a unix socket's client, trusted when ``proxies`` holds
    ``UNIX``), the last address of the last header line (``recursive``: walking back
    through the lines while the address found is trusted too). Where the walk meets
    something that is not an address, the last address found stands."""
    port: int | None = None
    for value in reversed(values):
        text = value
        while True:
            if not trusted(addr, proxies):
                return addr, port
            text = text.rstrip(" ,")
            cut = max(text.rfind(" "), text.rfind(","))
            item, text = text[cut + 1:], text[:max(cut, 0)]
            found = address_port(item)
            if found is None:
                return addr, port
            addr, port = found
            if not recursive or not text:
                break
        if not recursive:
            break
    return addr, port
