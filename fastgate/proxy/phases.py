"""One request through nginx's phases: server rewrite → find location
(``client_max_body_size``, auto-redirect) → the location's phases from ``PHASES`` →
log. A URI a rewrite changed, ``error_page`` and ``try_files`` start over at find
location, as nginx's do (a named location at its rewrite phase); an ``if`` that holds
goes on with the if's configuration.

Both ways a request runs go through the one loop (``Walker.walk``, compiled in
``proxy/_walk.pyx``): in callbacks (the common case, no task, no coroutine) until a
phase must wait, then in a task that resumes the walk at the phase after the one that
waited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastgate.config.model import AUTO_REDIRECT, Location, Server, Settings
from fastgate.http.engine import ProtocolError
from fastgate.http.uri import normalize
from fastgate.openssl import NO_CA_ERRORS
from fastgate.proxy._walk import Walker
from fastgate.proxy.access import AccessModule
from fastgate.proxy.auth_basic import AuthBasic
from fastgate.proxy.auth_jwt import AuthJwt
from fastgate.proxy.auth_request import AuthRequest
from fastgate.proxy.capture import Capture, subrequest
from fastgate.proxy.content import Content
from fastgate.proxy.degradation import Degradation
from fastgate.proxy.exchange import UpstreamExchange
from fastgate.proxy.limits import Limits
from fastgate.proxy.locate import Locator
from fastgate.proxy.mirror import Mirror
from fastgate.proxy.push import Push
from fastgate.proxy.realip import RealIp
from fastgate.proxy.respond import REDIRECTS, Responder
from fastgate.proxy.rewrite import CHANGED, STAYED, RewriteModule
from fastgate.proxy.status import ENDS_CONNECTION
from fastgate.proxy.steps import DONE, NEXT, Outcome, Phase, Step, Wait, finished
from fastgate.proxy.subrequest import Subrequests

if TYPE_CHECKING:
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request
    from fastgate.proxy.runtime import Runtime

# nginx's r->uri_changes: internal redirects past this are a cycle (500)
MAX_REDIRECTS = 10



class Phases:
    """Runs requests for one worker. Holds no per-request state: that is ``Request``."""

    def __init__(self, worker: Runtime) -> None:
        self.w = worker
        # the loop (compiled): a location's plan, the handlers of PHASES it runs, is
        # built on its first request
        self.walker = walker = Walker(Locator(), self._before, self.plan,
                                      self._find_config, self._resume)
        self.enter = walker.enter
        self.walk = walker.walk
        self._nested = walker.walk_nested
        self._find_in = walker.find
        self._locate_in = walker.locate
        self.respond = Responder(worker)
        self.realip = RealIp()
        self.push = Push(worker)
        # the access phase's refusals: through auth_delay only where a location has one
        # (else a frame less on every 401)
        refuse = self.refuse if _uses_auth_delay(worker) else self.fail
        self.auth = AuthJwt(worker, refuse)
        self.upstream = UpstreamExchange(worker, self.respond, self.fail,
                                         self.redirect_as_is, self.capture)
        self._sub_plans: dict[int, tuple[Location, tuple[Phase, ...]]] = {}
        self.subrequests = Subrequests(worker, self.upstream)
        self.mirror = Mirror(worker, self.subrequests)
        self.access = AccessModule(worker, self.auth, refuse, AuthBasic(worker),
                                   AuthRequest(self.subrequests, self.capture))
        self.limits = Limits(worker, self.auth, self.fail)
        self.degradation = Degradation(worker, self.fail)
        self.rewrite = RewriteModule(self.respond, self.fail, self.relocate,
                                     self._nested, self.capture)
        self.content = Content(worker, self.respond, self.upstream, self.fail,
                               self.redirect_as_is)

    # --- entry ----------------------------------------------------------------------------------

    def _before(self, conn: ClientSide, req: Request, server: Server) -> Outcome:
        """What comes before the location's lookup, for a request or server that has
        any (``Walker.enter`` calls it): a request with a body into a task, the client
        certificate's check and realip of ``checks_first``, the server rewrite phase."""
        if req.head.content_length != 0 and not req.in_task:
            # a body follows the head, in this read or later ones: the request runs in a
            # task, so that the engine has read what came with the head before anything
            # answers (a refusal then keeps the connection, as nginx discards the body)
            return self._in_task(conn, req, server)
        if server.checks_first:
            fallback = server.fallback
            assert fallback is not None
            if fallback.settings.ssl_verify_client != "off":
                refused = self._client_certificate(conn, req, fallback.settings)
                if refused:
                    return self.fail(conn, req, fallback, refused)
            if fallback.settings.set_real_ip_from:  # realip's post-read phase
                self.realip.phase(conn, req, fallback)
        if server.rewrites:
            step = self.rewrite.server_phase(conn, req, server)
            if step is not NEXT:
                return step
        return self._find_in(conn, req, server)

    def _client_certificate(self, conn: ClientSide, req: Request, s: Settings) -> int:
        """nginx's check before any phase: 496 when ``ssl_verify_client on`` and no
        certificate came, 495 when the one that came failed its verification (its CA,
        its dates, a chain deeper than ``ssl_verify_depth``) — but for the errors
        ``optional_no_ca`` lets through; else 0."""
        if req.scheme != "https":
            return 0
        cert = req.connection.client_certificate
        if cert is None:
            if s.ssl_verify_client != "on":
                return 0
            self.w.log.info("client sent no required SSL certificate while reading client "
                            "request headers", conn, req)
            return 496
        _, code, words = cert
        if code and not (s.ssl_verify_client == "optional_no_ca" and code in NO_CA_ERRORS):
            # (-1: its OCSP status, ssl_ocsp, which has words and no number)
            why = words if code == -1 else f"({code}:{words})"
            self.w.log.info(f"client SSL certificate verify error: {why} while reading "
                            "client request headers", conn, req)
            return 495
        return 0

    async def _in_task(self, conn: ClientSide, req: Request, server: Server) -> Step:
        req.in_task = True
        step = self.enter(conn, req, server)
        return step if isinstance(step, Step) else await step

    def _find_config(self, conn: ClientSide, req: Request,
                     loc: Location) -> Outcome | None:
        """nginx's find-config phase, when the walk finds it can apply: a declared body
        over the limit is refused before the location's return, redirect or anything
        else (once: a redirect discards the body); a location's name without its slash
        is redirected to it."""
        length = req.head.content_length
        if length > 0 and not req.uri_changes:
            limit = loc.settings.client_max_body_size
            if limit and length > limit:
                self.w.log.error(f"client intended to send too large body: {length} "
                                 f"bytes", conn, req)
                req.discard_body()
                return self.fail(conn, req, loc, 413)
        if req.captures is AUTO_REDIRECT:
            req.captures = ()
            args = "?" + req.args if req.args else ""
            self.respond.redirect(conn, req, loc, 301, loc.pattern + args)
            return DONE
        return None

    async def _resume(self, conn: ClientSide, req: Request, loc: Location,
                      waiting: Wait, at: int) -> Step:
        req.in_task = True
        step = await waiting
        if step is not NEXT:
            return DONE
        rest = self.walk(conn, req, loc, at)
        if isinstance(rest, Step):
            return rest
        return await rest

    async def capture(self, conn: ClientSide, req: Request, uri: str,
                      memo: dict[object, object] | None = None) -> Capture:
        """A subrequest for ``uri``, its answer kept (``proxy.capture``): the location
        it reaches runs its rewrite, access and content phases, answering on a Capture.
        nginx skips the access phase for subrequests; fastgate does not, so that a
        location that checks a token checks it whoever asks (no request without a valid
        token reaches its backend). ``SubrequestRefused`` when it would nest too deep."""
        kept = Capture(conn)
        sub = subrequest(req, kept, uri, memo)
        loc = self._locate(sub)
        sub.location = loc
        kept.output_max = loc.settings.subrequest_output_buffer_size
        kept.request = sub
        if sub.captures is AUTO_REDIRECT:
            self._find_config(kept, sub, loc)  # (its 301, kept)
            return kept
        for phase in self._sub_plan(loc):
            step = phase(kept, sub, loc)
            if not isinstance(step, Step):
                step = await step
            if step is not NEXT:
                break
        return kept

    def _sub_plan(self, loc: Location) -> tuple[Phase, ...]:
        kept = self._sub_plans.get(id(loc))
        if kept is None or kept[0] is not loc:
            # (mirror is for main requests only, as nginx's: try_files is the
            # precontent phase a subrequest runs)
            handlers = (make(self, loc) for name, make in PHASES
                        if name in ("rewrite", "access", "try-files", "content"))
            kept = self._sub_plans[id(loc)] = (loc, tuple(h for h in handlers
                                                          if h is not None))
        return kept[1]

    def plan(self, loc: Location) -> tuple[Phase, ...]:
        """The handlers ``loc`` runs, in the order of ``PHASES``."""
        handlers = (handler(self, loc) for _, handler in PHASES)
        return tuple(h for h in handlers if h is not None)

    # --- error_page and internal redirects -------------------------------------------------

    def fail(self, conn: ClientSide, req: Request, loc: Location,
             status: int) -> Outcome:
        """Answer ``status``, through ``error_page`` when one matches: once per request
        with ``recursive_error_pages off``; with ``on``, again and again, until the
        redirect bound answers a cycle with 500 (nginx's r->uri_changes)."""
        s = loc.settings
        # (most locations have no error_page: no call for them)
        page = s.error_page_for(status) if s.error_page and not req.redirected else None
        if page is None:
            # an error while an error page answers is answered itself, whatever code
            # the page imposed (nginx's special response sets r->err_status anew): a
            # denied or protected page is a 403 or 401, never the page's =200
            req.override = None
            self.respond.respond_error(conn, req, loc, status)
            return DONE
        if status in ENDS_CONNECTION:  # (as when no error_page applies)
            conn.close_after_response()
        if page.keep_target_status is False and page.code != 200:
            req.expect_tested()  # (ngx_http_send_error_page: the page's status is its own)
        if not s.recursive_error_pages:
            req.redirected = True
        target = page.target_template.render(req)
        req.override = None if page.keep_target_status else (page.code or status)
        if target.startswith(("http://", "https://")):
            code = page.code if page.code in REDIRECTS else 302
            req.override = None
            self.respond.redirect(conn, req, loc, code, target, any_code=True)
            return DONE
        return self.internal(conn, req, loc, target)

    def refuse(self, conn: ClientSide, req: Request, loc: Location,
               status: int) -> Outcome:
        """The access phase's refusal: a 401 waits ``auth_delay`` first, whichever check
        refused, so that a guess that failed and one that nearly passed take the same
        time (nginx's ngx_http_core_auth_delay)."""
        delay = loc.settings.auth_delay
        if status != 401 or not delay:
            return self.fail(conn, req, loc, status)
        return self._delayed(conn, req, loc, delay)

    async def _delayed(self, conn: ClientSide, req: Request, loc: Location,
                       delay: float) -> Step:
        self.w.log.info("delaying unauthorized request", conn, req)
        await asyncio.sleep(delay)
        return await finished(self.fail(conn, req, loc, 401))

    def internal_only(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        """``internal``: a request that no redirect or rewrite brought here gets 404."""
        if req.uri_changes or req.redirected or req.rewritten:
            return NEXT
        return self.fail(conn, req, loc, 404)

    def _count_change(self, conn: ClientSide, req: Request, loc: Location) -> bool:
        """One more change of location (nginx's r->uri_changes); False, with a 500
        answered, past the limit: a cycle."""
        req.uri_changes += 1
        if req.rewritten == STAYED:
            req.rewritten = CHANGED  # proxy_pass's URI part applies in the next location
        if req.uri_changes > MAX_REDIRECTS:
            self.w.log.error(f'rewrite or internal redirection cycle while processing '
                             f'"{req.uri}"', conn, req)
            req.override = None  # (a 500 whatever code an error page imposed, as nginx's)
            self.respond.respond_error(conn, req, loc, 500)
            return False
        return True

    def relocate(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        """nginx's post-rewrite phase: a rewrite changed the URI, and the location is
        found again for it (with its own access rules)."""
        if not self._count_change(conn, req, loc):
            return DONE
        return self._find(conn, req)

    def _find(self, conn: ClientSide, req: Request) -> Outcome:
        return self._find_in(conn, req, req.server)

    def _locate(self, req: Request) -> Location:
        """The location of the request's URI (its captures set), else the server's
        fallback."""
        return self._locate_in(req, req.server)

    def redirect_as_is(self, conn: ClientSide, req: Request, loc: Location,
                       target: str) -> Outcome:
        """try_files' and index's internal redirect: the method stays."""
        return self.internal(conn, req, loc, target, keep_method=True)

    def internal(self, conn: ClientSide, req: Request, loc: Location,
                 target: str, keep_method: bool = False) -> Outcome:
        """An internal redirect to a URI or named location: error_page's (a URI makes
        the request a GET, as nginx's ngx_http_send_error_page), or with
        ``keep_method`` try_files' and index's (nginx's ngx_http_internal_redirect). To a
        URI the server's rewrites run again first, as nginx's."""
        server = req.server
        assert server is not None
        if not self._count_change(conn, req, loc):
            return DONE
        if target.startswith("@"):
            named = server.locations.named.get(target)
            if named is None:  # (loaded with a [warn], as nginx loads it)
                self.w.log.error(f'could not find named location "{target}"', conn, req)
                req.override = None  # (nginx finalizes with 500, whatever error_page said)
                self.respond.respond_error(conn, req, loc, 500)
                return DONE
            return self.walk(conn, req, named, 0)
        path, mark, args = target.partition("?")
        try:
            req.uri = normalize(path)
        except ProtocolError:
            self.respond.respond_error(conn, req, loc, 500)
            return DONE
        # the target's arguments replace the request's, none when it has none: nginx's
        # ngx_http_internal_redirect (try_files' fallback, error_page, X-Accel-Redirect;
        # the index module passes the request's own on, as its target here carries)
        req.args = args
        req.args_found = bool(mark)
        req.uri_remade = True
        if not keep_method and req.method not in ("GET", "HEAD"):
            req.method = "GET"
        # an internal redirect starts over at the server rewrite phase (nginx's
        # ngx_http_handler for an internal request), a named location does not
        if server.rewrites:
            step = self.rewrite.server_phase(conn, req, server)
            if step is not NEXT:
                return step
        return self._find(conn, req)


def _uses_auth_delay(worker: Runtime) -> bool:
    return any(loc is not None and loc.settings.auth_delay
               for server in worker.config.servers
               for loc in (server.fallback, *server.locations.all()))


# The phases from find-config's location checks on, in nginx's order; each names the
# handler a location needs in that phase, or None (then its plan leaves the phase out).
PHASES: tuple[tuple[str, Callable[[Phases, Location], Phase | None]], ...] = (
    ("find-config", lambda p, loc: p.internal_only if loc.internal else None),
    # (nginx pushes in its HTTP/2 header filter, with r's last location's settings: named
    # here, where each location a request reaches is found, and sent with the head)
    ("find-config", lambda p, loc: p.push.handler(loc)),
    ("rewrite", lambda p, loc: p.rewrite.handler(loc)),
    # (nginx runs a phase's handlers last module first: degradation, realip, the limits)
    ("preaccess", lambda p, loc: p.degradation.handler(loc)),
    ("preaccess", lambda p, loc: p.realip.handler(loc)),  # before limits, as nginx
    ("preaccess", lambda p, loc: p.limits.handler(loc)),
    ("access", lambda p, loc: p.access.handler(loc)),
    # the precontent phase: try_files first, then mirror (nginx runs a phase's handlers
    # last module first)
    ("try-files", lambda p, loc: p.content.static.try_files if loc.try_files is not None
     else None),
    ("precontent", lambda p, loc: p.mirror.handler(loc)),
    ("content", lambda p, loc: p.content.handler(loc)),
)
