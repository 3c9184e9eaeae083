"""The content phase: the status pages and empty_gif, ``proxy_pass`` (in callbacks over
a pooled idle connection when it can, else in a task), ``fastcgi_pass``, ``uwsgi_pass``,
``scgi_pass``, ``memcached_pass`` and ``grpc_pass`` (in a task), ``flv``, else files
(``try_files``, random_index, index, autoindex, WebDAV's methods: ``proxy.dav``, static:
``proxy.static``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.proxy import image_filter, output, xslt
from fastgate.proxy.cgi import CgiModule
from fastgate.proxy.dav import DavModule
from fastgate.proxy.fast import ProxyPass
from fastgate.proxy.grpc import GrpcModule
from fastgate.proxy.held import HeldFilters
from fastgate.proxy.memcached import MemcachedModule
from fastgate.proxy.static import StaticModule

# ngx_http_empty_gif_module's image: a 1x1 transparent GIF, 43 bytes
EMPTY_GIF = bytes.fromhex(
    "474946383961" "0100" "0100" "800100"  # GIF89a, 1x1, a 2-colour table
    "000000" "ffffff"  # black, white
    "21f90401" "0000" "0100"  # transparency: colour #1
    "2c" "00000000" "01000100" "00"  # the image: 1x1 at 0,0
    "02" "02" "4c01" "00"  # its LZW data
    "3b")

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastgate.config.model import Location, Settings
    from fastgate.http.engine import Headers
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.exchange import UpstreamExchange
    from fastgate.proxy.request import Request
    from fastgate.proxy.respond import Responder
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.steps import Fail, Outcome, Phase

    # an internal redirect to a URI or a named location: (conn, req, loc, target)
    Redirect = Callable[[ClientSide, Request, Location, str], Outcome]


class Content:
    """The content handlers; ``handler(loc)`` names the one a location runs."""

    def __init__(self, worker: Runtime, respond: Responder, upstream: UpstreamExchange,
                 fail: Fail, internal: Redirect) -> None:
        self.w = worker
        self.respond = respond
        self.upstream = upstream
        self.fail = fail
        # proxy_pass: in callbacks when it can, else on the task path (compiled)
        self.proxy = ProxyPass(upstream, worker.groups)
        # fastcgi_pass, uwsgi_pass, scgi_pass; memcached_pass
        self.cgi = CgiModule(worker, respond, upstream, fail)
        self.memcached = MemcachedModule(worker, respond, upstream, fail)
        self.grpc = GrpcModule(worker, respond, upstream, fail)
        self.dav = DavModule(worker, respond, upstream, fail)
        self.static = StaticModule(worker, respond, fail, internal, self.dav.handle,
                                   upstream.fetch)
        self.held = HeldFilters(fail, respond.client_error, (image_filter, xslt),
                                self._after_transform)

    async def _after_transform(self, conn: ClientSide, req: Request, s: Settings,
                               status: int, headers: Headers, body: bytes, head_only: bool
                               ) -> tuple[Headers, bytes, int]:
        return await output.after_transform(req, s, headers, body, status, head_only, conn,
                                            self.upstream.fetch, self.w.config.variables,
                                            self.respond.client_error(req))

    def handler(self, loc: Location) -> Phase:
        inner = self._handler(loc)
        # (a response of a location with the image filter or stylesheets is held whole
        # and transformed; one reached by an internal redirect from such a location is
        # held there)
        s = loc.settings
        held = s.xslt_stylesheet or (s.image_filter is not None and s.image_filter.mode != "off")
        return self.held.wrap(inner) if held else inner

    def _handler(self, loc: Location) -> Phase:
        if loc.own_content == "flv":
            return self.static.flv
        if loc.own_content == "mp4":
            return self.static.mp4
        if loc.own_content:
            return self.status_page
        if loc.proxy_pass is not None:
            return self.proxy
        if loc.app_pass is not None:
            kind = loc.app_pass.kind
            return (self.memcached if kind == "memcached" else self.grpc if kind == "grpc"
                    else self.cgi)
        if loc.try_files is not None:  # (its precontent phase found the file)
            return self.static.serve_tried
        return self.static.serve

    def status_page(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        if loc.own_content == "empty_gif":
            if req.method not in ("GET", "HEAD"):
                return self.fail(conn, req, loc, 405)
            # nginx's module: its 1x1 transparent GIF, "last modified" at its date
            return self.respond.page(conn, req, loc, 200, EMPTY_GIF, b"image/gif",
                                     [(b"Last-Modified", b"Mon, 28 Sep 1970 06:00:00 GMT")],
                                     self.upstream.fetch, self.fail)
        if loc.own_content == "stub":
            if req.method not in ("GET", "HEAD"):
                return self.fail(conn, req, loc, 405)
            return self.respond.page(conn, req, loc, 200, self.w.stub_status(), b"text/plain",
                                     [], self.upstream.fetch, self.fail)
        return self.respond.page(conn, req, loc, 200, self.w.status_page(),
                                 b"text/plain; version=0.0.4", [], self.upstream.fetch,
                                 self.fail)
