"""The access phase's composition: nginx's access module (``allow``/``deny`` by client
address) beside ``auth_jwt``, under ``satisfy``. The access module runs first, as its
handler does in nginx. ``satisfy all`` (the default): a denied address gets 403 before
any token is looked at, an allowed one still needs its token. ``satisfy any``: an
allowed address passes without a token (the token is then not checked, so
``$jwt_claim_*`` are empty); a denied one passes with a valid token; neither is 401
when the token was refused (nginx prefers 401 to 403), else 403.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from fastgate.proxy.auth_jwt import AuthJwt
from fastgate.proxy.steps import NEXT, REFUSED

if TYPE_CHECKING:
    from fastgate.config.model import AccessRule, Location
    from fastgate.http.server import ClientConnection
    from fastgate.proxy.request import Request
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.steps import Fail, Outcome, Phase


class AccessModule:
    def __init__(self, worker: Runtime, auth: AuthJwt, fail: Fail) -> None:
        self.w = worker
        self.auth = auth
        self.fail = fail
        # the same token check, asked quietly: a refusal is noted, not answered
        self.quiet = AuthJwt(worker, _note)

    def handler(self, loc: Location) -> Phase | None:
        """The location's access phase: the token check alone where there are no
        allow/deny rules (the usual case, unchanged), else this module's."""
        if not loc.settings.access_rules:
            return self.auth.handler(loc)
        return self.phase

    def phase(self, conn: ClientConnection, req: Request, loc: Location) -> Outcome:
        s = loc.settings
        allowed = allows(req.remote_addr, s.access_rules)
        if s.satisfy == "all":
            if not allowed:
                self.w.log.error("access forbidden by rule", conn, req)
                return self.fail(conn, req, loc, 403)
            return self.auth.access(conn, req, loc) if loc.verifier is not None else NEXT
        if allowed:
            return NEXT
        self.w.log.error("access forbidden by rule", conn, req)
        if loc.verifier is None:
            return self.fail(conn, req, loc, 403)
        req.access_code = 403
        step = self.quiet.access(conn, req, loc)
        if step is NEXT:
            return NEXT
        assert step is REFUSED
        return self.fail(conn, req, loc, req.access_code)


def allows(addr: str, rules: tuple[AccessRule, ...]) -> bool:
    """The first rule that matches the address decides; none matching allows, as in
    nginx. An address that does not parse matches only ``all``."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        ip = None
    for rule in rules:
        if rule.network is None or (ip is not None and ip in rule.network):
            return rule.allow
    return True


def _note(conn: ClientConnection, req: Request, loc: Location, status: int) -> Outcome:
    """satisfy any: the token check's refusal, kept (401 is preferred over 403)."""
    if req.access_code != 401:
        req.access_code = status
    return REFUSED
