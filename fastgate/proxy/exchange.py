"""The content phase's ``proxy_pass`` on the task path: the request to the upstream
group, a server after another as ``proxy_next_upstream`` allows, with the client's body
read whole first (``proxy_request_buffering on``, nginx's default) or streamed up as it
comes (``off``), and the response streamed back, or a tunnel after a ``101``. The
callback path (``proxy.fast``) hands anything unusual to this one.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fastgate.config.values import is_token
from fastgate.errors import FastgateError, OutputFailed, UpstreamError
from fastgate.http.buffered_body import BufferedBody, KeptBodyError
from fastgate.http.engine import Headers, ProtocolError, ResponseHead
from fastgate.http.flow import StreamClosed
from fastgate.http.uri import encode_args, encode_path
from fastgate.proxy import accel, charset, output, rate, slices, store
from fastgate.proxy._headers import response_head, upstream_request_head
from fastgate.proxy.dynamic import DynamicTargets, safe_target
from fastgate.proxy.failure import (
    DISABLED,
    DISABLED_READING,
    TIMED_OUT,
    Recovery,
    intercepts,
    recovery,
    stale,
)
from fastgate.proxy.headers import (
    RedirectRules,
    redirect_rules,
    request_drop,
    response_drop,
    set_plan,
    switching_headers,
)
from fastgate.proxy.memo import IdentityMemo
from fastgate.proxy.respond import final_status
from fastgate.proxy.rewrite import STAYED
from fastgate.proxy.steps import DONE, Step, finished
from fastgate.proxy.upstream import (
    CLIENT_GONE,
    LOCAL,
    NEXT_CONDITION,
    NEXT_STATUSES,
    Peer,
    UpstreamConnection,
    local_address,
)
from fastgate.variables import HELD_HEAD_KEY, RATE_KEY, SLICE_KEY, SUBREQUEST_KEY

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastgate.config.model import Location, ProxyPass, Settings
    from fastgate.http.exchange import Exchange
    from fastgate.http.flow import BodyBuffer
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.accel import Redirect
    from fastgate.proxy.capture import Fetch
    from fastgate.proxy.output import Output
    from fastgate.proxy.rate import Pace
    from fastgate.proxy.request import Request
    from fastgate.proxy.respond import Responder
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.slices import Sliced
    from fastgate.proxy.steps import Fail, Outcome
    from fastgate.proxy.store import Store

# what an exchange ends with: done (answered or failed), or go again — a pooled
# connection that was stale, or the next server (proxy_next_upstream)
_DONE, _STALE, _NEXT = object(), object(), object()


def request_target(req: Request) -> bytes:
    """The target an upstream request without a URI part of its own carries (proxy_pass
    without one, grpc_pass): the request URI as the client sent it, or as changed (a
    rewrite, an internal redirect to a URI: ``Request.uri_remade``), escaped, with its
    arguments."""
    if not req.uri_remade:
        target = req.head.target
        if target[:1] == b"/":
            return target  # the common case, first
        # (absolute-form: its path, "/" before a query that follows the authority)
        path = req.target
        return (path if path[:1] == "/" else "/" + path).encode("utf-8", "surrogateescape")
    # the arguments may hold what the gateway put there (a rewrite, try_files): escaped
    args = "?" + encode_args(req.args) if req.args else ""
    return (encode_path(req.uri) + args).encode("utf-8", "surrogateescape")


class UpstreamExchange:
    """Runs ``proxy_pass`` for one worker; holds no per-request state."""

    def __init__(self, worker: Runtime, respond: Responder, fail: Fail,
                 internal: Redirect, fetch: Fetch) -> None:
        self.w = worker
        self.respond = respond
        self.fail = fail
        self.internal = internal  # X-Accel-Redirect's (the method as the caller left it)
        self.fetch = fetch  # a subrequest's answer (add_*_body, SSI's include)
        self.dynamic = DynamicTargets(worker)  # proxy_pass with variables
        # a location → its header_plan (found by identity), made once per location, not
        # per request (the callback path, proxy.fast, reads and fills the same table)
        self.header_plans = IdentityMemo()

    @staticmethod
    def upstream_target(req: Request, loc: Location, pp: ProxyPass) -> bytes:
        """nginx's rule: without a URI part, the request's target (``request_target``);
        with one, it replaces the part of the normalised URI that the location's prefix
        matched — or, when the URL has variables, it is the whole target (made safe for
        the request line)."""
        if pp.template is not None and pp.uri is not None:
            return safe_target(pp.uri)
        if pp.uri is None:
            return request_target(req)
        # the arguments may hold what the gateway put there (a rewrite, try_files): escaped
        args = "?" + encode_args(req.args) if req.args else ""
        if req.rewritten == STAYED:
            # a rewrite's "break" here: the whole new URI goes, the URI part ignored
            return (encode_path(req.uri) + args).encode("utf-8", "surrogateescape")
        prefix = loc.pattern if loc.modifier in ("", "^~", "=") else ""
        rest = req.uri[len(prefix):] if req.uri.startswith(prefix) else req.uri
        return (encode_path(pp.uri + rest) + args).encode("utf-8", "surrogateescape")

    def upstream_request(self, conn: ClientSide, req: Request, loc: Location,
                         pp: ProxyPass | None = None
                         ) -> tuple[Headers, bytes, tuple[bytes, ...], RedirectRules]:
        """The headers and target sent upstream, the names of the response headers not
        passed back and the redirect rules for the response (both paths use this).
        ``pp``: the proxy_pass made for this request from one with variables."""
        if pp is None:
            pp = loc.proxy_pass
        assert pp is not None
        plan = self.header_plans.lookup(loc)
        if plan is None:
            plan = self.header_plans.store(loc, self.header_plan(loc))
        headers, unsafe, target = upstream_request_head(req, pp, plan)
        if unsafe is not None:
            self.unsafe_headers(conn, req, unsafe)
        if target is None:
            target = self.upstream_target(req, loc, pp)
        req.upstream_target = target
        req.upstream_scheme = pp.scheme if pp is not loc.proxy_pass else None
        return headers, target, plan[3], plan[4]

    @staticmethod
    def header_plan(loc: Location) -> tuple[Any, ...]:
        """What a location's proxy_* settings make of every request's and response's
        headers, made once: (the location, proxy_set_header's plan, the client headers
        it replaces, the response headers not passed back, proxy_redirect's rules,
        whether the client's headers go at all, the longest response head taken)."""
        s = loc.settings
        return (loc, set_plan(s.proxy_set_header), request_drop(s.proxy_set_header),
                response_drop(s.proxy_hide_header, s.proxy_pass_header), redirect_rules(loc),
                s.proxy_pass_request_headers, s.proxy_buffer_size)

    def unsafe_headers(self, conn: ClientSide, req: Request, names: list[str]) -> None:
        """proxy_set_header values left out for a control byte: said and counted."""
        w = self.w
        for name in names:
            w.log.warn(f'header "{name}" dropped: its value holds a control character',
                       conn, req)
            w.stats.unsafe_header()

    @staticmethod
    def forwarded_upgrade(req: Request, headers: Headers) -> bytes | None:
        """The protocol the upstream request asks to switch to, or None: only when the
        client asked (Upgrade with Connection: upgrade) and the location passes an
        Upgrade header on (proxy_set_header Upgrade $http_upgrade). h2c is never
        tunnelled: its Upgrade header is removed here. A 101 to anything else is an
        invalid upstream response."""
        if req.head.upgrade is None:
            return None
        for i, (name, value) in enumerate(headers):
            if len(name) == 7 and name.lower() == b"upgrade":
                if b"h2c" in value.lower():
                    del headers[i]
                    return None
                return value
        return None

    def next_upstream(self, loc: Location, req: Request, condition: str,
                      sent: bool) -> bool:
        """Whether ``proxy_next_upstream`` sends the request on to the next server after
        ``condition`` ("error", "timeout", "invalid_header", "http_502"...), as nginx's
        ``ngx_http_upstream_next``: listed, and once the request has gone out, only an
        idempotent one (POST, LOCK, PATCH need ``non_idempotent``). A body that
        streamed upstream as it arrived (``proxy_request_buffering off``) is not kept,
        so a request with one is never sent again once it has gone."""
        s = loc.settings
        if condition not in s.proxy_next_upstream:
            return False
        if not sent:
            return True
        if req.head.content_length != 0 and req.body_buffer is None:
            return False
        return (req.method not in ("POST", "LOCK", "PATCH")
                or "non_idempotent" in s.proxy_next_upstream)

    def next_from_callback(self, loc: Location, req: Request, condition: str,
                           since: float) -> bool:
        """Whether a request the callback path sent at ``since`` goes on to another
        server after ``condition``: allowed, the tries are more than the one it had,
        and ``proxy_next_upstream_timeout`` has not passed."""
        pp = loc.proxy_pass
        assert pp is not None
        s = loc.settings
        tries = s.proxy_next_upstream_tries or len(self.w.groups[pp.pool].peers)
        return (tries > 1 and within_bound(s, since)
                and self.next_upstream(loc, req, condition, True))

    def after_failure(self, conn: ClientSide, req: Request, peer: Peer, kind: str,
                      message: str, responded: bool, is_stale: bool,
                      may_next: bool, level: str = "error") -> Recovery:
        """What the failure table says to do after ``peer`` failed (``kind``: connect,
        reset, timeout, invalid), with what both paths do for it: log (at ``level``; the
        line's context names the server), count, blame the server and set
        ``$upstream_status``, or cut the client's connection. The caller acts on the
        answer."""
        w = self.w
        action = recovery(responded, is_stale, may_next)
        if action is Recovery.CUT:
            self.cut(conn, req, kind, message)
        elif action is not Recovery.AGAIN:
            disabled = peer.failed(time.monotonic())
            w.stats.upstream_error(kind)
            w.log.write(level, message, conn, req)
            if disabled:  # (in the failure's own words: "while connecting to upstream")
                at = message.find(" while ")
                w.log.warn(DISABLED + (message[at:] if at >= 0 else ""), conn, req)
            req.upstream_status = "504" if kind == "timeout" else "502"
        return action

    def cut(self, conn: ClientSide, req: Request, kind: str, message: str) -> None:
        """The failure table's CUT: part of the response has gone to the client, which
        sees a cut connection, never a short response that looks whole."""
        self.w.log.error(f"{message} while reading upstream", conn, req)
        self.w.stats.upstream_error(kind)
        conn.abort()

    @staticmethod
    def record_try(req: Request, status: str, started: float) -> None:
        """The server just tried, done with: its address, status, times and bytes go
        before the next one's in ``$upstream_addr``, ``$upstream_status``,
        ``$upstream_response_time``, ``$upstream_connect_time``, ``$upstream_header_time``,
        ``$upstream_bytes_received`` and ``$upstream_bytes_sent`` (nginx's "a, b" lists;
        -1: a time it never reached)."""
        entry = (req.upstream_addr, status, time.monotonic() - started,
                 req.upstream_connect_time, req.upstream_time, req.upstream_bytes_received,
                 req.upstream_bytes_sent)
        if req.upstream_tried is None:
            req.upstream_tried = [entry]
        else:
            req.upstream_tried.append(entry)
        req.upstream_addr = ""
        req.upstream_status = ""
        req.upstream_time = -1.0
        req.upstream_response_time = -1.0
        req.upstream_connect_time = -1.0
        req.upstream_bytes_received = 0
        req.upstream_bytes_sent = 0

    async def proxy(self, conn: ClientSide, req: Request, loc: Location,
                    first: Peer | None = None, stale: Peer | None = None,
                    failed: Peer | None = None, since: float | None = None) -> Step:
        """The request to the upstream group, a server after another as
        ``proxy_next_upstream`` allows. From the callback path: ``stale``, the server
        whose pooled connection turned out closed (one try more, as nginx gives a cached
        connection), or ``failed``, the server that failed it (the next one is asked),
        and ``since``, when its try began (``proxy_next_upstream_timeout`` counts from
        it)."""
        s = loc.settings
        pp = loc.proxy_pass
        assert pp is not None
        if pp.template is not None:
            resolved = await self.dynamic.resolve(conn, req, loc)
            if isinstance(resolved, int):
                return await finished(self.fail(conn, req, loc, resolved))
            pp = resolved
        elif pp.tls_name is not None:
            pp = self.dynamic.named(req, loc, pp, pp.tls_name)
        head = req.head
        if (self.reads_body(req, s) and req.body_buffer is None
                and req.request_length == 0
                and (s.proxy_request_buffering or head.content_length < 0
                     and conn.body is not None and conn.body.arrived)):
            # the whole body before anything is asked of an upstream (nginx reads it
            # before it connects): a slow client holds no upstream connection, the
            # body goes with a length, and it can go again to a second server. (With
            # "off", a chunked body that came whole with its head is taken so too, as
            # nginx then knows its length.)
            buffered = await self.buffer_body(conn, req, loc)
            if buffered is None:
                return DONE  # (answered)
            req.body_buffer = buffered
            if isinstance(buffered, BufferedBody):
                try:
                    return await self._proxy(conn, req, loc, pp, first, stale, failed, since)
                finally:
                    buffered.close()
                    req.body_buffer = None
        return await self._proxy(conn, req, loc, pp, first, stale, failed, since)

    async def _proxy(self, conn: ClientSide, req: Request, loc: Location, pp: ProxyPass,
                     first: Peer | None, stale: Peer | None, failed: Peer | None,
                     since: float | None) -> Step:
        w = self.w
        s = loc.settings
        group = w.groups[pp.pool]
        head = req.head
        exchange = conn.exchange
        if head.expect_continue and exchange is not None:
            # nginx reads the body before anything goes upstream, telling a client that
            # waits to send it — one that has none too (a subrequest's says nothing)
            exchange.write(exchange.expect_continue())
        headers, target, drop, rules = self.upstream_request(conn, req, loc, pp)
        upgrade = self.forwarded_upgrade(req, headers)
        has_body = head.content_length != 0  # the client's streams up as it comes
        length = None if head.content_length < 0 else head.content_length
        method = b"HEAD" if req.memo.get(HELD_HEAD_KEY) else req.method.encode("latin-1")
        body: bytes | BufferedBody | None = None  # sent instead of streaming the client's
        kept = req.body_buffer
        if kept is not None and (has_body or isinstance(kept, BufferedBody)):
            # read whole already (buffered, or for a mirror): this copy goes (a file
            # with no body to stream: Content-Length: 0 under client_body_in_file_only)
            body, has_body = kept, False
            length = len(kept) if isinstance(kept, bytes) else kept.size
        elif has_body and req.request_length > 0:
            # the body went to an upstream before an internal redirect (error_page,
            # X-Accel-Redirect) and is not kept: the rest is read and dropped, and the
            # request goes without one (nginx sends again the body it buffered)
            try:
                await self._read_body(conn, req, s, None)
            except BodyError as e:
                await self.body_failed(conn, req, loc, e)
                return DONE
            has_body, length = False, -1
        if not pp.as_is:
            if s.proxy_method is not None:
                text = s.proxy_method.render(req)
                if not is_token(text):
                    # a method from a variable goes into the request line: anything but
                    # a token would split or bend it
                    self.w.log.error(f'invalid method "{text}" from "proxy_method"', conn, req)
                    return await finished(self.fail(conn, req, loc, 500))
                method = text.encode("latin-1")
            if s.proxy_set_body is not None or not s.proxy_pass_request_body:
                if has_body:
                    # the client's body is read to its end and dropped (so the
                    # connection can carry the next request), before anything goes
                    # upstream, as nginx reads it first
                    try:
                        await self._read_body(conn, req, s, None)
                    except BodyError as e:
                        await self.body_failed(conn, req, loc, e)
                        return DONE
                    has_body = False
                body = None
                if s.proxy_set_body is not None:
                    body = s.proxy_set_body.render(req).encode("utf-8", "surrogateescape")
            if not has_body and not isinstance(body, BufferedBody):
                # a dropped body goes without a Content-Length, as nginx sends it (-1)
                length = len(body) if body is not None else -1
        tries = s.proxy_next_upstream_tries or len(group.peers)
        tried: set[Peer] = set()
        # (nginx's u->peer.start_time: set once the body is read, when the upstream
        # request begins)
        first_try = time.monotonic() if since is None else since

        def more() -> bool:
            return len(tried) < tries and within_bound(s, first_try)

        def stale_connection(p: Peer) -> None:
            # a pooled connection the upstream had closed: says nothing of the peer (not
            # counted as a failure); the request (it has no body) goes again, to the next
            # server as nginx sends it (the same one if it is alone), with one try more
            nonlocal tries
            tries += 1
            if len(group.peers) > 1:
                tried.add(p)
            else:
                tried.discard(p)

        if stale is not None:
            stale_connection(stale)
        if failed is not None:
            tried.add(failed)
        local = local_address(s.proxy_bind, req, w.log, conn)
        peer: Peer | None
        while True:
            started = time.monotonic()  # this try's: $upstream_response_time
            if first is not None:
                peer, first = first, None
            else:
                peer = group.pick(started, tried, req)
            if peer is None:
                w.log.error(f'no live upstreams while connecting to upstream "{pp.upstream}"',
                            conn, req)
                w.stats.upstream_error("no_live")
                return await finished(self.fail(conn, req, loc, 502))
            tried.add(peer)
            req.upstream_addr = peer.server.address
            try:
                uconn, reused = await peer.connect(s.proxy_connect_timeout, local,
                                                   s.proxy_socket_keepalive)
                req.upstream_connect_time = 0.0 if reused else time.monotonic() - started
            except UpstreamError as e:
                if e.kind == LOCAL:  # our side failed: the server is not blamed (nginx)
                    w.log.error(str(e), conn, req)
                    return await finished(self.fail(conn, req, loc, e.status))
                may_next = more() and self.next_upstream(
                    loc, req, NEXT_CONDITION[e.kind], False)
                recovery = self.after_failure(conn, req, peer, e.kind, str(e), False, False,
                                              may_next, e.level)
                # the try is over, the last one too: its $upstream_response_time is the
                # time it took, as nginx's (its connect and header times "-")
                self.record_try(req, req.upstream_status, started)
                if recovery is Recovery.NEXT:
                    continue
                return await finished(self.fail(conn, req, loc, e.status))
            outcome = await self._exchange(conn, req, loc, peer, uconn, reused, method,
                                           headers, target, drop, rules, length, has_body,
                                           body, upgrade, started, more)
            # ($upstream_response_time: nginx's runs to the response's end, not its head)
            req.upstream_response_time = time.monotonic() - started
            if outcome is _STALE:
                self.record_try(req, "502", started)
                stale_connection(peer)
                continue
            if outcome is _NEXT:
                self.record_try(req, req.upstream_status, started)
                continue
            return DONE

    async def _exchange(self, conn: ClientSide, req: Request, loc: Location,
                        peer: Peer, uconn: UpstreamConnection, *rest: Any) -> object:
        """``_exchange_with``, and what it received and sent ($upstream_bytes_received,
        $upstream_bytes_sent), counted before the connection can carry another request
        (nothing awaits between its release to the pool and this)."""
        mark, sent = uconn.received, uconn.sent
        try:
            return await self._exchange_with(conn, req, loc, peer, uconn, *rest)
        finally:
            req.upstream_bytes_received = uconn.received - mark
            req.upstream_bytes_sent = uconn.sent - sent

    async def _exchange_with(self, conn: ClientSide, req: Request, loc: Location,
                             peer: Peer, uconn: UpstreamConnection, reused: bool,
                             method: bytes, headers: Headers, target: bytes,
                             drop: tuple[bytes, ...], rules: RedirectRules,
                             length: int | None, has_body: bool,
                             body: bytes | BufferedBody | None, upgrade: bytes | None,
                             started: float, more: Callable[[], bool]) -> object:
        """One request/response with ``uconn``: ``_DONE``, or ``_STALE``/``_NEXT`` when
        the request should go again (``more()``: the tries and the time allow another
        server, asked when a try has failed).
        ``has_body``: the client's body streams up as it comes; else ``body``, if any,
        goes (from its file, a piece at a time as the upstream takes them)."""
        w = self.w
        s = loc.settings
        uconn.limit_head(s.proxy_buffer_size)
        head_future = uconn.begin()
        sender = None
        try:
            if has_body:
                uconn.send_head(method, target, headers, length)
                exchange = conn.exchange
                assert exchange is not None
                exchange.write(exchange.expect_continue())
                sender = asyncio.get_running_loop().create_task(
                    self._read_body(conn, req, s, uconn))
            elif isinstance(body, BufferedBody):
                uconn.send_head(method, target, headers, length)
                sender = asyncio.get_running_loop().create_task(
                    self._send_buffered(body, uconn, s))
            elif upgrade is None or body:
                uconn.send_request(method, target, headers, length, body or b"")
            else:
                uconn.send_head(method, target, headers, length)
        except UpstreamError as e:  # (the engine will not send this request: "local")
            head_future.cancel()
            uconn.abort()
            w.log.error(str(e), conn, req)
            await finished(self.fail(conn, req, loc, e.status))
            return _DONE
        try:
            # (proxy_ignore_client_abort on: a client that goes away is not waited for)
            rhead = await self._response_head(head_future, sender, s.proxy_read_timeout,
                                              None if s.proxy_ignore_client_abort
                                              else conn.lost())
        except BodyError as e:
            # the client's body failed (malformed, too slow, gone) before any answer
            head_future.cancel()
            uconn.abort()
            await self.body_failed(conn, req, loc, e)
            return _DONE
        except _ClientGone:
            # nginx's 499: the request ends now, its upstream exchange with it
            head_future.cancel()
            uconn.abort()
            if sender is not None:
                sender.cancel()
            req.status = 499
            w.log.info(CLIENT_GONE, conn, req)
            return _DONE
        except UpstreamError as e:
            head_future.cancel()
            uconn.abort()
            if sender is not None:
                sender.cancel()
            is_stale = stale(e.kind, reused, has_body, uconn.received)
            if not is_stale:
                body_error = _task_error(sender) if sender is not None else None
                if isinstance(body_error, BodyError):
                    # the client's body failed first: that is the answer
                    await self.body_failed(conn, req, loc, body_error)
                    return _DONE
            return await self._failed(conn, req, loc, peer, e.kind, str(e), is_stale, more)
        if (rhead.status in NEXT_STATUSES and more()
                and self.next_upstream(loc, req, f"http_{rhead.status}", True)):
            # the server answered, with a status the configuration sends on: its answer
            # is dropped (and, 5xx, counted against it), the next server is asked
            uconn.abort()
            if sender is not None:
                sender.cancel()
            if rhead.status >= 500 and peer.failed(time.monotonic()):
                self.w.log.warn(DISABLED_READING, conn, req)
            req.upstream_status = str(rhead.status)
            return _NEXT
        peer.succeeded()
        req.upstream_status = str(rhead.status)
        req.upstream_time = time.monotonic() - started
        if intercepts(loc, rhead.status):
            uconn.abort()
            if sender is not None:
                sender.cancel()
            await finished(self.fail(conn, req, loc, rhead.status))
            return _DONE
        accel_to = accel.target(rhead.headers, s.proxy_ignore_headers)
        if accel_to is not None:
            uconn.abort()  # (its body is not read)
            if sender is not None:
                sender.cancel()
            await finished(self.accel(conn, req, loc, rhead.headers, accel_to))
            return _DONE
        if rhead.status == 101:
            if upgrade is None:
                # a switch nobody asked for: the backend's bytes are not HTTP any more
                uconn.abort()
                return await self._failed(conn, req, loc, peer, "invalid", "upstream sent "
                                          "101 to a request that did not upgrade", False,
                                          more)
            if sender is not None:
                # the request's body goes whole before the tunnel's first byte; one that
                # fails instead is answered, and the switch never reaches the client
                try:
                    await sender
                except BodyError as e:
                    uconn.abort()
                    await self.body_failed(conn, req, loc, e)
                    return _DONE
            await self._tunnel(conn, req, loc, uconn, rhead)
            return _DONE
        return await self._answer(conn, req, loc, peer, uconn, rhead, drop, rules, sender,
                                  more)

    async def relay_taken(self, conn: ClientSide, req: Request, loc: Location, peer: Peer,
                          uconn: UpstreamConnection, rhead: ResponseHead,
                          drop: tuple[bytes, ...], rules: RedirectRules,
                          mark: int) -> Step:
        """A response whose head the callback path read, handed over with its upstream
        connection (``mark``: what that had received before the request): an
        ``X-Accel-Limit-Rate`` paces it, which is this path's relay."""
        try:
            await self._answer(conn, req, loc, peer, uconn, rhead, drop, rules, None,
                               _no_more)
        finally:
            req.upstream_bytes_received = uconn.received - mark
        return DONE

    async def _answer(self, conn: ClientSide, req: Request, loc: Location, peer: Peer,
                      uconn: UpstreamConnection, rhead: ResponseHead,
                      drop: tuple[bytes, ...], rules: RedirectRules,
                      sender: asyncio.Task[None] | None,
                      more: Callable[[], bool]) -> object:
        """The upstream's response (its head ``rhead`` read and checked) to the client,
        through whatever the location does to it; ``sender``: the task still sending
        the client's body, if any."""
        w = self.w
        s = loc.settings
        sliced = None
        if s.slice and SLICE_KEY in req.memo and SUBREQUEST_KEY not in req.memo:
            # (a slice's subrequest answers as the upstream did: its main request checks)
            try:
                begun = slices.begin(req, rhead, s.max_ranges)
            except slices.SliceError as e:
                uconn.abort()
                if sender is not None:
                    sender.cancel()
                w.log.error(str(e), conn, req)
                conn.abort()  # (nginx closes the connection without an answer)
                return _DONE
            if begun is not None:
                rhead, want, offset = begun
                if rhead.status == 416:
                    uconn.abort()
                    if sender is not None:
                        sender.cancel()
                    self.respond.send(conn, req, loc, 416,
                                      self.respond.error_page(req, loc, 416), b"text/html",
                                      list(rhead.headers))
                    return _DONE
                if req.method != "HEAD":
                    uri = req.uri + ("?" + req.args if req.args else "")
                    sliced = slices.Sliced(req.memo[SLICE_KEY], uconn.body, offset, want,
                                           self.fetch, conn, req, uri)
        loc = self.charset_location(conn, req, loc, rhead.headers, s.proxy_ignore_headers)
        s = loc.settings
        status = final_status(req, rhead.status)
        req.status = status
        head_only = req.method == "HEAD" or status in (204, 304) or 100 <= status < 200
        exchange = conn.exchange
        assert exchange is not None
        shown, filters = rhead, None
        headers_out, length_out = rhead.headers, rhead.content_length
        if s.filters_output:
            filters, headers_out, length_out = output.start(
                req, s, headers_out, length_out, status, head_only, conn, self.fetch,
                w.config.variables, self.respond.client_error(req))
            if filters is not None and rate.relayed_unbuffered(
                    s.proxy_buffering, rhead.headers, s.proxy_ignore_headers):
                filters.flush_each()
        if headers_out is not rhead.headers:
            shown = ResponseHead(rhead.status, rhead.reason, rhead.version, headers_out,
                                 length_out, rhead.keep_alive)
        try:
            out = response_head(exchange, self.respond, req, loc, shown, w.http_date(),
                                drop, rules, head_only)
        except ProtocolError as e:
            uconn.abort()
            if sender is not None:
                sender.cancel()
            return await self._failed(conn, req, loc, peer, "invalid", f"upstream sent an "
                                      f"invalid header: {e.reason}", False, more)
        kept = None
        if s.proxy_store is not False:
            kept = store.begin(req, s, s.proxy_store, s.proxy_store_access, rhead.status,
                               rhead.headers, rhead.content_length, head_only,
                               self.respond.client_error(req))
        paced = None
        if not head_only:
            paced = self._pace(req, s, rhead.headers, s.proxy_buffering,
                               s.proxy_ignore_headers)
        ok = await self._relay(conn, req, loc, uconn, rhead, out, head_only, filters, kept,
                               sliced, paced)
        if sender is not None:
            if not sender.done():
                sender.cancel()  # the upstream answered without reading all of the body
                uconn.close()
            try:
                await sender
            except (asyncio.CancelledError, Exception):
                pass
        if ok:
            peer.release(uconn, rhead)
        else:
            uconn.abort()
        return _DONE

    def charset_location(self, conn: ClientSide, req: Request, loc: Location,
                         headers: Headers, ignored: frozenset[str]) -> Location:
        """``loc`` as an upstream's response is filtered in: its charset settings those
        the response's ``X-Accel-Charset`` makes (``proxy.charset``) when it has one —
        a rare header, so the settings are made for the response."""
        name = charset.accel_charset(headers, ignored)
        if name is None:
            return loc
        s, error = charset.overriding(loc.settings, name)
        if error is not None:
            self.w.log.error(error, conn, req)
        return replace(loc, settings=s)

    def accel(self, conn: ClientSide, req: Request, loc: Location, headers: Headers,
              to: bytes) -> Outcome:
        """The upstream's X-Accel-Redirect followed (on either exchange path)."""
        return accel.follow(conn, req, loc, headers, to, self.internal, self.fail,
                            self.respond.client_error(req))

    async def _failed(self, conn: ClientSide, req: Request, loc: Location, peer: Peer,
                      kind: str, message: str, is_stale: bool,
                      more: Callable[[], bool]) -> object:
        """The failure table's answer before any of the response went to the client."""
        may_next = not is_stale and more() and self.next_upstream(
            loc, req, NEXT_CONDITION[kind], True)
        action = self.after_failure(conn, req, peer, kind, message, False, is_stale,
                                    may_next)
        if action is Recovery.AGAIN:
            return _STALE
        if action is Recovery.NEXT:
            return _NEXT
        await finished(self.fail(conn, req, loc, 504 if kind == "timeout" else 502))
        return _DONE

    @staticmethod
    async def _response_head(head: asyncio.Future[ResponseHead],
                             sender: asyncio.Task[None] | None, timeout: float,
                             lost: asyncio.Future[None] | None) -> ResponseHead:
        """The upstream's response head — unless sending the client's body fails first,
        which raises that failure instead of waiting for an answer that cannot come, or
        the client goes away (``lost``, when given: ``_ClientGone``)."""
        waiting: set[asyncio.Future[Any]] = {head}
        if lost is not None:
            waiting.add(lost)
        if sender is not None:
            waiting.add(sender)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not head.done():
            left = deadline - loop.time()
            if left <= 0:
                raise UpstreamError("timeout", f"{TIMED_OUT} while reading response header "
                                    "from upstream")
            await asyncio.wait(waiting, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            if lost is not None and lost.done() and not head.done():
                raise _ClientGone()
            if sender is not None and sender in waiting and sender.done():
                waiting.discard(sender)
                error = _task_error(sender)
                if isinstance(error, BodyError):
                    raise error
        return head.result()

    @staticmethod
    def reads_body(req: Request, s: Settings) -> bool:
        """Whether the request has a body to read: one that comes — or, with
        ``client_body_in_file_only``, a ``Content-Length: 0`` (an empty file, as
        nginx's; a request without a body has none)."""
        head = req.head
        if head.content_length != 0:
            return True
        return s.client_body_in_file_only != "off" and any(
            name.lower() == b"content-length" for name, _ in head.headers)

    async def buffer_body(self, conn: ClientSide, req: Request,
                          loc: Location) -> bytes | BufferedBody | None:
        """The client's body read whole (``proxy_request_buffering on``, the CGI family,
        a mirror): the bytes when they fit in ``client_body_buffer_size``
        (``$request_body``), else the file they went to, for the caller to close; None
        when reading it failed, which has been answered."""
        s = loc.settings
        buffered = None
        try:
            buffered = BufferedBody(s.client_body_buffer_size, s.client_body_temp_path,
                                    s.client_body_in_file_only)
            if buffered.name:
                self.w.log.notice("a client request body is buffered to a temporary file "
                                  f"{buffered.name}", conn, req)
            if req.head.content_length != 0:  # (else an empty file, and nothing to read)
                await self._read_body(conn, req, s, None, buffered.write)
            buffered.complete()
        except (BodyError, OSError) as e:
            if buffered is not None:
                buffered.close()
            if isinstance(e, OSError):  # (the file: the rest of the body is not read)
                where = s.client_body_temp_path or "the temporary directory"
                e = BodyError(500, f"the request body could not be kept in a file in "
                               f'"{where}" ({e.errno}: {e.strerror})')
            await self.body_failed(conn, req, loc, e)
            return None
        whole = buffered.in_memory()
        return buffered if whole is None else whole

    @staticmethod
    async def _send_buffered(body: BufferedBody, uconn: UpstreamConnection,
                             s: Settings) -> None:
        """A body kept in a file to the upstream, as fast as the upstream takes it (a
        timeout or a lost connection is read as the response's failure)."""
        try:
            await uconn.send_kept_body(body, s.proxy_send_timeout)
        except TimeoutError:
            uconn.abort()
        except StreamClosed:
            pass
        except KeptBodyError as e:
            raise BodyError(500, str(e)) from None

    async def read_body_to(self, conn: ClientSide, req: Request, loc: Location,
                           sink: Callable[[bytes], None]) -> bool:
        """The client's body read to its end, each piece given to ``sink`` as it comes
        (a PUT's file); False when reading it failed, which has been answered."""
        try:
            await self._read_body(conn, req, loc.settings, None, sink)
        except BodyError as e:
            await self.body_failed(conn, req, loc, e)
            return False
        return True

    async def _read_body(self, conn: ClientSide, req: Request, s: Settings,
                         uconn: UpstreamConnection | None,
                         sink: Callable[[bytes], None] | None = None) -> None:
        """The client's body to the upstream ``uconn`` as it arrives, or read and kept
        given to ``sink`` or dropped (no ``uconn``)."""
        if uconn is None:
            exchange = conn.exchange
            assert exchange is not None
            exchange.write(exchange.expect_continue())
        while True:
            chunk = await self.body_piece(conn, req, s)
            if chunk is None:
                break
            if uconn is None:
                if sink is not None:
                    sink(chunk)
                continue
            uconn.send_body(chunk)
            try:
                await uconn.wait_writable(s.proxy_send_timeout)
            except TimeoutError:
                uconn.abort()
                return
            except StreamClosed:
                return
        if uconn is not None:
            uconn.send_end()

    @staticmethod
    async def body_piece(conn: ClientSide, req: Request, s: Settings) -> bytes | None:
        """The client's next piece of body as it comes, or None at its end; BodyError,
        with the status to answer, when it failed. client_max_body_size (0: none) is
        counted over the bytes themselves, so that a chunked body cannot pass what a
        Content-Length would not."""
        body = conn.body
        assert body is not None
        try:
            chunk = await body.read(s.client_body_timeout)
        except TimeoutError:
            raise BodyError(408, "client timed out (110: Connection timed out) while "
                            "reading client request body") from None
        except ProtocolError as e:
            if e.gone:  # (nothing is answered: nginx logs the 400 it closes with)
                raise BodyError(e.status, e.reason, gone=True) from None
            # (the one body a parser can find malformed: a chunked one; nginx's words)
            raise BodyError(e.status, "client sent invalid chunked body") from None
        except Exception as e:  # the client went away
            raise BodyError(0, f"client closed the connection while sending the body "
                            f"({e})") from None
        if chunk is not None:
            req.request_length += len(chunk)
            limit = s.client_max_body_size
            if limit and req.request_length > limit:
                # (nginx's "read so far + this chunk", at [error])
                raise BodyError(413, f"client intended to send too large chunked body: "
                                f"{req.request_length - len(chunk)}+{len(chunk)} bytes")
        return chunk

    async def body_failed(self, conn: ClientSide, req: Request, loc: Location,
                          err: BodyError) -> None:
        """The answer to a body that failed before any response began."""
        # the client's doing is info, as nginx logs it, but a malformed chunked body and
        # one past client_max_body_size (error, as nginx's); our own failure (a file) is
        # not
        (self.w.log.error if err.status in (400, 413, 500) and not err.gone
         else self.w.log.info)(str(err), conn, req)
        # a body that failed (too slow, malformed, too large) is not read past: the
        # connection ends after the answer (nginx closes after these, and a timed-out
        # body's request it ends without one: ngx_http_terminate_request)
        conn.close_after_response()
        if err.gone or err.status == 408:
            req.status = err.status
            conn.abort(err.status == 408 and loc.settings.reset_timedout_connection)
        elif conn.closed or not err.status:
            conn.abort()
        else:
            # through error_page, as nginx finalizes such a request (error_page 413 is
            # common); the page's request carries none of the body that failed
            req.discard_body()
            await finished(self.fail(conn, req, loc, err.status))

    async def _relay(self, conn: ClientSide, req: Request, loc: Location,
                     uconn: UpstreamConnection, rhead: ResponseHead, out: bytes,
                     head_only: bool, filters: Output | None = None,
                     kept: Store | None = None, sliced: Sliced | None = None,
                     paced: Pace | None = None) -> bool:
        """Stream the upstream response to the client, after its head ``out``, through
        ``filters`` (sub_filter, recoding, SSI, additions: ``proxy.output``) when there
        are, and as it came into ``kept`` (proxy_store) when there is one; ``sliced``:
        the body is the slices' (``proxy.slices``). False if it could not be completed
        (the client then sees a closed connection, never a short keep-alive response,
        and nothing is stored)."""
        s = loc.settings
        exchange = conn.exchange
        assert exchange is not None
        length = rhead.content_length
        # limit_conn counts the request until the client has all of its response, and no
        # longer: released before the bytes that complete it, as the client may send its
        # next request the moment they arrive (before this task runs again)
        if head_only or length == 0:
            req.release_conn_slots()
        exchange.write(out)
        req.bytes_sent = len(out)
        body: BodyBuffer | Sliced | None = uconn.body if sliced is None else sliced
        # a client that goes away ends the relay now, not when the upstream next speaks —
        # unless proxy_ignore_client_abort: the answer is then read to its end all the
        # same (and dropped), as nginx's buffered relay reads it whatever the client does
        ignore = s.proxy_ignore_client_abort and sliced is None
        lost = conn.lost()

        def gone(_: object) -> None:
            if body is not None and not ignore:
                body.fail(_ClientGone())

        async def stopped() -> bool:
            # the client went away or stopped taking the answer: False, or with ignore
            # whether the upstream's answer, read to its end, came whole
            return ignore and body is not None and await self._drained(body, s)

        lost.add_done_callback(gone)
        try:
            req.body_bytes_sent = 0
            if filters is not None:
                self._sent(exchange, req, await filters.begin())
            while body is not None:
                try:
                    chunk = await body.read(s.proxy_read_timeout)
                except TimeoutError:
                    self.cut(conn, req, "timeout", TIMED_OUT)
                    return False
                except _ClientGone:
                    return False
                except UpstreamError as e:
                    self.cut(conn, req, e.kind, str(e))
                    return False
                except slices.SliceError as e:
                    self.cut(conn, req, "invalid", str(e))
                    return False
                if chunk is None:
                    break
                if exchange.closed:  # the client went away mid-response
                    return await stopped()
                if head_only:
                    continue
                if kept is not None:
                    kept.write(chunk)
                if filters is not None:
                    chunk = await filters.feed(chunk)
                    if exchange.closed:
                        return await stopped()
                if body.done:  # the upstream's last bytes: the client's too
                    req.release_conn_slots()
                    if kept is not None:  # in place before the client can see the end
                        kept.end()
                while chunk:
                    part = chunk
                    if paced is not None:  # (limit_rate: as much as it allows now)
                        part = chunk[:await paced.take(len(chunk))]
                        if exchange.closed:
                            return await stopped()
                        paced.sent(len(part))
                    chunk = chunk[len(part):]
                    data = exchange.body(part)
                    exchange.write(data)
                    req.sent_body(len(data), len(part))
                    if exchange.paused() and not await self.respond.client_took_it(
                            conn, req, exchange, s.send_timeout):
                        return await stopped()
            if exchange.closed:
                return ignore  # (the upstream's answer came whole)
            req.release_conn_slots()
            if kept is not None:
                kept.end()
            if filters is not None:  # what they held back, and add_after_body's
                self._sent(exchange, req, await filters.end())
                if exchange.closed:
                    return False
            out = exchange.end(self.respond.trailers(req, loc) if req.expect_trailers else None)
            exchange.write(out)
            req.sent_body(len(out), 0)
            return True
        except OutputFailed as e:
            self.w.log.error(str(e), conn, req)
            exchange.abort()  # (its head is out: the response must not look whole)
            return False
        finally:
            lost.remove_done_callback(gone)
            if kept is not None:
                kept.drop()  # (nothing once it has ended)

    @staticmethod
    async def _drained(body: BodyBuffer | Sliced, s: Settings) -> bool:
        """The rest of an upstream's answer read and dropped (its client went away, and
        ``proxy_ignore_client_abort`` is on); True when it came whole (its connection
        may carry another request)."""
        try:
            while await body.read(s.proxy_read_timeout) is not None:
                pass
        except (TimeoutError, UpstreamError, _ClientGone):
            return False
        return True

    def _pace(self, req: Request, s: Settings, headers: Headers, buffered: bool,
              ignored: frozenset[str]) -> Pace | None:
        """The pace of an upstream's answer relayed to the client (``proxy.rate``)."""
        rate.upstream_rate(req, headers, ignored)
        if not buffered:
            req.memo[RATE_KEY] = 0  # (nginx's unbuffered relay has no rate)
        return rate.pace(req, s, self.respond.client_error(req))

    @staticmethod
    def _sent(exchange: Exchange, req: Request, data: bytes) -> None:
        """Body bytes past the filters to the client (a filter's tail, an addition's
        body: nginx's subrequest output skips the main body's filters)."""
        if data:
            out = exchange.body(data)
            exchange.write(out)
            req.sent_body(len(out), len(data))

    async def _tunnel(self, conn: ClientSide, req: Request, loc: Location,
                      uconn: UpstreamConnection, rhead: ResponseHead) -> None:
        exchange = conn.exchange
        assert exchange is not None
        req.status = 101
        headers = switching_headers(rhead.headers, b"fastgate", self.w.http_date())
        out, client_rest = exchange.switch(101, rhead.reason, headers)
        exchange.write(out)
        exchange.tunnel(uconn, client_rest, uconn.trailing_data())


class _ClientGone(FastgateError):
    """The client connection was lost while its request waited on the upstream."""


class BodyError(FastgateError):
    """The client's body failed: ``status`` is the answer (0: none, the client went)."""

    def __init__(self, status: int, message: str, gone: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.gone = gone  # the client closed its side: ``status`` is logged, not sent


def _no_more() -> bool:
    """No other server: the answer on hand is the one (a head the callback path read)."""
    return False


def within_bound(s: Settings, since: float) -> bool:
    """``proxy_next_upstream_timeout`` has not passed since ``since`` (nginx asks it
    when a try has failed, before the next one)."""
    bound = s.proxy_next_upstream_timeout
    return not bound or time.monotonic() - since < bound


def _task_error(task: asyncio.Task[None]) -> BaseException | None:
    if not task.done() or task.cancelled():
        return None
    return task.exception()
