"""``expires``' value as nginx's headers filter parses it (ngx_http_parse_expires), at
load for a literal and for each response when it has variables."""

from __future__ import annotations

from fastgate.config.model import Expires
from fastgate.config.values import time_value
from fastgate.errors import FastgateError

DAY = 24 * 60 * 60


class ExpiresError(FastgateError):
    """nginx's reason (its message for the directive)."""


def parse_expires(text: str, modified: bool) -> Expires | None:
    """``epoch``, ``max``, ``off`` (None), ``@TIME`` (a time of day), ``[+|-]TIME``;
    after ``modified`` only a time, counted from the response's Last-Modified."""
    if not modified:
        if text in ("epoch", "max"):
            return Expires(text)
        if text == "off":
            return None
    daily = text.startswith("@")
    if daily and modified:
        raise ExpiresError('daily time cannot be used with "modified" parameter')
    sign = -1 if text.startswith("-") else 1
    seconds = time_value(text[1:] if text[:1] in ("@", "+", "-") else text,
                         seconds_only=True)
    if seconds is None:
        raise ExpiresError("invalid value")
    if daily and seconds > DAY:
        raise ExpiresError("daily time value must be less than 24 hours")
    kind = "daily" if daily else "modified" if modified else "after"
    return Expires(kind, sign * seconds)
