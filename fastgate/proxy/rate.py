"""nginx's response rate limit: ``limit_rate RATE`` (bytes per second; variables
allowed), ``limit_rate_after SIZE``, ``set $limit_rate RATE``, and a proxied or
FastCGI-family answer's ``X-Accel-Limit-Rate``. As nginx's write filter paces a
response: by the time t seconds (whole) have passed since the request came, at most
``RATE * (t + 1)`` bytes past the first ``limit_rate_after`` have been sent; each send
takes no more than that allows, and waits until it allows some.

Which rate applies, as nginx decides it: ``X-Accel-Limit-Rate`` (unless ignored), else
``set $limit_rate``, else the location's ``limit_rate``. A proxied answer relayed
unbuffered (``proxy_buffering off``, or the upstream's ``X-Accel-Buffering: no``) has
none, as nginx's unbuffered relay has none; a subrequest's kept answer has none either
(the response it goes into is paced)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING

from fastgate.decimals import MAX_OFF_T, decimal
from fastgate.variables import RATE_KEY, SET_RATE, SUBREQUEST_KEY

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from fastgate.config.model import Settings
    from fastgate.http.engine import Headers
    from fastgate.proxy.request import Request

_SIZE = re.compile(r"([0-9]+)([kKmMgG]?)")
_SCALE = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int | None:
    """nginx's ngx_parse_size: digits with an optional k, m or g (None: not a size)."""
    m = _SIZE.fullmatch(text)
    if m is None:
        return None
    scale = _SCALE[m.group(2).lower()]
    number = decimal(m.group(1), MAX_OFF_T // scale)  # (past it, ngx_parse_size's error)
    return None if number is None else number * scale


def upstream_rate(req: Request, headers: Headers, ignored: Collection[str]) -> None:
    """An upstream answer's ``X-Accel-Limit-Rate`` (digits: bytes per second) becomes
    the request's rate, unless ``*_ignore_headers`` names it; ``X-Accel-Buffering: no``
    (unless ignored) relays it unbuffered: no rate."""
    for name, value in headers:
        low = name.lower()
        if low == b"x-accel-limit-rate" and "x-accel-limit-rate" not in ignored:
            rate = decimal(value.strip())
            if rate is not None:  # (else ignored, as nginx's ngx_atoi error)
                req.memo[RATE_KEY] = rate
        elif (low == b"x-accel-buffering" and "x-accel-buffering" not in ignored
              and value.strip().lower() == b"no"):
            req.memo[RATE_KEY] = 0
            return


def relayed_unbuffered(buffering: bool, headers: Headers, ignored: Collection[str]) -> bool:
    """Whether an upstream's answer is relayed unbuffered (each piece flushed as it
    comes): ``proxy_buffering off`` unless its ``X-Accel-Buffering`` says yes, or
    that header's no (unless ``*_ignore_headers`` names it)."""
    if "x-accel-buffering" not in ignored:
        for name, value in headers:
            if name.lower() == b"x-accel-buffering":
                word = value.strip().lower()
                if word in (b"yes", b"no"):
                    return word == b"no"
    return not buffering


def rate_of(req: Request, s: Settings, log: Callable[[str], None]) -> int:
    """The rate this request's response is sent at (0: as fast as it is taken)."""
    given = req.memo.get(RATE_KEY)
    if given is not None:
        rate: int = given
        return rate
    text = req.variables.get(SET_RATE)
    if text is not None:
        size = parse_size(text)
        if size is not None:
            return size
        log(f'invalid $limit_rate "{text}"')
    if s.limit_rate is None:
        return 0
    return parse_size(s.limit_rate.render(req)) or 0


class Pace:
    """One response's pace: ``await take(n)`` before sending up to ``n`` bytes gives how
    many may go now (waiting until some may); ``sent(n)`` counts what went."""

    __slots__ = ("_rate", "_after", "_start", "_sent")

    def __init__(self, rate: int, after: int, start: float, sent: int) -> None:
        self._rate = rate
        self._after = after
        self._start = int(start)
        self._sent = sent  # bytes of the response sent so far, its head included

    async def take(self, wanted: int) -> int:
        while True:
            limit = (self._rate * (int(time.time()) - self._start + 1)
                     - (self._sent - self._after))
            if limit > 0:
                return min(wanted, limit)
            await asyncio.sleep(-limit / self._rate + 0.001)

    def sent(self, n: int) -> None:
        self._sent += n


def pace(req: Request, s: Settings, log: Callable[[str], None]) -> Pace | None:
    """The pace of this request's response, or None when it has no rate — nor has a
    subrequest's answer (an include, a slice): it is kept, and the response it goes
    into is paced as it is sent."""
    memo = req.memo
    if SUBREQUEST_KEY in memo or (s.limit_rate is None and RATE_KEY not in memo
                                  and SET_RATE not in req.variables):
        return None
    rate = rate_of(req, s, log)
    if rate <= 0:
        return None
    after = 0
    if s.limit_rate_after is not None:
        after = parse_size(s.limit_rate_after.render(req)) or 0
    return Pace(rate, after, req.start, req.bytes_sent)


__all__ = ["Pace", "pace", "parse_size", "rate_of", "relayed_unbuffered", "upstream_rate"]
