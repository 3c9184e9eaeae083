"""Subrequests (nginx's ``ngx_http_subrequest``) for auth_request and mirror: a request
made by the gateway for a URI, with the client's headers, that reaches a location which
proxies (its proxy_* settings, pool and timeouts apply) or answers with ``return``; its
response is read and dropped, its status and headers kept for the caller. Its access
phase does not run (nginx skips it for subrequests)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from fastgate._wire import ConnectionInfo, RequestHead
from fastgate.config.model import Return
from fastgate.errors import UpstreamError
from fastgate.http.buffered_body import BufferedBody, KeptBodyError
from fastgate.http.flow import StreamClosed
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
    from fastgate.config.model import Location, Server
    from fastgate.http.engine import ResponseHead
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.exchange import UpstreamExchange
    from fastgate.proxy.runtime import Runtime


KEPT_MAX = 1 << 20  # a body a worker-made request keeps (a key set)


class WorkerMade:
    """The connection of a request the worker makes itself (a key fetch): what a
    request and the log read of one, and no client to answer."""

    remote_addr = ""
    remote_port = 0
    requests = 0
    pipelined = False
    closed = False

    def __init__(self, connection_id: int) -> None:
        self.connection_id = connection_id
        self.info = ConnectionInfo("http", "", 0, "", 0, connection_id)


class Subrequests:
    def __init__(self, worker: Runtime, upstream: UpstreamExchange) -> None:
        self.w = worker
        self.upstream = upstream

    @staticmethod
    def make(conn: ClientSide, req: Request, uri: str) -> tuple[Request, Location]:
        """The subrequest for ``uri`` (or ``@name``, with the request's own URI) and the
        location it reaches (which the loader has checked exists and proxies or
        returns)."""
        server = req.server
        assert server is not None
        target = server.location_for(uri)
        assert target is not None
        if uri.startswith("@"):
            # a named location keeps the request's URI, as nginx's named redirect does
            path, args = req.uri, req.args
        else:
            path, _, args = uri.partition("?")
        sub = Request(req.head, (path, args, None), conn)
        sub.share_variables(req)
        sub.server = server
        sub.location = target
        sub.in_task = True
        sub.uri_changes = 1  # an internal request: internal locations take it
        sub.uri_remade = True
        sub.method = req.method  # $request_method is the main request's, as nginx
        return sub, target

    async def fetch(self, server: Server, uri: str) -> tuple[int, dict[str, str], bytes]:
        """A GET for ``uri`` that the worker makes itself (NGINX Plus's
        ``auth_jwt_key_request`` to a local URI): through the location it reaches, as a
        subrequest goes; its status, headers (lower-case names) and body (at most 1 MiB:
        more is a 502)."""
        conn = WorkerMade(self.w.next_connection_id())
        host = (server.name or "localhost").encode("latin-1", "replace")
        head = RequestHead(b"GET", uri.encode("latin-1", "replace"), b"1.1",
                           [(b"Host", host), (b"Accept", b"application/json")], 0, True,
                           False, None)
        path, _, args = uri.partition("?")
        main = Request(head, (path, args, None), conn)
        main.server = server
        sub, target = self.make(conn, main, uri)  # type: ignore[arg-type]
        first = target.rewrites[0] if target.rewrites else None
        if target.proxy_pass is None and isinstance(first, Return):
            text = first.text.render(sub) if first.text is not None else ""
            return first.code, {}, text.encode("utf-8", "surrogateescape")
        kept = bytearray()
        status = await self._proxy(conn, main, sub, target, b"GET", b"",  # type: ignore[arg-type]
                                   f'while fetching keys from "{uri}"', kept)
        headers = {n.decode("latin-1").lower(): v.decode("latin-1")
                   for n, v in sub.upstream_headers or ()}
        return status, headers, bytes(kept)

    async def run(self, conn: ClientSide, req: Request, sub: Request, target: Location,
                  method: bytes, body: bytes | BufferedBody, what: str) -> int:
        """The subrequest's status: the location's ``return`` code, or its upstream's
        answer — 502/504 when none came (logged, tagged with ``what``)."""
        first = target.rewrites[0] if target.rewrites else None
        if target.proxy_pass is None and isinstance(first, Return):
            return first.code
        return await self._proxy(conn, req, sub, target, method, body, what)

    async def _proxy(self, conn: ClientSide, req: Request, sub: Request,
                     target: Location, method: bytes, body: bytes | BufferedBody, what: str,
                     kept: bytearray | None = None) -> int:
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
                uconn, reused = await peer.connect(s.proxy_connect_timeout, local,
                                                   s.proxy_socket_keepalive)
                uconn.limit_head(s.proxy_buffer_size)
                head = await self._exchange(uconn, method, path, headers, body,
                                            s.proxy_read_timeout, kept)
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
                    stale(e.kind, reused, bool(body), received), may_next, e.level)
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
                        headers: list[tuple[bytes, bytes]], body: bytes | BufferedBody,
                        timeout: float, kept: bytearray | None = None) -> ResponseHead:
        """``method`` ``path`` (with ``body``: from its file, as the upstream takes it)
        on ``uconn``; the response head, its body read and dropped — or into ``kept``,
        up to 1 MiB — (the connection back in its pool when it can carry another
        request)."""
        head_future = uconn.begin()
        try:
            if isinstance(body, bytes):
                uconn.send_request(method, path, headers, len(body), body)
            else:
                uconn.send_head(method, path, headers, body.size)
                try:
                    await uconn.send_kept_body(body, timeout)
                except KeptBodyError as e:  # our side: the server is not blamed
                    raise UpstreamError(LOCAL, str(e)) from None
            head = await asyncio.wait_for(head_future, timeout)
            if head.status == 101:  # switched away from HTTP: nothing to read or reuse
                uconn.abort()
                return head
            answer = uconn.body
            while answer is not None:
                chunk = await answer.read(timeout)
                if chunk is None:
                    break
                if kept is not None:
                    kept += chunk
                    if len(kept) > KEPT_MAX:
                        uconn.abort()
                        raise UpstreamError("invalid", "upstream sent more than 1 MiB of "
                                            "keys")
        except TimeoutError:
            raise UpstreamError("timeout", "upstream timed out (110: Connection timed out) "
                                "while reading upstream") from None
        except StreamClosed:  # (sending the body: the upstream went)
            raise UpstreamError("reset", "upstream closed the connection") from None
        uconn.peer.release(uconn, head)
        return head
