"""nginx's addition filter: ``add_before_body URI`` and ``add_after_body URI`` put the
body of a subrequest for URI (``proxy.capture``) before and after the body of a 200
response whose type is text/html or one of ``addition_types`` (``*``: any) — a file, a
proxied or FastCGI-family answer, a page of fastgate's own (``return``'s text, a
status page, empty_gif: ``Responder.page``). Such a response loses its Content-Length
(the client's engine frames it) and Accept-Ranges, and its ETag is made weak, as
nginx's header filter does; a response to HEAD gets those headers and no additions.

The subrequests' bodies are what their locations answer, whatever their status (an
error page included, as nginx inserts it), through their own body filters and not the
main response's; each is asked for when it is due — the one before at the first byte
of the body, the one after at its end — as nginx issues them. A subrequest that fails
midway (or whose answer passes 8 MiB: it is kept in memory, where nginx streams it)
ends the response unfinished — the client sees a cut connection, never a page with a
part missing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.proxy.capture import KEPT_MAX, Capture, Fetch, SubrequestFailed, SubrequestRefused
from fastgate.proxy.headers import changed_body_head, html_or_of, kind_of

if TYPE_CHECKING:
    from fastgate.config.model import Settings
    from fastgate.http.engine import Headers
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request

class Addition:
    """One response's additions: ``before`` at the first byte of its body, ``after``
    at its end; each gives the bytes to send then."""

    def __init__(self, fetch: Fetch, conn: ClientSide, req: Request, s: Settings) -> None:
        self._fetch = fetch
        self._conn = conn
        self._req = req
        self._before = s.add_before_body
        self._after = s.add_after_body
        self._began = False

    async def before(self) -> bytes:
        if self._began:
            return b""
        self._began = True
        return await self._body(self._before)

    async def after(self) -> bytes:
        return await self._body(self._after)

    async def _body(self, uri: str) -> bytes:
        if not uri:
            return b""
        try:
            kept = await self._fetch(self._conn, self._req, uri)
        except SubrequestRefused as e:
            raise SubrequestFailed(str(e)) from None
        if kept.cut:
            raise SubrequestFailed(f'the answer to "{uri}" could not be had whole (at most '
                                 f"{KEPT_MAX} bytes)")
        return bytes(kept.out)


def start(req: Request, s: Settings, headers: Headers, length: int, status: int,
          head_only: bool, conn: ClientSide, fetch: Fetch
          ) -> tuple[Addition | None, Headers, int]:
    """The additions for a response with ``headers`` and ``length`` (-1: unknown), and
    the headers and length the client gets; none, and the same ones, where they do not
    apply (a subrequest's own answer never gets any)."""
    if (status != 200 or not (s.add_before_body or s.add_after_body)
            or isinstance(conn, Capture)):
        return None, headers, length
    if not html_or_of(kind_of(headers), s.addition_types):
        return None, headers, length
    out = changed_body_head(headers, (b"content-length", b"accept-ranges"), True)
    return (None if head_only else Addition(fetch, conn, req, s)), out, -1


__all__ = ["Addition", "start"]
