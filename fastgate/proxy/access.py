"""The access phase's composition: nginx's access module (``allow``/``deny`` by client
address), ``auth_jwt``, ``auth_basic`` and ``auth_request``, under ``satisfy``, in that
order. ``satisfy all`` (the default): the first refusal answers — a denied address gets
403 before any token is looked at, an allowed one still needs its token, its password
and the authoriser's yes.
``satisfy any``: the first check that passes lets the request go on (those after it do
not run: an address an ``allow`` names passes without a token, which is then not
checked, so ``$jwt_claim_*`` are empty); an address no rule names is neither let in nor
refused by the rules (nginx's access handler declines), so the other checks decide;
when one refused and none passed, 401 if one said 401 (nginx prefers it), else 403; when
none had anything to say, the request goes on, as nginx's. An authoriser's answer other
than 2xx, 401 or 403 is a 500 either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.config.addresses import matching_rule
from fastgate.proxy.auth_basic import PASSED, REFUSED, AuthBasic
from fastgate.proxy.auth_jwt import AuthJwt
from fastgate.proxy.steps import NEXT, Step, finished
from fastgate.proxy.steps import REFUSED as NOTED

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.auth_request import AuthRequest
    from fastgate.proxy.request import Request
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.steps import Fail, Outcome, Phase


class AccessModule:
    """The access phase where it has more than the token check: allow/deny, then
    auth_jwt, auth_basic and auth_request, under ``satisfy``. The cheap local checks go
    first: a forged token never costs a password hash or a subrequest (with ``satisfy
    all`` every check must pass either way; nginx runs a dynamically loaded JWT module's
    handler first too)."""

    def __init__(self, worker: Runtime, auth: AuthJwt, fail: Fail, basic: AuthBasic,
                 auth_request: AuthRequest) -> None:
        self.w = worker
        self.auth = auth
        self.fail = fail
        self.basic = basic
        self.auth_request = auth_request
        # the same token check, asked quietly: a refusal is noted, not answered
        self.quiet = AuthJwt(worker, _note)

    def handler(self, loc: Location) -> Phase | None:
        """The location's access phase: the token check alone where there is nothing
        else (the usual case, unchanged), else this module's."""
        s = loc.settings
        if not s.access_rules and s.auth_request is None and not _basic(loc):
            return self.auth.handler(loc)
        return self.phase

    def phase(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        s = loc.settings
        every = s.satisfy == "all"
        req.access_code = 0
        if s.access_rules:
            verdict = matching_rule(req.remote_addr, s.access_rules)
            if verdict is False:
                if every:  # (nginx logs it under satisfy all only)
                    self.w.log.error("access forbidden by rule", conn, req)
                    return self.fail(conn, req, loc, 403)
                req.access_code = 403
            elif verdict and not every:
                return NEXT
        if loc.jwt is not None:
            if every:
                step = self.auth.access(conn, req, loc)
                if step is not NEXT:
                    return step
            elif self.quiet.access(conn, req, loc) is NEXT:
                return NEXT
        if s.auth_request is not None or _basic(loc):
            return self._remote(conn, req, loc, every)
        return self._decided(conn, req, loc, every)

    def _decided(self, conn: ClientSide, req: Request, loc: Location,
                 every: bool) -> Outcome:
        """The end of the phase: with ``satisfy any``, the refusal noted if a check
        refused (none passed, or the request would have gone on), else on."""
        if every or not req.access_code:
            return NEXT
        return self.fail(conn, req, loc, req.access_code)

    async def _remote(self, conn: ClientSide, req: Request, loc: Location,
                      every: bool) -> Step:
        """The checks that may wait: the password (a slow hash), the authoriser."""
        s = loc.settings
        if _basic(loc):
            status = await self.basic.check(conn, req, loc)
            if status == PASSED:
                if not every:
                    return NEXT
            elif status != REFUSED:
                return await finished(self.fail(conn, req, loc, status))
            elif every:
                return await finished(self.fail(conn, req, loc, REFUSED))
            else:
                _note(conn, req, loc, REFUSED)
        if s.auth_request is not None:
            status = await self.auth_request.ask(conn, req, loc)
            if 200 <= status < 300:
                return NEXT
            if status not in (401, 403):
                self.w.log.error(f"auth request unexpected status: {status}", conn, req)
                return await finished(self.fail(conn, req, loc, 500))
            if every:
                return await finished(self.fail(conn, req, loc, status))
            _note(conn, req, loc, status)
        return await finished(self._decided(conn, req, loc, every))


def _basic(loc: Location) -> bool:
    """auth_basic applies: a realm and a file (without a file nginx checks nothing, and
    the loader has warned)."""
    s = loc.settings
    return s.auth_basic is not None and s.auth_basic_user_file is not None


def _note(conn: ClientSide, req: Request, loc: Location, status: int) -> Outcome:
    """satisfy any: the token check's refusal, kept (401 is preferred over 403)."""
    if req.access_code != 401:
        req.access_code = status
    return NOTED
