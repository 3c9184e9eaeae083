"""Local responses: error pages, redirects, ``return``'s text, with the headers
``add_header`` and ``expires`` add (nginx's special response and headers filter)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastgate import userid
from fastgate._wire import field_value
from fastgate.browsers import is_msie
from fastgate.errors import OutputFailed
from fastgate.http.engine import Headers
from fastgate.proxy import charset, xslt
from fastgate.proxy.accel import carry
from fastgate.proxy.capture import Capture
from fastgate.proxy.headers import (
    ADD_HEADER_STATUSES,
    absolute,
    expires_headers,
    is_safe_value,
)
from fastgate.proxy.held import Failed, Held
from fastgate.proxy.output import own_page
from fastgate.proxy.output import start as output_start
from fastgate.proxy.page import may_chunk, write_whole
from fastgate.proxy.ranges import http_time, not_modified
from fastgate.proxy.status import (
    ENDS_CONNECTION,
    MSIE_PADDING,
    SPECIAL,
    error_body,
    pads,
    reason,
    refresh_page,
)
from fastgate.proxy.steps import DONE
from fastgate.variables import SENT_TRAILERS_KEY

if TYPE_CHECKING:
    from fastgate.config.model import Location, Settings
    from fastgate.http.exchange import Exchange
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.capture import Fetch
    from fastgate.proxy.output import Output
    from fastgate.proxy.request import Request
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.steps import Fail, Outcome, Step
    from fastgate.variables import Template

REDIRECTS = frozenset({301, 302, 303, 307, 308})


def final_status(req: Request, status: int) -> int:
    """The status the client sees: the one an ``error_page =code`` imposes, if any."""
    return req.override if req.override is not None else status


# nginx's types where the configuration names none (ngx_http_core_default_types)
DEFAULT_TYPES = {"html": "text/html", "gif": "image/gif", "jpg": "image/jpeg"}


class Responder:
    """Writes responses the gateway makes itself."""

    def __init__(self, worker: Runtime) -> None:
        self.w = worker

    def send(self, conn: ClientSide, req: Request, loc: Location | None,
             status: int, body: bytes, content_type: bytes | None,
             extra: Headers | None = None, unframed: bool = False,
             filtered: bool = False) -> None:
        """A response of fastgate's own; ``unframed``: without a Content-Length (the
        engine frames it, chunked), as nginx sends a body a filter has changed;
        ``filtered``: the body has been through the location's filters
        (``proxy.output``), and ``content_type`` is as they left it."""
        if req.override is not None:  # final_status, inline: every page of ours
            status = req.override
        req.status = status
        headers: Headers = [(b"Server", b"fastgate"), (b"Date", self.w.http_date())]
        if content_type is not None:
            headers.append((b"Content-Type", content_type))
        if extra:
            headers.extend(extra)
        if req.carried is not None:  # an X-Accel-Redirect's: a page's type stays its own
            headers = carry(headers, req.carried, False, status >= 300)
        challenge = req.challenge
        if status == 401 and challenge is not None:
            if isinstance(challenge, tuple):  # (more than one check refused)
                headers.extend((b"WWW-Authenticate", c) for c in challenge)
            else:
                headers.append((b"WWW-Authenticate", challenge))
        if loc is not None:
            s = loc.settings
            if s.add_header or s.expires is not None:  # (no call where there are none)
                self.add_headers(req, loc, status, headers)
            if s.sets_userid:
                headers.extend(userid.set_cookie(req, s, self.client_error(req)))
            if s.charset is not None and not s.recodes:
                headers = charset.apply(headers, status, s, req)
        head_only = req.method == "HEAD" or status in (204, 304)
        exchange = conn.exchange
        assert exchange is not None
        chunks = loc is None or may_chunk(req, loc.settings)
        chunked = (loc is not None and bool(loc.settings.add_trailer) and chunks
                   and self.expects_trailers(req, loc, status, head_only))
        length: int | None = None if chunked or unframed else len(body)
        if loc is not None and loc.settings.filters_output and not filtered:
            # nginx's body filters and SSI see its own responses too (its error pages)
            try:
                headers, body, framed = own_page(req, loc.settings, headers, body, status,
                                                 head_only, self.w.config.variables,
                                                 self.client_error(req))
            except OutputFailed as e:  # (a memcached value that does not inflate)
                self.client_error(req)(str(e))
                exchange.abort()
                return
            if not framed:
                length = None  # as nginx: the length is cleared, the body chunked
        write_whole(exchange, req, status, reason(status), headers, length, body, head_only,
                    self.trailers(req, loc) if chunked and loc is not None else None,
                    chunks)

    def page(self, conn: ClientSide, req: Request, loc: Location, status: int,
             body: bytes, kind: bytes, extra: Headers, fetch: Fetch, fail: Fail) -> Outcome:
        """A page of fastgate's own with a body (``return``'s text, a status page,
        empty_gif): through SSI and between the additions' bodies where they apply —
        all had before anything is sent, the same bytes as nginx's, framed the same —
        else as ``send`` sends it. A 200 to a main request goes through the
        not-modified filter first, as nginx's: its Last-Modified (empty_gif's) or none,
        and no ETag, answer the request's conditions (a 304, or a 412 ``fail`` answers
        through error_page)."""
        s = loc.settings
        if final_status(req, status) == 200:
            lm = next((v for n, v in extra if n == b"Last-Modified"), None)
            refused = self.unmodified(conn, req, loc, http_time(lm), extra, fail)
            if refused is not None:
                return refused
        if s.xslt_stylesheet and not isinstance(conn, Held):
            # (a return's text in the rewrite phase: no content handler held it)
            shown = [(b"Content-Type", kind), *extra]
            if xslt.applies(s, final_status(req, status), shown):
                try:
                    shown, body = xslt.apply_sheets(req, s, shown, body,
                                                    self.client_error(req))
                except Failed:
                    req.status = 0
                    self.respond_error(conn, req, loc, 500)
                    return DONE
                kind = next(v for n, v in shown if n == b"Content-Type")
                extra = [(n, v) for n, v in shown if n != b"Content-Type"]
        if s.add_before_body or s.add_after_body or s.ssi:
            out, headers, length = output_start(
                req, s, [(b"Content-Type", kind), *extra], len(body),
                final_status(req, status), req.method == "HEAD", conn, fetch,
                self.w.config.variables, self.client_error(req))
            if out is not None:
                return self._filtered(conn, req, loc, status, body, headers, out)
            if length < 0:  # (a HEAD: the headers as if it came)
                self.send(conn, req, loc, status, body, kind, extra, unframed=True)
                return DONE
        self.send(conn, req, loc, status, body, kind, extra)
        return DONE

    def unmodified(self, conn: ClientSide, req: Request, loc: Location, mtime: int | None,
                   extra: Headers, fail: Fail) -> Outcome | None:
        """nginx's not-modified filter over a 200 of fastgate's own (no ETag; a
        Last-Modified of ``mtime``, if any, in ``extra``): None to go on, else the 304
        (no type, no length) or the 412 it answers. A subrequest's answer is whole. As
        nginx's, which ends the request in error after a 412, the connection ends after
        it."""
        if isinstance(conn, Capture):
            return None
        verdict = not_modified(req, loc.settings.if_modified_since, mtime, None)
        if verdict == 412:
            conn.close_after_response()
            return fail(conn, req, loc, 412)
        if verdict == 304:
            self.send(conn, req, loc, 304, b"", None, extra)
            return DONE
        return None

    async def _filtered(self, conn: ClientSide, req: Request, loc: Location, status: int,
                        body: bytes, headers: Headers, out: Output) -> Step:
        try:
            text = await out.begin() + await out.feed(body) + await out.end()
        except OutputFailed as e:
            self.client_error(req)(str(e))
            conn.abort()
            return DONE
        kind = next(v for n, v in headers if n.lower() == b"content-type")
        rest = [(n, v) for n, v in headers if n.lower() != b"content-type"]
        self.send(conn, req, loc, status, text, kind, rest, unframed=True, filtered=True)
        return DONE

    @staticmethod
    def content_type(req: Request, s: Settings) -> bytes:
        """The Content-Type of a ``return``'s answer, as nginx's
        ngx_http_set_content_type: the request URI's extension looked up in ``types``
        (nginx's built-in html, gif and jpg without one), else ``default_type``."""
        last = req.uri.rpartition("/")[2]
        dot = last.rfind(".")
        if dot >= 0:
            ext = last[dot + 1:].lower()
            found = (s.types if s.types is not None else DEFAULT_TYPES).get(ext)
            if found is not None:
                return found.encode("latin-1")
        return s.default_type.encode("latin-1")

    async def client_took_it(self, conn: ClientSide, req: Request, exchange: Exchange,
                             timeout: float) -> bool:
        """Wait, the exchange being paused, until the client takes more of a response's
        body; False when the response must stop: the client went away, or took nothing
        for ``timeout`` (``send_timeout``: logged as nginx, and the connection cut).
        (Callers look at ``exchange.paused()`` first: no coroutine per piece.)"""
        try:
            await exchange.wait_writable(timeout)
        except TimeoutError:
            self.w.log.info("client timed out (110: Connection timed out) while sending "
                            "to client", conn, req)
            exchange.abort()
            return False
        except Exception:  # the client went away mid-response
            return False
        return True

    def client_error(self, req: Request) -> Callable[[str], None]:
        """An error the client caused, logged against its request (a bad cookie)."""
        return lambda message: self.w.log.error(message, req.connection, req)

    def respond_error(self, conn: ClientSide, req: Request, loc: Location | None,
                      status: int) -> None:
        if isinstance(conn, Capture):  # (nginx's special response: SSI's stub may replace it)
            conn.page = True
        if status in ENDS_CONNECTION:
            conn.close_after_response()
        shown = status if req.override is None else req.override
        body = self.error_page(req, loc, shown)  # (none: nginx has no page, no type)
        if shown in SPECIAL:  # 400 with nginx's text
            self.send(conn, req, loc, 400, body, b"text/html")
            return
        self.send(conn, req, loc, status, body, b"text/html" if body else None)

    @staticmethod
    def error_page(req: Request, loc: Location | None, status: int) -> bytes:
        """nginx's page for ``status``, padded for MSIE and Chrome under
        ``msie_padding`` (on by default, as nginx's; so where no location was found)."""
        body = error_body(status)
        if body and (loc is None or loc.settings.msie_padding) and pads(
                status, req.header(b"user-agent")):
            return body + MSIE_PADDING
        return body

    def redirect(self, conn: ClientSide, req: Request, loc: Location, code: int,
                 url: str, any_code: bool = False) -> None:
        """A redirect of fastgate's own to ``url`` (a path is made absolute, as
        ``absolute_redirect`` says). Under ``msie_refresh``, MSIE is sent a 200 page
        that refreshes to the URL as written, for a 301 or 302 — or any code:
        ``any_code``, error_page's redirects (nginx's ngx_http_send_error_page)."""
        if (loc.settings.msie_refresh and (any_code or code in (301, 302))
                and is_msie(req.header(b"user-agent"))):
            if isinstance(conn, Capture):
                conn.page = True
            req.override = None  # (nginx's r->err_status = NGX_HTTP_OK)
            self.send(conn, req, loc, 200,
                      refresh_page(url.encode("utf-8", "surrogateescape")), b"text/html")
            return
        if url.startswith("/"):
            url = absolute(loc.settings, req, url)
        if not is_safe_value(url):
            self.w.log.error("redirect location holds a control character", conn, req)
            self.respond_error(conn, req, loc, 500)
            return
        if isinstance(conn, Capture):
            conn.page = True
        self.send(conn, req, loc, code, error_body(code), b"text/html",
                  [(b"Location", url.encode("utf-8", "surrogateescape"))])

    def add_headers(self, req: Request, loc: Location, status: int,
                    headers: Headers) -> None:
        """``expires``'s and ``add_header``'s headers for a response of ``status``,
        appended to ``headers``: the response's as they stand, which ``$sent_http_NAME``
        reads while they render (nginx's headers filter runs with the Content-Type
        set, and each header it adds is seen by the next: h5bp's ``map
        $sent_http_content_type`` idiom)."""
        req.sent_headers = headers
        headers.extend(self.expires_for(req, loc, status))
        self.headers_added(req, loc, status, headers)

    @staticmethod
    def expires_for(req: Request, loc: Location, status: int) -> Headers:
        """``expires``' Expires and Cache-Control for a response of ``status`` (none:
        the response keeps its own)."""
        expires = loc.settings.expires
        if expires is None or status not in ADD_HEADER_STATUSES:
            return []
        return expires_headers(expires, time.time(), req)

    @staticmethod
    def expects_trailers(req: Request, loc: Location, status: int, head_only: bool) -> bool:
        """``add_trailer`` applies to this response: one of its trailers is for this
        status, there is a body, and the client speaks HTTP/1.1 — then the body goes
        chunked whatever its length, for the trailers to follow (nginx's
        r->expect_trailers). Kept on ``req`` for the response's end."""
        req.expect_trailers = (
            not head_only and 200 <= status and status not in (204, 304)
            and req.head.version == b"1.1"
            and any(always or status in ADD_HEADER_STATUSES
                    for _, _, always in loc.settings.add_trailer))
        return req.expect_trailers

    @staticmethod
    def trailers(req: Request, loc: Location, upstream: Headers | None = None
                 ) -> Headers | None:
        """The response's trailers: ``upstream``'s (an application's), then
        ``add_trailer``'s rendered as the body ends (``$request_time`` and the like are
        final then; those that render empty are left out). Kept for
        ``$sent_trailer_NAME``."""
        added = _rendered(req, loc.settings.add_trailer, req.status, []) \
            if req.expect_trailers else None
        out = [*upstream, *(added or ())] if upstream else added
        if out:
            req.memo[SENT_TRAILERS_KEY] = out
        return out

    @staticmethod
    def headers_added(req: Request, loc: Location, status: int, out: Headers) -> None:
        """``add_header``'s headers for a response of ``status``, appended to ``out``
        (the response's, which ``$sent_http_NAME`` reads: ``add_headers``)."""
        _rendered(req, loc.settings.add_header, status, out)


def _rendered(req: Request, fields: tuple[tuple[str, Template, bool], ...],
              status: int, out: Headers) -> Headers:
    """``add_header``/``add_trailer`` fields for a response of ``status`` (theirs, or
    any with ``always``), appended to ``out`` one by one, each seen by the next; one
    that renders empty, or would carry a control byte, is left out."""
    for name, template, always in fields:
        if always or status in ADD_HEADER_STATUSES:
            value = template.render(req)
            raw = field_value(value) if value else None
            if raw is not None:
                out.append((name.encode("latin-1"), raw))
    return out
