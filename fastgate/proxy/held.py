"""Responses held whole for the filters that need all of one before they can say its
head: the image filter (``proxy.image_filter``) and XSLT (``proxy.xslt``), in nginx's
order. nginx's filters hold the head back and read the body; here the location's
content handler answers on a ``Held`` connection (a ``proxy.capture.Kept`` that passes
the client's body through), so files, proxied and FastCGI-family answers and
fastgate's own pages are all held the same way, after the access phase has run. The
filters see what nginx's see: the response of the location that answered (after
internal redirects), its status, headers and body; what they make is then sent. A
filter's failure is answered with its status (415, 500) through ``error_page``.

A HEAD is answered with the head of the transformed GET, as nginx's (it reads the body
to know the length) — but a proxied upstream is asked with HEAD, as nginx asks it, and
its empty body fails the filter as nginx's does. A response past ``capture.KEPT_MAX``
(8 MiB) is not held: the image filter's "too big response" (415), else a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from fastgate.errors import FastgateError
from fastgate.http.engine import ProtocolError
from fastgate.proxy.capture import KEPT_MAX, Kept
from fastgate.proxy.page import may_chunk
from fastgate.proxy.status import reason
from fastgate.proxy.steps import DONE, finished
from fastgate.variables import HELD_HEAD_KEY

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastgate.config.model import Location, Settings
    from fastgate.http.engine import Headers
    from fastgate.http.flow import BodyBuffer
    from fastgate.http.handler import ClientSide, RequestPolicy
    from fastgate.proxy.request import Request
    from fastgate.proxy.steps import Fail, Outcome, Phase, Step


class Held(Kept):
    """The connection a main request answers on while its response is held whole: the
    client's body comes through, and its end; what is written is kept. (Not a
    subrequest's ``Capture``: conditionals, ranges, additions apply as to the client's.)"""

    @property
    def body(self) -> BodyBuffer | None:
        return self.main.body

    def close_after_response(self) -> None:
        self.main.close_after_response()

    @property
    def policy(self) -> RequestPolicy | None:
        return self.main.policy

    def located(self, policy: RequestPolicy, again: bool = False) -> None:
        self.main.located(policy, again)

    def promise(self, paths: tuple[bytes, ...], preload: bool,
                warn: Callable[[bytes], None]) -> None:
        self.main.promise(paths, preload, warn)


class Failed(FastgateError):
    """A filter could not make the response (logged): ``status`` answers instead."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class AfterTransform(Protocol):
    """The filters a transformed response goes through after (``output.after_transform``
    with the worker's subrequests and variables): its headers, body and length (-1:
    unknown)."""

    async def __call__(self, conn: ClientSide, req: Request, s: Settings, status: int,
                       headers: Headers, body: bytes, head_only: bool
                       ) -> tuple[Headers, bytes, int]: ...


class HoldingFilter(Protocol):
    """A filter that needs the whole response (``proxy.image_filter``, ``proxy.xslt``)."""

    def applies(self, s: Settings, status: int, headers: Headers) -> bool: ...

    def too_big(self, log: Callable[[str], None]) -> None:
        """A response too large to hold: raise the filter's Failed, if it has one."""

    async def transform(self, req: Request, s: Settings, status: int, headers: Headers,
                        body: bytes, log: Callable[[str], None]
                        ) -> tuple[int, Headers, bytes]: ...


class HeldFilters:
    """Holds the responses of locations with the image filter or stylesheets."""

    def __init__(self, fail: Fail, client_error: Callable[[Request], Callable[[str], None]],
                 filters: tuple[HoldingFilter, ...], after: AfterTransform) -> None:
        self.fail = fail
        self.client_error = client_error
        self.filters = filters  # in nginx's order: the image filter, then XSLT
        self.after = after  # the filters nginx runs after them (proxy.output)

    def wrap(self, inner: Phase) -> Phase:
        """``inner`` (a location's content handler) with its response held."""

        def run(conn: ClientSide, req: Request, loc: Location) -> Outcome:
            if isinstance(conn, Held):  # (an internal redirect while held: held once)
                return inner(conn, req, loc)
            return self._held(conn, req, loc, inner)

        return run

    async def _held(self, conn: ClientSide, req: Request, loc: Location,
                    inner: Phase) -> Step:
        held = Held(conn)
        method = req.method
        if method == "HEAD":
            # nginx's filter holds the head back, so a file or a return makes its body
            # (which tells the length); an upstream is still asked with HEAD, its empty
            # body then failing the filter (500 for XSLT, 415 for an image), as nginx's
            req.method = "GET"
            req.memo[HELD_HEAD_KEY] = True
        try:
            await finished(inner(held, req, loc))
        finally:
            req.method = method
            req.memo.pop(HELD_HEAD_KEY, None)
        if conn.closed:
            return DONE
        log = self.client_error(req)
        final = req.location if req.location is not None else loc
        s = final.settings
        status, headers, body = held.status, held.headers, bytes(held.out)
        try:
            if held.cut:
                for f in self.filters:
                    if f.applies(s, status, headers):
                        f.too_big(log)
                log(f"a response of more than {KEPT_MAX} bytes cannot be held")
                raise Failed(500)
            transformed = False
            for f in self.filters:
                if f.applies(s, status, headers):
                    status, headers, body = await f.transform(req, s, status, headers, body,
                                                              log)
                    transformed = True
        except Failed as e:
            req.status = 0
            return await finished(self.fail(conn, req, final, e.status))
        head_only = method == "HEAD" or status in (204, 304) or status < 200
        length: int | None = len(body)
        if transformed:
            # (what was not transformed went through them where it was sent)
            headers, body, known = await self.after(conn, req, s, status, headers, body,
                                                    head_only)
            length = len(body) if known >= 0 else None
        exchange = conn.exchange
        assert exchange is not None
        if conn.closed:
            return DONE
        try:
            out = exchange.respond(status, reason(status), headers, length, head_only,
                                   may_chunk(req, s))
        except ProtocolError:
            exchange.abort()
            return DONE
        head = len(out)
        if not head_only:
            out += exchange.body(body)
        out += exchange.end()
        req.sent_headers = headers
        req.status = status
        exchange.write(out)
        req.bytes_sent, req.body_bytes_sent = head, 0
        req.sent_body(len(out) - head, 0 if head_only else len(body))
        return DONE


__all__ = ["AfterTransform", "Failed", "Held", "HeldFilters"]
