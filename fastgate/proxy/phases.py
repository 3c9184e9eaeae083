"""One request through nginx's phases: find server → server rewrite (``return``) → find
location → location rewrite (``return``) → access (``auth_jwt``, ``auth_jwt_require``) →
content (status page, ``proxy_pass``, ``try_files``) → ``add_header`` → ``error_page``
→ log. ``return`` runs before access, as in nginx: a location with both is not
protected (``fastgate -t`` warns)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from fastgate._wire import field_value
from fastgate.config.model import AUTO_REDIRECT, Location, Return, Server, Settings
from fastgate.errors import (
    AmbiguousTokenError,
    FastgateError,
    JWTError,
    KeysUnavailableError,
    TokenMissingError,
    UnknownKeyError,
    UpstreamError,
)
from fastgate.http.engine import Headers, ProtocolError, ResponseHead
from fastgate.http.flow import StreamClosed
from fastgate.http.uri import encode_path, normalize
from fastgate.proxy._headers import bearer_of, upstream_headers
from fastgate.proxy.fast import FastExchange
from fastgate.proxy.headers import (
    ADD_HEADER_STATUSES,
    client_response_headers,
    expires_headers,
    is_safe_value,
    request_drop,
    set_plan,
    without_expires,
)
from fastgate.proxy.request import Request
from fastgate.proxy.status import error_body, reason
from fastgate.proxy.upstream import (
    CLIENT_GONE,
    NEXT_CONDITION,
    NEXT_STATUSES,
    Peer,
    UpstreamConnection,
)

if TYPE_CHECKING:
    from fastgate.http.server import ClientConnection
    from fastgate.proxy.runtime import Runtime

_NOT_TRIED: frozenset[Peer] = frozenset()
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# what an exchange ends with: done (answered or failed), or go again — a pooled
# connection that was stale, or the next server (proxy_next_upstream)
_DONE, _STALE, _NEXT = object(), object(), object()

MAX_REDIRECTS = 10
# RFC 6750 section 3: the challenge of a 401, and its form when a token was presented
CHALLENGE = b'Bearer realm="fastgate"'
CHALLENGE_INVALID = b'Bearer realm="fastgate", error="invalid_token"'


class Phases:
    """Runs requests for one worker. Holds no per-request state: that is ``Request``."""

    def __init__(self, worker: Runtime) -> None:
        self.w = worker
        # id(location) → (location, its limit_conn plan, its limit_req plan)
        self._limits: dict[int, tuple[Location, tuple[Any, ...], tuple[Any, ...]]] = {}
        # id(settings) → (settings, proxy_set_header as the C builder wants it, the names
        # of client headers not passed on): once per location, not per request
        self._header_plans: dict[int, tuple[Settings, tuple[Any, ...], tuple[bytes, ...]]] = {}

    # --- entry ----------------------------------------------------------------------------------

    def start(self, conn: ClientConnection, req: Request, server: Server,
              started: float) -> Coroutine[Any, Any, None] | None:
        """Run what can run in callbacks — the common case: no body, a location that
        checks a token and proxies — and return None once the request is taken care of
        (``Runtime.complete`` is called when its response is written). Anything else is
        returned as a coroutine for a task."""
        head = req.head
        if server.ret is not None or head.content_length != 0 or head.upgrade is not None:
            return self.run(conn, req, server)
        loc, caps = server.locations.find(req.uri)
        if loc is None:
            loc = server.fallback
        assert loc is not None
        if (loc.ret is not None or loc.try_files is not None or loc.status_page
                or caps is AUTO_REDIRECT):
            req.captures = caps
            return self.location(conn, req, loc)
        req.captures = caps
        req.location = loc
        s = loc.settings
        if s.limit_req or s.limit_conn:
            status, delay = self._preaccess(conn, req, loc)
            if status:
                return self._deny(conn, req, loc, status, started)
            if delay:
                return self._delayed(conn, req, loc, delay)
        if loc.verifier is not None:
            status = self._access(conn, req, loc)
            if status:
                return self._deny(conn, req, loc, status, started)
        if loc.proxy_pass is None:
            return self._deny(conn, req, loc, 404, started)
        peer = self.w.groups[loc.proxy_pass.upstream].pick(time.monotonic(), _NOT_TRIED)
        if peer is not None and FastExchange.start(self, conn, req, loc, peer, started):
            return None
        return self._proxy(conn, req, loc, peer)

    def _deny(self, conn: ClientConnection, req: Request, loc: Location, status: int,
              started: float) -> Coroutine[Any, Any, None] | None:
        if loc.settings.error_page_for(status) is not None:
            return self.fail(conn, req, loc, status)
        self.respond_error(conn, req, loc, status)
        self.w.complete(conn, req, started)
        return None

    async def run(self, conn: ClientConnection, req: Request, server: Server) -> None:
        if server.ret is not None and server.fallback is not None:
            await self._return(conn, req, server.fallback, server.ret)
            return
        loc, caps = server.locations.find(req.uri)
        req.captures = caps
        await self.location(conn, req, loc if loc is not None else server.fallback)

    async def location(self, conn: ClientConnection, req: Request, loc: Location | None,
                       depth: int = 0) -> None:
        assert loc is not None
        if depth > MAX_REDIRECTS:
            self.w.log.error("rewrite or internal redirection cycle", conn, req)
            self.respond_error(conn, req, loc, 500)
            return
        req.location = loc
        s = loc.settings
        # nginx's find-config phase: a declared body over the limit is refused before the
        # location's return, redirect or anything else (once: a redirect discards it)
        limit = s.client_max_body_size
        if limit and depth == 0 and req.head.content_length > limit:
            self.w.log.error(f"client intended to send too large body: "
                             f"{req.head.content_length} bytes", conn, req)
            await self.fail(conn, req, loc, 413, depth)
            return
        if req.captures is AUTO_REDIRECT:
            # nginx's find-config phase: before rewrite and access, as there
            req.captures = ()
            args = "?" + req.args if req.args else ""
            self.redirect(conn, req, loc, 301, loc.pattern + args)
            return
        # rewrite phase
        if loc.ret is not None:
            await self._return(conn, req, loc, loc.ret, depth)
            return
        # pre-access phase: limit_conn, limit_req (once per request, as in nginx)
        if (s.limit_req or s.limit_conn) and not req.limited:
            status, delay = self._preaccess(conn, req, loc)
            if status:
                await self.fail(conn, req, loc, status, depth)
                return
            if delay:
                await asyncio.sleep(delay)
        # access phase
        if loc.verifier is not None:
            status = self._access(conn, req, loc)
            if status:
                await self.fail(conn, req, loc, status, depth)
                return
        # content phase
        if loc.status_page:
            self.send(conn, req, loc, 200, self.w.status_page(), b"text/plain; version=0.0.4")
            return
        if loc.proxy_pass is not None:
            await self._proxy(conn, req, loc)
            return
        if loc.try_files is not None:
            tf = loc.try_files
            if tf.fallback_code is not None:
                await self.fail(conn, req, loc, tf.fallback_code, depth)
            else:
                assert tf.fallback_target is not None
                await self._internal(conn, req, loc, tf.fallback_target, depth)
            return
        await self.fail(conn, req, loc, 404, depth)

    # --- rewrite: return --------------------------------------------------------------------

    async def _return(self, conn: ClientConnection, req: Request, loc: Location, ret: Return,
                      depth: int = 0) -> None:
        code = ret.code
        if code == 444:  # nginx: close the connection without a response
            req.status = 444
            conn.abort()
            return
        text = ret.text.render(req) if ret.text is not None else None
        if code in REDIRECTS and text is not None:
            self.redirect(conn, req, loc, code, text)
            return
        if text is None:
            if code >= 400:
                await self.fail(conn, req, loc, code, depth)
            else:
                self.send(conn, req, loc, code, b"", None)
            return
        self.send(conn, req, loc, code, text.encode("utf-8"), b"text/plain")

    def redirect(self, conn: ClientConnection, req: Request, loc: Location, code: int,
                       url: str) -> None:
        if url.startswith("/"):
            port = conn.server_port
            default = 443 if conn.scheme == "https" else 80
            suffix = f":{port}" if port != default else ""
            url = f"{conn.scheme}://{req.host}{suffix}{url}"
        if not is_safe_value(url):
            self.w.log.error("redirect location holds a control character", conn, req)
            self.respond_error(conn, req, loc, 500)
            return
        self.send(conn, req, loc, code, error_body(code), b"text/html",
                        [(b"Location", url.encode("utf-8"))])

    # --- pre-access: limit_conn, limit_req ------------------------------------------------

    async def _delayed(self, conn: ClientConnection, req: Request, loc: Location,
                       delay: float) -> None:
        """limit_req with a burst and no nodelay: the request waits its turn."""
        await asyncio.sleep(delay)
        await self.location(conn, req, loc)

    def _preaccess(self, conn: ClientConnection, req: Request,
                   loc: Location) -> tuple[int, float]:
        """nginx's limit_conn and limit_req, before any token is checked (so a flood is
        refused without signature work). Returns (status to refuse with, or 0; seconds
        to delay). A key that reads $jwt_* verifies the token first; an empty key is not
        limited."""
        req.limited = True
        s = loc.settings
        plan = self._limits.get(id(loc))
        if plan is None or plan[0] is not loc:
            plan = self._limits[id(loc)] = self._limit_plan(loc)
        _, conns, reqs = plan
        for zone, table, limit, name in conns:
            key = self._zone_key(req, loc, zone)
            if not key:
                continue
            if table.acquire(key, limit):
                if req.conn_slots is None:
                    req.conn_slots = []
                req.conn_slots.append((table, key))
                req.limit_conn_status = req.limit_conn_status or "PASSED"
                continue
            req.limit_conn_status = self._limit_refusal(
                conn, req, "connections", name, s.limit_conn_log_level, s.limit_conn_dry_run)
            if not s.limit_conn_dry_run:
                return s.limit_conn_status, 0.0
        if not reqs:
            return 0, 0.0
        now_ms = int(time.time() * 1000)
        # with one limit_req (the usual case) the check is also the accounting: one
        # lookup; with several, none is accounted unless all pass (as nginx does)
        single = len(reqs) == 1
        checks = []
        for zone, table, lr, name in reqs:
            key = self._zone_key(req, loc, zone)
            if not key:
                continue
            excess = table.request(key, now_ms, zone.rate, lr.burst, single)
            if excess < 0:
                req.limit_req_status = self._limit_refusal(
                    conn, req, "requests", name, s.limit_req_log_level, s.limit_req_dry_run)
                if s.limit_req_dry_run:
                    continue
                return s.limit_req_status, 0.0
            if single and (lr.delay is None or excess <= lr.delay):
                req.limit_req_status = req.limit_req_status or "PASSED"
                return 0, 0.0
            checks.append((table, key, zone, lr, excess))
        delay_ms = 0
        for table, key, zone, lr, excess in checks:
            if not single:
                excess = table.request(key, now_ms, zone.rate, lr.burst, True)
                if excess < 0:  # another worker took the room in between
                    self.w.stats.limit_rejected(self.w.zones.rejected[zone.name])
                    req.limit_req_status = "REJECTED"
                    return s.limit_req_status, 0.0
            if lr.delay is not None and excess > lr.delay:
                delay_ms = max(delay_ms, (excess - lr.delay) * 1000 // zone.rate)
        if delay_ms:
            req.limit_req_status = "DELAYED" if not s.limit_req_dry_run else "DELAYED_DRY_RUN"
            if s.limit_req_dry_run:
                return 0, 0.0
            return 0, delay_ms / 1000
        if checks and not req.limit_req_status:
            req.limit_req_status = "PASSED"
        return 0, 0.0

    def _limit_plan(self, loc: Location) -> tuple[Location, tuple[Any, ...], tuple[Any, ...]]:
        """A location's limits with their zones and this worker's tables looked up once."""
        w = self.w
        zones = w.config.zones
        s = loc.settings
        conns = tuple((zones[lc.zone], w.zones[lc.zone], lc.limit, lc.zone)
                      for lc in s.limit_conn)
        reqs = tuple((zones[lr.zone], w.zones[lr.zone], lr, lr.zone) for lr in s.limit_req)
        return loc, conns, reqs

    def _limit_refusal(self, conn: ClientConnection, req: Request, what: str, zone: str,
                       level: str, dry_run: bool) -> str:
        """Log a limit's refusal as nginx does, count it; the value of $limit_*_status."""
        self.w.stats.limit_rejected(self.w.zones.rejected[zone])
        self.w.log.write(level, f'limiting {what}{", dry run" if dry_run else ""} by zone '
                                f'"{zone}"', conn, req)
        return "REJECTED_DRY_RUN" if dry_run else "REJECTED"

    def _zone_key(self, req: Request, loc: Location, zone: Any) -> bytes:
        if zone.uses_jwt and req.token is None and loc.verifier is not None:
            try:
                token = self._token_of(req, loc)
                if token:
                    req.token = loc.verifier.verify(token, time.time())
            except JWTError:
                pass  # the access phase refuses it, with the reason logged once
        key: str = zone.key.render(req)
        return key.encode("utf-8", "surrogateescape")

    def _token_of(self, req: Request, loc: Location) -> bytes | None:
        """The token the request presents, or None. AmbiguousTokenError when its header,
        cookie or argument is there twice (a second Authorization header never gets
        here: the HTTP layer answers 400)."""
        s = loc.settings
        if s.auth_jwt == "on":
            return bearer_of(req.head.headers)
        if s.auth_jwt_source is not None:
            if s.auth_jwt_source_var is not None and _given_twice(req, *s.auth_jwt_source_var):
                raise AmbiguousTokenError()
            value = s.auth_jwt_source.render(req)
            return value.encode("utf-8", "surrogateescape") if value else None
        return None

    # --- access: auth_jwt --------------------------------------------------------------------

    def _access(self, conn: ClientConnection, req: Request, loc: Location) -> int:
        s = loc.settings
        if req.method == "OPTIONS" and not s.auth_jwt_options:
            return 0  # CORS preflights pass, as the module does
        stats = self.w.stats
        try:
            token = self._token_of(req, loc)
        except AmbiguousTokenError as e:
            self.w.log.info(e.reason, conn, req)
            stats.jwt(e.reason)
            req.challenge = CHALLENGE_INVALID
            return e.status
        if not token:
            err: JWTError = TokenMissingError()
            self.w.log.info(err.reason, conn, req)
            stats.jwt(err.reason)
            req.challenge = CHALLENGE
            return 401
        verifier = loc.verifier
        assert verifier is not None
        hits = verifier.hits
        try:
            req.token = verifier.verify_now(token)
        except JWTError as err:
            refused = err
            remote = self.w.remote_of.get(verifier) if self.w.remote_of else None
            if remote is not None:
                if not remote.fetched and not verifier.keys:
                    refused = KeysUnavailableError(remote.url)
                if isinstance(refused, (UnknownKeyError, KeysUnavailableError)):
                    remote.early_refresh()
            req.challenge = CHALLENGE_INVALID
            self.w.log.info(f"{refused.reason} ({refused.detail})" if refused.detail
                            else refused.reason, conn, req)
            stats.jwt(refused.reason)
            stats.cache(verifier.hits != hits)
            return refused.status
        hit = verifier.hits != hits
        req_ = s.auth_jwt_require
        if req_ is not None:
            for t in req_.values:
                v = t.render(req)
                if not v or v == "0":
                    self.w.log.info(f'JWT: requirement "{t.source}" not met', conn, req)
                    stats.cache(hit)
                    stats.jwt("JWT: requirement not met")
                    req.challenge = CHALLENGE_INVALID
                    return req_.status
        stats.verified(hit)
        return 0

    # --- error_page --------------------------------------------------------------------------

    async def fail(self, conn: ClientConnection, req: Request, loc: Location, status: int,
                   depth: int = 0) -> None:
        """Answer ``status``, through ``error_page`` when one matches (once per request,
        as nginx's ``recursive_error_pages off``)."""
        page = loc.settings.error_page_for(status) if not req.redirected else None
        if page is None:
            self.respond_error(conn, req, loc, status)
            return
        req.redirected = True
        target = page.target_template.render(req)
        override = None if page.keep_target_status else (page.code or status)
        req.override = override
        if target.startswith("@"):
            named = req.server.locations.named.get(target) if req.server else None
            if named is None:
                self.respond_error(conn, req, loc, 500)
                return
            await self.location(conn, req, named, depth + 1)
            return
        if target.startswith(("http://", "https://")):
            code = page.code if page.code in REDIRECTS else 302
            req.override = None
            self.redirect(conn, req, loc, code, target)
            return
        await self._internal(conn, req, loc, target, depth)

    async def _internal(self, conn: ClientConnection, req: Request, loc: Location,
                        target: str, depth: int) -> None:
        """An internal redirect to a URI or named location (error_page, try_files)."""
        assert req.server is not None
        if target.startswith("@"):
            named = req.server.locations.named.get(target)
            if named is None:
                self.respond_error(conn, req, loc, 500)
                return
            await self.location(conn, req, named, depth + 1)
            return
        path, _, args = target.partition("?")
        try:
            req.uri = normalize(path)
        except ProtocolError:
            self.respond_error(conn, req, loc, 500)
            return
        if args:
            req.args = args
        if req.method not in ("GET", "HEAD"):
            req.method = "GET"  # nginx turns an internal redirect into a GET
        new, caps = req.server.locations.find(req.uri)
        req.captures = caps
        await self.location(conn, req, new or req.server.fallback, depth + 1)

    def respond_error(self, conn: ClientConnection, req: Request, loc: Location | None,
                            status: int) -> None:
        final = self._final_status(req, status)
        self.send(conn, req, loc, status, error_body(final), b"text/html")

    @staticmethod
    def _final_status(req: Request, status: int) -> int:
        return req.override if req.override is not None else status

    # --- responses ------------------------------------------------------------------------------

    def send(self, conn: ClientConnection, req: Request, loc: Location | None,
                   status: int, body: bytes, content_type: bytes | None,
                   extra: Headers | None = None) -> None:
        status = self._final_status(req, status)
        req.status = status
        headers: Headers = [(b"Server", b"fastgate"), (b"Date", self.w.http_date())]
        if content_type is not None:
            headers.append((b"Content-Type", content_type))
        if extra:
            headers.extend(extra)
        if status == 401 and req.challenge is not None:
            headers.append((b"WWW-Authenticate", req.challenge))
        if loc is not None:
            headers.extend(self.added_headers(req, loc, status))
        head_only = req.method == "HEAD" or status in (204, 304)
        engine = conn.engine
        assert engine is not None
        try:
            out = engine.send_head(status, reason(status), headers, len(body), head_only)
        except ProtocolError:
            conn.abort()
            return
        if body and not head_only:
            out += engine.send_body(body)
        out += engine.send_end()
        conn.write(out)
        req.body_bytes_sent = 0 if head_only else len(body)
        req.bytes_sent = len(out)

    def added_headers(self, req: Request, loc: Location, status: int) -> Headers:
        """``add_header``'s and ``expires``'s headers for a response of ``status``."""
        out: Headers = []
        expires = loc.settings.expires
        if expires is not None and status in ADD_HEADER_STATUSES:
            out.extend(expires_headers(expires, time.time()))
        for name, template, always in loc.settings.add_header:
            if always or status in ADD_HEADER_STATUSES:
                value = template.render(req)
                raw = field_value(value) if value else None
                if raw is not None:
                    out.append((name.encode("latin-1"), raw))
        return out

    # --- content: proxy_pass --------------------------------------------------------------------

    @staticmethod
    def _upstream_target(req: Request, loc: Location) -> bytes:
        """nginx's rule: without a URI part, the request URI goes as the client sent it
        (as changed, after an internal redirect); with one, it replaces the part of the
        normalised URI that the location's prefix matched."""
        pp = loc.proxy_pass
        assert pp is not None
        if pp.uri is None and not req.redirected:
            target = req.head.target
            if target[:1] == b"/":
                return target  # the common case, first
            if target != b"*":  # absolute-form: the part after the authority
                return req.target.encode("latin-1")
        args = "?" + req.args if req.args else ""
        if pp.uri is None:
            return (encode_path(req.uri) + args).encode("latin-1")
        prefix = loc.pattern if loc.modifier in ("", "^~", "=") else ""
        rest = req.uri[len(prefix):] if req.uri.startswith(prefix) else req.uri
        return (encode_path(pp.uri + rest) + args).encode("latin-1")

    def upstream_request(self, conn: ClientConnection, req: Request,
                         loc: Location) -> tuple[Headers, bytes]:
        """The headers and target sent upstream (both proxy paths use this)."""
        pp = loc.proxy_pass
        assert pp is not None
        req.proxy_host = pp.host_header
        req.proxy_port = pp.port
        s = loc.settings
        plan = self._header_plans.get(id(s))
        if plan is None:
            plan = self._header_plans[id(s)] = (
                s, set_plan(s.proxy_set_header), request_drop(s.proxy_set_header))
        headers, unsafe = upstream_headers(req.head.headers, plan[1], plan[2],
                                           pp.host_bytes, req)
        if unsafe is not None:
            w = self.w
            for name in unsafe:
                w.log.warn(f'header "{name}" dropped: its value holds a control character',
                           conn, req)
                w.stats.unsafe_header()
        return headers, self._upstream_target(req, loc)

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
        idempotent one (POST, LOCK, PATCH need ``non_idempotent``). A request body
        streams upstream as it arrives and is not kept, so a request with one is never
        sent again once it has gone (nginx buffers bodies and can)."""
        s = loc.settings
        if condition not in s.proxy_next_upstream:
            return False
        if not sent:
            return True
        if req.head.content_length != 0:
            return False
        return (req.method not in ("POST", "LOCK", "PATCH")
                or "non_idempotent" in s.proxy_next_upstream)

    def next_from_callback(self, loc: Location, req: Request, condition: str) -> bool:
        """Whether a request the callback path sent goes on to another server after
        ``condition``: allowed, and the tries are more than the one it had."""
        pp = loc.proxy_pass
        assert pp is not None
        tries = loc.settings.proxy_next_upstream_tries or len(self.w.groups[pp.upstream].peers)
        return tries > 1 and self.next_upstream(loc, req, condition, True)

    @staticmethod
    def record_try(req: Request, status: str, started: float) -> None:
        """The server just tried, done with: its address, status and time go before the
        next one's in ``$upstream_addr``, ``$upstream_status`` and
        ``$upstream_response_time`` (nginx's "a, b" lists)."""
        entry = (req.upstream_addr, status, time.monotonic() - started)
        if req.upstream_tried is None:
            req.upstream_tried = [entry]
        else:
            req.upstream_tried.append(entry)
        req.upstream_addr = ""
        req.upstream_status = ""
        req.upstream_time = -1.0

    async def _proxy(self, conn: ClientConnection, req: Request, loc: Location,
                     first: Peer | None = None, stale: Peer | None = None,
                     failed: Peer | None = None) -> None:
        """The request to the upstream group, a server after another as
        ``proxy_next_upstream`` allows. From the callback path: ``stale``, the server
        whose pooled connection turned out closed (one try more, as nginx gives a cached
        connection), or ``failed``, the server that failed it (the next one is asked)."""
        w = self.w
        s = loc.settings
        pp = loc.proxy_pass
        assert pp is not None
        group = w.groups[pp.upstream]
        head = req.head
        headers, target = self.upstream_request(conn, req, loc)
        upgrade = self.forwarded_upgrade(req, headers)
        has_body = head.content_length != 0
        length = None if head.content_length < 0 else head.content_length
        tries = s.proxy_next_upstream_tries or len(group.peers)
        tried: set[Peer] = set()

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
        peer: Peer | None
        while True:
            started = time.monotonic()  # this try's: $upstream_response_time
            if first is not None:
                peer, first = first, None
            else:
                peer = group.pick(started, tried)
            if peer is None:
                w.log.error(f'no live upstreams while connecting to upstream "{pp.upstream}"',
                            conn, req)
                w.stats.upstream_error("no_live")
                await self.fail(conn, req, loc, 502)
                return
            tried.add(peer)
            req.upstream_addr = peer.server.address
            try:
                uconn, reused = await peer.connect(s.proxy_connect_timeout)
            except UpstreamError as e:
                peer.failed(time.monotonic())
                w.stats.upstream_error(e.kind)
                w.log.error(f"{e} ({peer.server.address})", conn, req)
                if len(tried) < tries and self.next_upstream(loc, req, NEXT_CONDITION[e.kind],
                                                             False):
                    self.record_try(req, str(e.status), started)
                    continue
                req.upstream_status = "502" if e.status == 502 else "504"
                await self.fail(conn, req, loc, e.status)
                return
            outcome = await self._exchange(conn, req, loc, peer, uconn, reused, headers,
                                           target, length, has_body, upgrade, started,
                                           len(tried) < tries)
            if outcome is _STALE:
                self.record_try(req, "502", started)
                stale_connection(peer)
                continue
            if outcome is _NEXT:
                self.record_try(req, req.upstream_status, started)
                continue
            return

    async def _exchange(self, conn: ClientConnection, req: Request, loc: Location,
                        peer: Peer, uconn: UpstreamConnection, reused: bool, headers: Headers,
                        target: bytes, length: int | None, has_body: bool,
                        upgrade: bytes | None, started: float, more: bool) -> object:
        """One request/response with ``uconn``: ``_DONE``, or ``_STALE``/``_NEXT`` when
        the request should go again (``more``: the tries allow another server)."""
        w = self.w
        s = loc.settings
        head_future = uconn.begin()
        uconn.write(uconn.engine.send_head(req.method.encode("latin-1"), target, headers,
                                           length))
        sender = None
        if has_body:
            engine = conn.engine
            assert engine is not None
            conn.write(engine.send_continue())
            sender = asyncio.get_running_loop().create_task(
                self._send_body(conn, req, uconn, s.client_body_timeout, s.proxy_send_timeout,
                                s.client_max_body_size))
        elif upgrade is None:
            uconn.write(uconn.engine.send_end())
        try:
            rhead = await self._response_head(head_future, sender, s.proxy_read_timeout,
                                              conn.lost())
        except _BodyError as e:
            # the client's body failed (malformed, too slow, gone) before any answer
            head_future.cancel()
            uconn.abort()
            await self._body_failed(conn, req, loc, e)
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
            if e.kind == "reset" and reused and not has_body and uconn.received == 0:
                return _STALE
            body_error = _task_error(sender) if sender is not None else None
            if isinstance(body_error, _BodyError):
                await self._body_failed(conn, req, loc, body_error)
                return _DONE
            peer.failed(time.monotonic())
            w.stats.upstream_error(e.kind)
            w.log.error(f"{e} ({peer.server.address})", conn, req)
            req.upstream_status = str(e.status)
            if more and self.next_upstream(loc, req, NEXT_CONDITION[e.kind], True):
                return _NEXT
            await self.fail(conn, req, loc, e.status)
            return _DONE
        if (more and rhead.status in NEXT_STATUSES
                and self.next_upstream(loc, req, f"http_{rhead.status}", True)):
            # the server answered, with a status the configuration sends on: its answer
            # is dropped (and, 5xx, counted against it), the next server is asked
            uconn.abort()
            if sender is not None:
                sender.cancel()
            if rhead.status >= 500:
                peer.failed(time.monotonic())
            req.upstream_status = str(rhead.status)
            return _NEXT
        peer.succeeded()
        req.upstream_status = str(rhead.status)
        req.upstream_time = time.monotonic() - started
        if rhead.status == 101:
            if upgrade is None:
                # a switch nobody asked for: the backend's bytes are not HTTP any more
                uconn.abort()
                w.log.error(f"upstream sent 101 to a request that did not upgrade "
                            f"({peer.server.address})", conn, req)
                w.stats.upstream_error("invalid")
                req.upstream_status = "502"
                await self.fail(conn, req, loc, 502)
                return _DONE
            await self._tunnel(conn, req, loc, uconn, rhead)
            return _DONE
        ok = await self._relay(conn, req, loc, uconn, rhead)
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

    @staticmethod
    async def _response_head(head: asyncio.Future[ResponseHead],
                             sender: asyncio.Task[None] | None, timeout: float,
                             lost: asyncio.Future[None]) -> ResponseHead:
        """The upstream's response head — unless sending the client's body fails first,
        which raises that failure instead of waiting for an answer that cannot come, or
        the client goes away (``_ClientGone``)."""
        waiting: set[asyncio.Future[Any]] = {head, lost}
        if sender is not None:
            waiting.add(sender)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not head.done():
            left = deadline - loop.time()
            if left <= 0:
                raise UpstreamError("timeout", "upstream timed out (110: Connection timed "
                                    "out) while reading response header from upstream")
            await asyncio.wait(waiting, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            if lost.done() and not head.done():
                raise _ClientGone()
            if sender is not None and sender in waiting and sender.done():
                waiting.discard(sender)
                error = _task_error(sender)
                if isinstance(error, _BodyError):
                    raise error
        return head.result()

    async def _send_body(self, conn: ClientConnection, req: Request,
                         uconn: UpstreamConnection, read_timeout: float, send_timeout: float,
                         limit: int) -> None:
        """The client's body to the upstream as it arrives. ``limit`` is
        client_max_body_size (0: none), counted over the bytes themselves, so that a
        chunked body cannot pass what a Content-Length would not."""
        body = conn.body
        assert body is not None
        engine = uconn.engine
        while True:
            try:
                chunk = await body.read(read_timeout)
            except TimeoutError:
                raise _BodyError(408, "client timed out (110: Connection timed out) while "
                                 "reading client request body") from None
            except ProtocolError as e:
                raise _BodyError(e.status, f"client sent invalid body: {e.reason}") from None
            except Exception as e:  # the client went away
                raise _BodyError(0, f"client closed the connection while sending the body "
                                 f"({e})") from None
            if chunk is None:
                break
            req.request_length += len(chunk)
            if limit and req.request_length > limit:
                raise _BodyError(413, f"client intended to send too large chunked body: "
                                 f"{req.request_length}+ bytes")
            uconn.write(engine.send_body(chunk))
            try:
                await uconn.gate.wait(send_timeout)
            except TimeoutError:
                uconn.abort()
                return
            except StreamClosed:
                return
        uconn.write(engine.send_end())

    async def _body_failed(self, conn: ClientConnection, req: Request, loc: Location,
                           err: _BodyError) -> None:
        self.w.log.info(str(err), conn, req)
        if err.status and not conn.closed:
            self.respond_error(conn, req, loc, err.status)
        else:
            conn.abort()

    async def _relay(self, conn: ClientConnection, req: Request, loc: Location,
                     uconn: UpstreamConnection, rhead: ResponseHead) -> bool:
        """Stream the upstream response to the client. False if it could not be completed
        (the client then sees a closed connection, never a short keep-alive response)."""
        s = loc.settings
        status = self._final_status(req, rhead.status)
        req.status = status
        headers = client_response_headers(rhead.headers, False, b"fastgate", self.w.http_date())
        if s.expires is not None and status in ADD_HEADER_STATUSES:
            headers = without_expires(headers)  # expires replaces the upstream's
        headers.extend(self.added_headers(req, loc, status))
        head_only = req.method == "HEAD" or status in (204, 304) or 100 <= status < 200
        length = rhead.content_length if rhead.content_length >= 0 else None
        engine = conn.engine
        assert engine is not None
        try:
            out = engine.send_head(status, rhead.reason or reason(status), headers, length,
                                   head_only)
        except ProtocolError as e:
            self.w.log.error(f"upstream sent an invalid header: {e.reason}", conn, req)
            self.w.stats.upstream_error("invalid")
            req.upstream_status = "502"
            self.respond_error(conn, req, loc, 502)
            return False
        # limit_conn counts the request until the client has all of its response, and no
        # longer: released before the bytes that complete it, as the client may send its
        # next request the moment they arrive (before this task runs again)
        if head_only or length == 0:
            req.release_conn_slots()
        conn.write(out)
        req.bytes_sent = len(out)
        body = uconn.body
        # a client that goes away ends the relay now, not when the upstream next speaks
        lost = conn.lost()

        def gone(_: object) -> None:
            if body is not None:
                body.fail(_ClientGone())

        lost.add_done_callback(gone)
        try:
            sent = 0
            while body is not None:
                try:
                    chunk = await body.read(s.proxy_read_timeout)
                except TimeoutError:
                    self.w.log.error("upstream timed out (110: Connection timed out) while "
                                     "reading upstream", conn, req)
                    self.w.stats.upstream_error("timeout")
                    conn.abort()
                    return False
                except _ClientGone:
                    return False
                except UpstreamError as e:
                    self.w.log.error(f"{e} while reading upstream", conn, req)
                    self.w.stats.upstream_error(e.kind)
                    conn.abort()
                    return False
                if chunk is None:
                    break
                if conn.closed:  # the client went away mid-response
                    return False
                if head_only:
                    continue
                if body.done:  # the upstream's last bytes: the client's too
                    req.release_conn_slots()
                sent += len(chunk)
                data = engine.send_body(chunk)
                conn.write(data)
                req.bytes_sent += len(data)
                req.body_bytes_sent = sent
                if conn.gate.paused:
                    try:
                        await conn.gate.wait(s.send_timeout)
                    except TimeoutError:
                        self.w.log.info("client timed out (110: Connection timed out) while "
                                        "sending to client", conn, req)
                        conn.abort()
                        return False
                    except Exception:  # the client went away mid-response
                        return False
            if conn.closed:
                return False
            req.release_conn_slots()
            conn.write(engine.send_end())
            return True
        finally:
            lost.remove_done_callback(gone)

    async def _tunnel(self, conn: ClientConnection, req: Request, loc: Location,
                      uconn: UpstreamConnection, rhead: ResponseHead) -> None:
        engine = conn.engine
        assert engine is not None
        req.status = 101
        headers = client_response_headers(rhead.headers, True, b"fastgate", self.w.http_date())
        out, client_rest = engine.switch_protocol(101, rhead.reason, headers)
        conn.write(out)
        conn.start_tunnel(uconn, client_rest, uconn.engine.trailing_data())


def _given_twice(req: Request, kind: str, name: str) -> bool:
    """Whether the header, cookie or query argument ``name`` occurs more than once."""
    seen = 0
    if kind == "http":
        wanted = name.replace("_", "-")
        for n, _ in req.headers:
            if n == wanted:
                seen += 1
    elif kind == "cookie":
        for n, v in req.headers:
            if n == "cookie":
                for part in v.split(";"):
                    key, eq, _ = part.strip().partition("=")
                    if eq and key.lower() == name:
                        seen += 1
    elif req.args:
        for part in req.args.split("&"):
            if part.partition("=")[0].lower() == name:
                seen += 1
    return seen > 1


class _ClientGone(FastgateError):
    """The client connection was lost while its request waited on the upstream."""


class _BodyError(FastgateError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _task_error(task: asyncio.Task[None]) -> BaseException | None:
    if not task.done() or task.cancelled():
        return None
    return task.exception()
