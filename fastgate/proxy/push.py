"""HTTP/2 server push (nginx 1.22's ``http2_push`` and ``http2_push_preload``): a
location names URIs to push with its answer; the connection of an HTTP/2 stream
promises them, and its ``Link: <...>; rel=preload`` headers with preload on, when the
answer's head goes (``fastgate.http.http2``). Named once the location is found — the
last location's, after an internal redirect — with the URIs' variables rendered then.
A pushed URI is a GET of its own through every phase, with no credentials of the
client's: a protected location answers it as it answers anyone without a token."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.proxy.steps import NEXT

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.steps import Outcome, Phase


class Push:
    def __init__(self, worker: Runtime) -> None:
        self.w = worker

    def handler(self, loc: Location) -> Phase | None:
        s = loc.settings
        return self.phase if s.http2_push or s.http2_push_preload else None

    def phase(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        s = loc.settings
        if req.connection.http2:
            paths = tuple(t.render(req).encode("latin-1", "replace") for t in s.http2_push)
            log = self.w.log

            def warn(path: bytes) -> None:
                log.warn(f'non-absolute path "{path.decode("latin-1")}" not pushed', conn, req)

            conn.promise(paths, s.http2_push_preload, warn)
        return NEXT


__all__ = ["Push"]
