"""The realip module's phase: from a trusted peer (``set_real_ip_from``), the client's
address is the one ``real_ip_header`` names, as nginx's ``ngx_http_realip_module``
takes it. From any other peer the header is ignored, so a client cannot name itself.
It runs first, so limits, access checks, variables and logs see the real address."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.config import addresses
from fastgate.proxy.steps import NEXT

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.server import ClientConnection
    from fastgate.proxy.request import Request
    from fastgate.proxy.steps import Outcome, Phase


class RealIp:
    def handler(self, loc: Location) -> Phase | None:
        return self.phase if loc.settings.set_real_ip_from else None

    def phase(self, conn: ClientConnection, req: Request, loc: Location) -> Outcome:
        # from the connection's own peer every time: running again (a redirect) gives
        # the same answer, never one built on an address a header gave
        s = loc.settings
        peer = addresses.parse(req.connection.remote_addr)
        if peer is None:
            return NEXT
        wanted = s.real_ip_header.encode("latin-1")
        values = [v.decode("latin-1") for n, v in req.head.headers if n.lower() == wanted]
        if not values:
            return NEXT
        if wanted != b"x-forwarded-for":
            values = values[:1]  # nginx reads the first line of any other header
        addr = addresses.forwarded(peer, values, s.set_real_ip_from, s.real_ip_recursive)
        if addr is not peer:
            req.remote_addr = str(addr)
        return NEXT
