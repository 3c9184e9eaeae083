"""The pre-access phase: ``limit_conn`` and ``limit_req``, before any token is checked
(so a flood is refused without signature work)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from fastgate.proxy.steps import NEXT, Step

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.auth_jwt import AuthJwt
    from fastgate.proxy.request import Request
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.steps import Fail, Outcome, Phase


class Limits:
    def __init__(self, worker: Runtime, auth: AuthJwt, fail: Fail) -> None:
        self.w = worker
        self.auth = auth
        self.fail = fail
        # id(location) → (location, its limit_conn plan, its limit_req plan)
        self._plans: dict[int, tuple[Location, tuple[Any, ...], tuple[Any, ...]]] = {}

    def handler(self, loc: Location) -> Phase | None:
        s = loc.settings
        return self.preaccess if s.limit_req or s.limit_conn else None

    def preaccess(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        if req.limited:
            return NEXT  # once per request, as in nginx (not again after a redirect)
        status, delay = self.check(conn, req, loc)
        if status:
            return self.fail(conn, req, loc, status)
        if delay:
            return _delayed(delay)
        return NEXT

    def check(self, conn: ClientSide | None, req: Request,
              loc: Location) -> tuple[int, float]:
        """Returns (status to refuse with, or 0; seconds to delay). A key that reads
        $jwt_* verifies the token first; an empty key is not limited."""
        req.limited = True
        s = loc.settings
        plan = self._plans.get(id(loc))
        if plan is None or plan[0] is not loc:
            plan = self._plans[id(loc)] = self._plan(loc)
        _, conns, reqs = plan
        for zone, table, limit, name in conns:
            key = self._zone_key(req, loc, zone)
            if not key:
                continue
            if table.acquire(key, limit):
                if req.conn_slots is None:
                    req.conn_slots = []
                req.conn_slots.append((table, key))
                req.limit_conn_status = req.limit_conn_status or "PASSED"
                continue
            req.limit_conn_status = self._refusal(
                conn, req, "connections", name, s.limit_conn_log_level, s.limit_conn_dry_run)
            if not s.limit_conn_dry_run:
                return s.limit_conn_status, 0.0
        if not reqs:
            return 0, 0.0
        now_ms = int(time.time() * 1000)
        # with one limit_req (the usual case) the check is also the accounting: one
        # lookup; with several, none is accounted unless all pass (as nginx does)
        single = len(reqs) == 1
        checks = []
        for zone, table, lr, name in reqs:
            key = self._zone_key(req, loc, zone)
            if not key:
                continue
            excess = table.request(key, now_ms, zone.rate, lr.burst, single)
            if excess < 0:
                req.limit_req_status = self._refusal(
                    conn, req, "requests", name, s.limit_req_log_level, s.limit_req_dry_run,
                    -1 - excess)
                if s.limit_req_dry_run:
                    continue
                return s.limit_req_status, 0.0
            if single and (lr.delay is None or excess <= lr.delay):
                req.limit_req_status = req.limit_req_status or "PASSED"
                return 0, 0.0
            checks.append((table, key, zone, lr, excess))
        delay_ms = 0
        longest: tuple[int, str] | None = None  # the limit that delays most, its excess
        for table, key, zone, lr, excess in checks:
            if not single:
                excess = table.request(key, now_ms, zone.rate, lr.burst, True)
                if excess < 0:  # another worker took the room in between
                    self.w.stats.limit_rejected(self.w.zones.rejected[zone.name])
                    req.limit_req_status = "REJECTED"
                    return s.limit_req_status, 0.0
            if lr.delay is not None and excess > lr.delay:
                wait = (excess - lr.delay) * 1000 // zone.rate
                if wait > delay_ms:
                    delay_ms, longest = wait, (excess, zone.name)
        if delay_ms:
            assert longest is not None
            # (nginx's delay_log_level: one level below limit_req_log_level, info at least)
            self.w.log.write(_DELAY_LEVEL[s.limit_req_log_level],
                             f'delaying request{", dry run" if s.limit_req_dry_run else ""}, '
                             f'excess: {_thousandths(longest[0])}, by zone "{longest[1]}"',
                             conn, req)
            req.limit_req_status = "DELAYED" if not s.limit_req_dry_run else "DELAYED_DRY_RUN"
            if s.limit_req_dry_run:
                return 0, 0.0
            return 0, delay_ms / 1000
        if checks and not req.limit_req_status:
            req.limit_req_status = "PASSED"
        return 0, 0.0

    def _plan(self, loc: Location) -> tuple[Location, tuple[Any, ...], tuple[Any, ...]]:
        """A location's limits with their zones and this worker's tables looked up once."""
        w = self.w
        zones = w.config.zones
        s = loc.settings
        conns = tuple((zones[lc.zone], w.zones[lc.zone], lc.limit, lc.zone)
                      for lc in s.limit_conn)
        reqs = tuple((zones[lr.zone], w.zones[lr.zone], lr, lr.zone) for lr in s.limit_req)
        return loc, conns, reqs

    def _refusal(self, conn: ClientSide | None, req: Request, what: str, zone: str,
                 level: str, dry_run: bool, excess: int | None = None) -> str:
        """Log a limit's refusal as nginx does, count it; the value of $limit_*_status.
        ``excess``: limit_req's, in milli-requests (nginx writes it, and fail2ban's
        nginx-limit-req filter reads it); 0 when its zone had no room for the key
        (nginx's "could not allocate node", which refuses without that line)."""
        self.w.stats.limit_rejected(self.w.zones.rejected[zone])
        dry = ", dry run" if dry_run else ""
        if excess is None:
            self.w.log.write(level, f'limiting {what}{dry} by zone "{zone}"', conn, req)
        elif excess == 0:
            self.w.log.write("alert", f'could not allocate node in limit_req zone "{zone}"',
                             conn, req)
        else:
            self.w.log.write(level, f'limiting {what}{dry}, excess: {_thousandths(excess)} '
                                    f'by zone "{zone}"', conn, req)
        return "REJECTED_DRY_RUN" if dry_run else "REJECTED"

    def _zone_key(self, req: Request, loc: Location, zone: Any) -> bytes:
        if zone.uses_jwt:
            self.auth.verify_early(req, loc)
        key: str = zone.key.render(req)
        return key.encode("utf-8", "surrogateescape")


_DELAY_LEVEL = {"error": "warn", "warn": "notice", "notice": "info", "info": "info"}


def _thousandths(milli: int) -> str:
    """nginx's ``%ui.%03ui`` of a value in thousandths."""
    return f"{milli // 1000}.{milli % 1000:03d}"


async def _delayed(delay: float) -> Step:
    """limit_req with a burst and no nodelay: the request waits its turn."""
    await asyncio.sleep(delay)
    return NEXT
