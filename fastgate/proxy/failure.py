"""What becomes of a proxied request when its upstream fails: one table for both
exchange paths (the callback path in ``proxy.fast`` and the task path in
``proxy.exchange``), so that they cannot come to disagree.

| part of the response sent | stale pooled connection | proxy_next_upstream allows | → |
|---|---|---|---|
| yes | — | — | CUT: the client's connection is cut (never a short response that looks whole) |
| no | yes | — | AGAIN: sent again, with one try more; the server is not blamed |
| no | no | yes | NEXT: the next server; this one is blamed |
| no | no | no | ANSWER: the error's status (502, 504 on a timeout), through error_page |

A pooled connection is stale when the upstream had closed it before our request: a
reset on a reused connection, before any byte of the response, for a request without
a body (nginx retries a cached connection the same way)."""

from __future__ import annotations

import enum
import errno
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastgate.config.model import Location

# nginx's words for a read that timed out; the context follows ("while reading response
# header from upstream", "while reading upstream")
TIMED_OUT = "upstream timed out (110: Connection timed out)"

# a unix socket's connect() fails at once, and nginx logs these errnos at error, any
# other (no such file, permission denied) at crit (ngx_event_connect_peer)
_QUIET_ERRNOS = frozenset({errno.ECONNREFUSED, errno.EAGAIN, errno.ECONNRESET,
                           errno.ENETDOWN, errno.ENETUNREACH, errno.EHOSTDOWN,
                           errno.EHOSTUNREACH})


def unix_connect_failed(address: str, e: OSError,
                        during: str = " while connecting to upstream") -> tuple[str, str]:
    """nginx's words and level for a connect() to a socket (``address``: "unix:PATH" as
    written) that failed."""
    level = "error" if e.errno in _QUIET_ERRNOS else "crit"
    return f"connect() to {address} failed ({e.errno}: {e.strerror}){during}", level


class Recovery(enum.Enum):
    CUT = "cut"
    AGAIN = "again"
    NEXT = "next"
    ANSWER = "answer"


def stale(kind: str, reused: bool, has_body: bool, received: int) -> bool:
    """Whether a failure says only that a pooled connection had been closed."""
    return kind == "reset" and reused and not has_body and received == 0


def recovery(responded: bool, is_stale: bool, may_next: bool) -> Recovery:
    """The table above. ``may_next``: ``proxy_next_upstream`` lists the condition, the
    request may be sent again, and the tries allow another server."""
    if responded:
        return Recovery.CUT
    if is_stale:
        return Recovery.AGAIN
    return Recovery.NEXT if may_next else Recovery.ANSWER


def intercepts(loc: Location, status: int) -> bool:
    """``proxy_intercept_errors on``: an upstream status of 300 or more that has an
    ``error_page`` is answered by the error_page, the upstream's answer dropped (both
    paths ask this before the response head goes out)."""
    s = loc.settings
    return status >= 300 and s.proxy_intercept_errors and s.error_page_for(status) is not None


# nginx's warning when a failure takes a server out (max_fails reached), and its line
# for an answer whose status the configuration sends on to the next server
# (proxy_next_upstream http_5xx)
DISABLED = "upstream server temporarily disabled"
DISABLED_READING = f"{DISABLED} while reading response header from upstream"
