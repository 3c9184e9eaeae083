"""Subrequests (nginx's ``ngx_http_subrequest``) for auth_request and mirror: a request
made by the gateway for a URI, with the client's headers, that reaches a location which
proxies (its proxy_* settings, pool and timeouts apply) or answers with ``return``; its
response is read and dropped, its status and headers kept for the caller. Its access
phase does not run (nginx skips it for subrequests)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from fastgate.config.model import Return
from fastgate.errors import UpstreamError
from fastgate.proxy.failure import Recovery, stale
from fastgate.proxy.request import Request
from fastgate.proxy.upstream import (
    LOCAL,
    NEXT_CONDITION,
    Peer,
    UpstreamConnection,
    local_address,
)

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.engine import ResponseHead
    from fastgate.http.server import ClientConnection
    from fastgate.proxy.exchange import UpstreamExchange
    from fastgate.proxy.runtime import Runtime


class Subrequests:
    def __init__(self, worker: Runtime, upstream: UpstreamExchange) -> None:
        self.w = worker
        self.upstream = upstream

    @staticmethod
    def make(conn: ClientConnection, req: Request, uri: str) -> tuple[Request, Location]:
        """The subrequest for ``uri`` (or ``@name``) and the location it reaches (which
        the loader has checked exists and proxies or returns)."""
        server = req.server
        assert server is not None
        target = server.location_for(uri)
        assert target is not None
        path, _, args = uri.partition("?")
        sub = Request(req.head, (path, args, None), conn)
        sub.server = server
        sub.location = target
        sub.in_task = True
        sub.uri_changes = 1  # an internal request: internal locations take it
        sub.method = req.method  # $request_method is the main request's, as nginx
        return sub, target

    async def run(self, conn: ClientConnection, req: Request, sub: Request, target: Location,
                  method: bytes, body: bytes, what: str) -> int:
        """The subrequest's status: the location's ``return`` code, or its upstream's
        answer — 502/504 when none came (logged, tagged with ``what``)."""
        first = target.rewrites[0] if target.rewrites else None
        if target.proxy_pass is None and isinstance(first, Return):
            return first.code
        return await self._proxy(conn, req, sub, target, method, body, what)

    async def _proxy(self, conn: ClientConnection, req: Request, sub: Request,
                     target: Location, method: bytes, body: bytes, what: str) -> int:
        """The subrequest to ``target``'s upstream: its response status, or 502/504
        when none came (logged as the main proxy logs them)."""
        w = self.w
        s = target.settings
        pp = target.proxy_pass
        assert pp is not None
        if pp.template is not None:
            resolved = await self.upstream.dynamic.resolve(conn, sub, target)
            if isinstance(resolved, int):
                return resolved
            pp = resolved
        group = w.groups[pp.pool]
        headers, path, _, _ = self.upstream.upstream_request(conn, sub, target, pp)
        tries = s.proxy_next_upstream_tries or len(group.peers)
        tried: set[Peer] = set()
        local = local_address(s.proxy_bind, sub, w.log, conn)
        while True:
            peer = group.pick(time.monotonic(), tried, sub)
            if peer is None:
                w.log.error(f'no live upstreams while connecting to upstream "{pp.upstream}"'
                            f" ({what})", conn, req)
                w.stats.upstream_error("no_live")
                return 502
            tried.add(peer)
            sub.upstream_addr = peer.server.address
            uconn: UpstreamConnection | None = None
            reused = False
            try:
                uconn, reused = await peer.connect(s.proxy_connect_timeout, local)
                head = await self._exchange(uconn, method, path, headers, body,
                                            s.proxy_read_timeout)
            except UpstreamError as e:
                if e.kind == LOCAL:  # our side failed: the server is not blamed (nginx)
                    w.log.error(f"{e} ({what})", conn, req)
                    return e.status
                if uconn is not None:
                    uconn.abort()
                received = uconn.received if uconn is not None else 0
                # without a body it may go to the next server whenever the configuration
                # lists the condition; with one, only if it never went
                may_next = (len(tried) < tries
                            and NEXT_CONDITION[e.kind] in s.proxy_next_upstream
                            and (not body or uconn is None))
                action = self.upstream.after_failure(
                    conn, sub, peer, e.kind, f"{e} ({what})", False,
                    stale(e.kind, reused, bool(body), received), may_next)
                if action is Recovery.AGAIN:
                    # a pooled connection the upstream had closed: once more, as nginx
                    # gives a cached connection
                    tries += 1
                    if len(group.peers) == 1:
                        tried.discard(peer)
                    continue
                if action is Recovery.NEXT:
                    continue
                return e.status
            peer.succeeded()
            sub.upstream_status = str(head.status)
            sub.upstream_headers = head.headers
            return head.status

    @staticmethod
    async def _exchange(uconn: UpstreamConnection, method: bytes, path: bytes,
                        headers: list[tuple[bytes, bytes]], body: bytes,
                        timeout: float) -> ResponseHead:
        """``method`` ``path`` (with ``body``) on ``uconn``; the response head, its body
        read and dropped (the connection back in its pool when it can carry another
        request)."""
        head_future = uconn.begin()
        engine = uconn.engine
        uconn.write(engine.send_head(method, path, headers, len(body))
                    + (engine.send_body(body) if body else b"") + engine.send_end())
        try:
            head = await asyncio.wait_for(head_future, timeout)
            if head.status == 101:  # switched away from HTTP: nothing to read or reuse
                uconn.abort()
                return head
            answer = uconn.body
            while answer is not None and await answer.read(timeout) is not None:
                pass
        except TimeoutError:
            raise UpstreamError("timeout", "upstream timed out (110: Connection timed out) "
                                "while reading upstream") from None
        uconn.peer.release(uconn, head)
        return head
