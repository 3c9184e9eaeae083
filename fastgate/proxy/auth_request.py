"""The auth_request module: before the request goes on, a subrequest asks the location
``auth_request`` names (usually ``internal``, proxying to an authoriser) and its status
decides, as nginx's ``ngx_http_auth_request_module``: 2xx lets the request go on, 401
and 403 refuse it with that status (a 401 with the authoriser's ``WWW-Authenticate``),
anything else — an error, no answer — is a 500. ``auth_request_set`` variables are set
from the subrequest (``$upstream_http_*`` of the authoriser's answer) whatever it said.

The subrequest is nginx's: a GET for the auth URI, with the client's headers (the body
never goes: it is the main request's), ``$request_uri`` and ``$request_method`` of the
main request, its own ``$uri``; its access phase does not run (nginx skips it for
subrequests) and its response body is read and dropped. The location it reaches
proxies (its proxy_* settings, pool, timeouts) or answers with ``return`` (checked at
load).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from fastgate.config.model import Return
from fastgate.errors import UpstreamError
from fastgate.proxy.failure import Recovery, stale
from fastgate.proxy.request import Request
from fastgate.proxy.upstream import NEXT_CONDITION, Peer, UpstreamConnection
from fastgate.variables import set_user_variable

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.engine import ResponseHead
    from fastgate.http.server import ClientConnection
    from fastgate.proxy.exchange import UpstreamExchange
    from fastgate.proxy.runtime import Runtime


class AuthRequest:
    def __init__(self, worker: Runtime, upstream: UpstreamExchange) -> None:
        self.w = worker
        self.upstream = upstream

    async def ask(self, conn: ClientConnection, req: Request, loc: Location) -> int:
        """The authoriser's status for ``req``, its auth_request_set variables set."""
        uri = loc.settings.auth_request
        server = req.server
        assert uri is not None and server is not None
        target = server.location_for(uri)
        assert target is not None  # checked at load
        path, _, args = uri.partition("?")
        sub = Request(req.head, (path, args, None), conn)
        sub.server = server
        sub.location = target
        sub.in_task = True
        sub.uri_changes = 1  # an internal request: internal locations take it
        sub.method = req.method  # $request_method is the main request's, as nginx
        first = target.rewrites[0] if target.rewrites else None
        if target.proxy_pass is None and isinstance(first, Return):
            status = first.code
        else:
            status = await self._proxy(conn, req, sub, target)
        for name, value in loc.settings.auth_request_set:
            set_user_variable(req, name, value.render(sub))
        if status == 401:
            challenges = [v for n, v in sub.upstream_headers or ()
                          if n.lower() == b"www-authenticate"]
            req.challenge = b", ".join(challenges) if challenges else None
        return status

    async def _proxy(self, conn: ClientConnection, req: Request, sub: Request,
                     target: Location) -> int:
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
        while True:
            peer = group.pick(time.monotonic(), tried)
            if peer is None:
                w.log.error(f'no live upstreams while connecting to upstream "{pp.upstream}"'
                            " (auth request)", conn, req)
                w.stats.upstream_error("no_live")
                return 502
            tried.add(peer)
            sub.upstream_addr = peer.server.address
            uconn: UpstreamConnection | None = None
            reused = False
            try:
                uconn, reused = await peer.connect(s.proxy_connect_timeout)
                head = await self._exchange(uconn, path, headers, s.proxy_read_timeout)
            except UpstreamError as e:
                if uconn is not None:
                    uconn.abort()
                received = uconn.received if uconn is not None else 0
                # a GET without a body: it may go to the next server whenever the
                # configuration lists the condition
                may_next = (len(tried) < tries
                            and NEXT_CONDITION[e.kind] in s.proxy_next_upstream)
                action = self.upstream.after_failure(
                    conn, sub, peer, e.kind, f"{e} (auth request)", False,
                    stale(e.kind, reused, False, received), may_next)
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
    async def _exchange(uconn: UpstreamConnection, path: bytes,
                        headers: list[tuple[bytes, bytes]], timeout: float) -> ResponseHead:
        """GET ``path`` on ``uconn``; the response head, its body read and dropped (the
        connection back in its pool when it can carry another request)."""
        head_future = uconn.begin()
        engine = uconn.engine
        uconn.write(engine.send_head(b"GET", path, headers, 0) + engine.send_end())
        try:
            head = await asyncio.wait_for(head_future, timeout)
            if head.status == 101:  # switched away from HTTP: nothing to read or reuse
                uconn.abort()
                return head
            body = uconn.body
            while body is not None and await body.read(timeout) is not None:
                pass
        except TimeoutError:
            raise UpstreamError("timeout", "upstream timed out (110: Connection timed out) "
                                "while reading upstream") from None
        uconn.peer.release(uconn, head)
        return head
