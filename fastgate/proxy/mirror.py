"""The mirror module (nginx's ``ngx_http_mirror_module``, in its precontent phase):
each request is copied to the ``mirror`` locations — same method, the client's headers,
with ``mirror_request_body on`` (the default) the body too — in the background; their
answers are read and dropped, their failures only logged, and the client's response
never waits on them.

A body to be copied is read whole before the request goes on (nginx reads it first as
well), by the proxy's own body reader (``client_max_body_size``, ``client_body_timeout``,
its failures answered as the proxy answers them) — in memory up to
``client_body_buffer_size``, past it in a file that the copies read back — and the main
request then sends that body upstream too. A body in a file stays open while a copy
still needs it, after its request if need be.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastgate.http.buffered_body import BufferedBody
from fastgate.proxy.steps import DONE, NEXT, Step

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.steps import Outcome, Phase
    from fastgate.proxy.subrequest import Subrequests


class Mirror:
    def __init__(self, worker: Runtime, subrequests: Subrequests) -> None:
        self.w = worker
        self.subrequests = subrequests
        self._running: set[asyncio.Task[Any]] = set()  # kept until done (not collected)

    def handler(self, loc: Location) -> Phase | None:
        return self.phase if loc.settings.mirror else None

    def phase(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        if (loc.settings.mirror_request_body
                and self.subrequests.upstream.reads_body(req, loc.settings)):
            return self._with_body(conn, req, loc)
        self._copy(conn, req, loc, b"")
        return NEXT

    async def _with_body(self, conn: ClientSide, req: Request, loc: Location) -> Step:
        body = await self.subrequests.upstream.buffer_body(conn, req, loc)
        if body is None:  # it failed, and was answered
            return DONE
        req.body_buffer = body  # (a file: closed when the request completes)
        self._copy(conn, req, loc, body)
        return NEXT

    def _copy(self, conn: ClientSide, req: Request, loc: Location,
              body: bytes | BufferedBody) -> None:
        method = req.method.encode("latin-1")
        for uri in loc.settings.mirror:
            self._send(conn, req, uri, method, body, "mirror")

    def post_action(self, conn: ClientSide, req: Request, uri: str) -> None:
        """``post_action``: once the response is done, the request (its method and
        headers, not its body, which is spent) to ``uri``'s location; its answer
        dropped."""
        self._send(conn, req, uri, req.method.encode("latin-1"), b"", "post action",
                   req.status)

    def _send(self, conn: ClientSide, req: Request, uri: str, method: bytes,
              body: bytes | BufferedBody, what: str, status: int = 0) -> None:
        sub, target = self.subrequests.make(conn, req, uri)
        # post_action is the request itself once more, in nginx: $status is its answer's
        sub.status = status
        task = asyncio.ensure_future(
            self.subrequests.run(conn, req, sub, target, method, body, what))
        self._running.add(task)
        task.add_done_callback(self._done)
        if isinstance(body, BufferedBody):
            body.hold()  # (the copy may outlive its request)
            task.add_done_callback(lambda _: body.close())

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.w.log.write("error", f"subrequest failed: {task.exception()!r}")
