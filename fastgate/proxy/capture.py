"""A subrequest whose response is kept, not sent (nginx's ngx_http_subrequest with its
output in memory): the connection it answers on is a ``Capture`` (a ``Kept``
connection, as the XSLT filter's ``Held``), whose exchange records the status and
headers and keeps the body the location's content handler writes — a file, a proxied
or FastCGI-family answer, a page of fastgate's own, each
through that location's own body filters. Used by ``add_before_body`` and
``add_after_body`` (``proxy.addition``) and SSI's ``include`` (``proxy.ssi``).

The subrequest is a GET of the main request's headers, without a body and without
arguments unless the URI has some; it is internal (``internal`` locations take it). It
skips the preaccess phase (limits count the main request) but, unlike nginx's, runs
the access phase of the location it reaches: a location that checks a token refuses a
subrequest without one, as it refuses any request. It never takes the callback path;
it stops when the client goes away. Subrequests nest at most 51 deep (nginx's
NGX_HTTP_MAX_SUBREQUESTS + 1): deeper, one is refused."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from fastgate._wire import RequestHead
from fastgate.errors import FastgateError, OutputFailed
from fastgate.http.exchange import Exchange
from fastgate.proxy.request import Request
from fastgate.variables import SUBREQUEST_KEY

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fastgate._wire import ConnectionInfo
    from fastgate.http.engine import Headers
    from fastgate.http.flow import BodyBuffer
    from fastgate.http.handler import ClientSide, RequestPolicy


class SubrequestFailed(OutputFailed):
    """A subrequest's answer could not be had whole: the response it belongs in cannot
    be completed (nginx ends it too)."""


class SubrequestRefused(FastgateError):
    """A subrequest nested deeper than nginx allows, not made."""


# how deep subrequests nest: nginx gives a request NGX_HTTP_MAX_SUBREQUESTS (50) + 1
MAX_DEPTH = 51
# a subrequest's memo: the main request, and how deep it is
_MAIN = SUBREQUEST_KEY
_DEPTH = ("depth",)
# nginx's subrequest_output_buffer_size default (a page): the most of an answer kept
# for a variable (SSI's include set=)
OUTPUT_MAX = 4096


class _Engine:
    """The framing a kept answer's exchange asks for: heads recorded, bodies as they
    are."""

    def __init__(self, kept: Kept) -> None:
        self._kept = kept

    def send_head(self, status: int, reason: bytes, headers: Headers, length: Any,
                  head_only: bool, chunked: bool = True) -> bytes:
        self._kept.status = status
        self._kept.headers = list(headers)
        return b""

    def send_body(self, data: bytes) -> bytes:
        return bytes(data)

    def send_end(self, trailers: Any = None) -> bytes:
        return b""

    def send_continue(self) -> bytes:
        return b""


# the most of a kept body: past it the answer is cut (it is in memory, where nginx would
# stream it: a bound, not a buffer)
KEPT_MAX = 8 << 20


class _Transport:
    def __init__(self, kept: Kept) -> None:
        self._kept = kept

    def write(self, data: bytes) -> None:
        kept = self._kept
        if len(kept.out) + len(data) > KEPT_MAX:
            kept.cut = True
            return
        kept.out += data


class _Gate:
    """A kept answer always takes what is written."""

    paused = False

    async def wait(self, timeout: float) -> None:
        return None


class Kept:
    """A connection (a ``ClientSide``) whose answer is kept, not sent: what it knows
    comes from the connection it stands for; what is written is recorded."""

    def __init__(self, main: ClientSide) -> None:
        self.main = main
        self.status = 0
        self.headers: Headers = []
        self.out = bytearray()  # the body written
        self.cut = False  # the response could not be completed
        self.exchange = Exchange(self, _Engine(self), _Transport(self), _Gate())

    # what the connection knows: the main connection's
    @property
    def info(self) -> ConnectionInfo | None:
        return self.main.info

    @property
    def remote_addr(self) -> str:
        return self.main.remote_addr

    @property
    def connection_id(self) -> int:
        return self.main.connection_id

    @property
    def requests(self) -> int:
        return self.main.requests

    @property
    def pipelined(self) -> bool:
        return self.main.pipelined

    @property
    def closed(self) -> bool:
        return self.cut or self.main.closed

    @property
    def body(self) -> BodyBuffer | None:
        return None

    def lost(self) -> asyncio.Future[None]:
        return self.main.lost()

    def abort(self, reset: bool = False) -> None:
        self.cut = True

    def close_after_response(self) -> None:
        pass

    @property
    def policy(self) -> RequestPolicy | None:
        return None  # (a subrequest changes nothing of its connection: nginx's r->main's)

    def located(self, policy: RequestPolicy, again: bool = False) -> None:
        pass

    def promise(self, paths: tuple[bytes, ...], preload: bool,
                warn: Callable[[bytes], None]) -> None:
        pass  # (a subrequest's answer is not sent as one: nginx pushes for r->main only)

    def request_done(self) -> None:
        pass

    def finish(self) -> None:
        pass

    def retire(self) -> None:
        pass


class Capture(Kept):
    """The connection a subrequest answers on: no body of its own; its answer kept."""

    def __init__(self, main: ClientSide) -> None:
        super().__init__(main)
        # the answer is a page of fastgate's own for an error or a redirect (nginx's
        # special response: SSI's stub replaces it)
        self.page = False
        # subrequest_output_buffer_size where it answered
        self.output_max = OUTPUT_MAX
        self.request: Request | None = None  # the subrequest, once made


def main_request(req: Request) -> Request:
    """The request a subrequest was made for (nginx's r->main); a request's own."""
    main: Request = req.memo.get(_MAIN, req)
    return main


class Fetch(Protocol):
    """A subrequest's answer (``proxy.phases.Phases.capture``): for ``uri`` made from
    ``req`` on its connection ``conn``, with ``memo`` in the subrequest's memo."""

    def __call__(self, conn: ClientSide, req: Request, uri: str,
                 memo: dict[object, object] | None = None) -> Awaitable[Capture]: ...


def subrequest(main: Request, capture: Capture, uri: str,
               memo: dict[object, object] | None = None) -> Request:
    """The subrequest for ``uri`` (arguments after a "?"), answering on ``capture``,
    with ``memo`` (what it is made for: a slice's state) in its memo;
    ``SubrequestRefused`` when ``main`` is one nested as deep as nginx allows."""
    depth = main.memo.get(_DEPTH, 0) + 1
    if depth > MAX_DEPTH:
        raise SubrequestRefused(f'subrequests cycle while processing "{uri}"')
    path, _, args = uri.partition("?")
    head = main.head
    # (its target is the main request's: $request_uri is, as nginx copies unparsed_uri;
    # its own URI is ``path``)
    sub_head = RequestHead(b"GET", head.target, head.version, head.headers, 0,
                           head.keep_alive, False, None)
    sub = Request(sub_head, (path, args, None), capture)
    sub.share_variables(main)
    sub.server = main.server
    sub.remote_addr, sub.remote_port = main.remote_addr, main.remote_port  # (realip's)
    sub.method = "GET"
    sub.in_task = True  # never the callback path: it writes to no client
    sub.uri_changes = 1  # an internal request: internal locations take it
    sub.uri_remade = True
    sub.token = main.token
    kept = sub.memo
    if memo:
        kept.update(memo)
    kept[_MAIN] = main_request(main)
    kept[_DEPTH] = depth
    return sub


__all__ = ["KEPT_MAX", "MAX_DEPTH", "OUTPUT_MAX", "Capture", "Fetch", "Kept",
           "SubrequestFailed", "SubrequestRefused", "main_request", "subrequest"]
