"""The realip module's phase: from a trusted peer (``set_real_ip_from``), the client's
address is the one ``real_ip_header`` names, as nginx's ``ngx_http_realip_module``
takes it. From any other peer the header is ignored, so a client cannot name itself.
It runs first, so limits, access checks, variables and logs see the real address."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from fastgate.proxy.steps import NEXT

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fastgate.config.model import Location
    from fastgate.http.server import ClientConnection
    from fastgate.proxy.request import Request
    from fastgate.proxy.steps import Outcome, Phase

    Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RealIp:
    def handler(self, loc: Location) -> Phase | None:
        return self.phase if loc.settings.set_real_ip_from else None

    def phase(self, conn: ClientConnection, req: Request, loc: Location) -> Outcome:
        # from the connection's own peer every time: running again (a redirect) gives
        # the same answer, never one built on an address a header gave
        s = loc.settings
        peer = req.connection.remote_addr
        if not _trusted(peer, s.set_real_ip_from):
            return NEXT
        wanted = s.real_ip_header.encode("latin-1")
        values = [v for n, v in req.head.headers if n.lower() == wanted]
        if not values:
            return NEXT
        addr = real_address(b",".join(values).decode("latin-1"),
                            s.real_ip_header == "x-forwarded-for", s.real_ip_recursive,
                            s.set_real_ip_from)
        if addr is not None:
            req.remote_addr = addr
        return NEXT


def real_address(value: str, listed: bool, recursive: bool,
                 trusted: Sequence[Network]) -> str | None:
    """The client's address in a header's ``value``: of a list (X-Forwarded-For), the
    last one, or with ``recursive`` the last one that is not trusted; None when the one
    it comes to is not an address (the peer's stays)."""
    parts = [p.strip() for p in value.split(",")] if listed else [value.strip()]
    found = None
    for part in reversed(parts):
        try:
            addr = ipaddress.ip_address(part)
        except ValueError:
            return found if recursive and found is not None else None
        found = str(addr)
        if not recursive or not any(addr in net for net in trusted):
            return found
    return found


def _trusted(peer: str, networks: Sequence[Network]) -> bool:
    try:
        addr = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(addr in net for net in networks)
