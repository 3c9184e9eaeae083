"""What a phase handler answers the loop that walks the phases (``proxy.phases``).

A phase returns ``NEXT`` (go on to the next phase), ``DONE`` (the request is answered),
``TAKEN`` (an exchange running in callbacks owns the request and completes it), or a
coroutine when it must wait; the loop then goes on in a task, and the coroutine's result
says the same: ``NEXT`` resumes the walk at the following phase, anything else ends it.
Continuing is always said explicitly, so a handler that forgets to answer stops the
request instead of letting it through to the next phase.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request


class Step(enum.Enum):
    NEXT = "next"
    DONE = "done"
    TAKEN = "taken"
    # an access handler asked quietly (satisfy any) refused: only between the access
    # module and the handler it asks, never returned to the walk
    REFUSED = "refused"


NEXT = Step.NEXT
DONE = Step.DONE
TAKEN = Step.TAKEN
REFUSED = Step.REFUSED

Wait: TypeAlias = Coroutine[Any, Any, Step]
# what a phase (and everything that answers for it: error_page, a redirect) returns
Outcome: TypeAlias = "Step | Wait"
Phase: TypeAlias = "Callable[[ClientSide, Request, Location], Outcome]"
# error_page's entry: (conn, req, loc, status) → the outcome of answering status
Fail: TypeAlias = "Callable[[ClientSide, Request, Location, int], Outcome]"


async def finished(step: Outcome) -> Step:
    """A coroutine that ends with what ``step`` ends with (for hand-offs that need one)."""
    if isinstance(step, Step):
        return step
    return await step
