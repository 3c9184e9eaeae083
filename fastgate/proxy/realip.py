"""The realip module: from a trusted peer (``set_real_ip_from``), the client's address
is the one ``real_ip_header`` names, as nginx's ``ngx_http_realip_module`` takes it.
From any other peer the header is ignored, so a client cannot name itself.

It runs where nginx runs it: after the request head with the server's settings (before
the server's rewrites: then everything sees the real address), and otherwise in the
preaccess phase with the location's (after the location's rewrite phase: a ``return``
there still sees the peer's address, as in nginx), before limits and access checks;
once per request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.config import addresses
from fastgate.proxy.steps import NEXT

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request
    from fastgate.proxy.steps import Outcome, Phase


class RealIp:
    def handler(self, loc: Location) -> Phase | None:
        return self.phase if loc.settings.set_real_ip_from else None

    def phase(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        # from the connection's own peer: never from an address a header gave
        if req.real_address:
            return NEXT
        s = loc.settings
        from_unix = req.connection.remote_addr == addresses.UNIX
        peer = addresses.parse(req.connection.remote_addr)
        if peer is None and not from_unix:
            return NEXT
        header = s.real_ip_header
        given = req.connection.proxy_protocol if header == "proxy_protocol" else None
        if given is not None:
            values = [given.addr]
        elif header == "proxy_protocol":
            return NEXT
        else:
            wanted = header.encode("latin-1")
            values = [v.decode("latin-1") for n, v in req.head.headers if n.lower() == wanted]
            if not values:
                return NEXT
            if wanted != b"x-forwarded-for":
                values = values[:1]  # nginx reads the first line of any other header
        addr, port = addresses.forwarded(peer, values, s.set_real_ip_from,
                                         s.real_ip_recursive)
        if port is not None and addr is not None:
            req.real_address = True
            req.remote_addr = str(addr)
            # the port the header gave (none: $remote_port is empty, as nginx's); from
            # the PROXY protocol, its source port
            req.remote_port = given.port if given is not None else port
        return NEXT
