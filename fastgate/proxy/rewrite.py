"""The rewrite module's phases (server rewrite, location rewrite): ``return``,
``rewrite``, ``set``, ``break`` and ``if``, run in the order written, as nginx's script
engine runs them. It runs before access, as in nginx: a location with both ``return``
and ``auth_jwt`` is not protected (``fastgate -t`` warns), and a ``rewrite ... last``
sends the request to the location its new URI finds, with that location's access rules.

What nginx does with an ``if`` in a location, fastgate does too ("if is evil"): when
the condition holds, the request takes the if's configuration — the location's, with
the if's own ``add_header``, ``proxy_pass``... over it, but no ``try_files`` — and the
last ``if`` that held wins.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

from fastgate.config.model import Break, If, Return, Rewrite, SetVar
from fastgate.http.uri import escape_capture, unescape_redirect
from fastgate.proxy import symlinks
from fastgate.proxy.respond import REDIRECTS, final_status
from fastgate.proxy.steps import DONE, NEXT
from fastgate.variables import set_named_captures, set_user_variable

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastgate.config.model import Condition, Location, RewriteOp, Server, Settings
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.capture import Fetch
    from fastgate.proxy.request import Request
    from fastgate.proxy.respond import Responder
    from fastgate.proxy.steps import Fail, Outcome, Phase
    from fastgate.variables import Template

    # (conn, req, loc) → the outcome of going on elsewhere
    Elsewhere = Callable[[ClientSide, Request, Location], Outcome]

# Request.rewritten: the URI is the client's (0), a rewrite changed it (1), or a
# rewrite changed it and the request stays in this location (2: "break"), where
# proxy_pass sends the whole new URI, its own URI part ignored (as nginx)
CHANGED, STAYED = 1, 2


class _Run:
    """One run of a program: what it did so far."""

    __slots__ = ("uri_changed", "stop", "nested", "quote")

    def __init__(self) -> None:
        self.uri_changed = False
        self.stop = False
        self.nested: Location | None = None
        # nginx's e->quote, 1 when its rewrite handler starts and 0 once a rewrite has
        # matched (its regex end code): until then the captures a set value or an if's
        # operand holds are escaped when the request's URI was (escape_capture)
        self.quote = True


class RewriteModule:
    def __init__(self, respond: Responder, fail: Fail, relocate: Elsewhere,
                 nested: Elsewhere, fetch: Fetch) -> None:
        self.respond = respond
        self.fail = fail
        self.fetch = fetch  # a subrequest's answer (add_*_body, SSI's include)
        self.relocate = relocate  # the URI changed: find the location again
        self.nested = nested  # an if's configuration: its phases after rewrite

    def handler(self, loc: Location) -> Phase | None:
        return self.location_phase if loc.rewrites else None

    def location_phase(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        run = _Run()
        step = self._execute(conn, req, loc, loc.rewrites, run)
        if step is not None:
            return step
        if run.uri_changed:  # nginx's post-rewrite phase
            return self.relocate(conn, req, loc)
        if run.nested is not None:
            return self.nested(conn, req, run.nested)
        return NEXT

    def server_phase(self, conn: ClientSide, req: Request, server: Server) -> Outcome:
        """The server rewrite phase; a changed URI is simply the one the location is
        found for next. The request reads the server's own settings until a location is
        found (nginx's r->loc_conf is the server's then): an ``if (-f
        $document_root/maintenance.html)``, ``$request_filename``, the log of a request
        answered here."""
        loc = server.fallback
        assert loc is not None
        req.location = loc
        step = self._execute(conn, req, loc, server.rewrites, _Run())
        return NEXT if step is None else step

    def _execute(self, conn: ClientSide, req: Request, loc: Location,
                 ops: tuple[RewriteOp, ...], run: _Run) -> Outcome | None:
        """Run ``ops``; the outcome when one answered, else None (``run`` says what
        changed and whether the set stopped). With ``rewrite_log on`` (the settings
        of the location the phase runs for, as nginx's script engine takes them) each
        regex's match or miss and each URI made is logged at notice, in nginx's words."""
        told = loc.settings.rewrite_log
        log = self.respond.w.log
        for op in ops:
            kind = type(op)
            if kind is SetVar:
                assert isinstance(op, SetVar)
                value = _escaped_captures(req, op.value) if run.quote else op.value.render(req)
                if op.name == "args":
                    req.args = value
                    req.args_found = req.uri_remade = True
                else:
                    set_user_variable(req, op.name, value)
                    if op.name == "limit_rate":
                        req.in_task = True  # (the response is paced: proxy.rate)
            elif kind is Rewrite:
                assert isinstance(op, Rewrite)
                m = op.regex.search(req.uri)
                if m is None:
                    if told:
                        log.write("notice", f'"{op.pattern}" does not match "{req.uri}"',
                                  conn, req)
                    req.captures = ()  # (nginx's regex script code: $1... are gone)
                    continue
                if told:
                    log.write("notice", f'"{op.pattern}" matches "{req.uri}"', conn, req)
                req.captures = (m.group(0), *m.groups())
                set_named_captures(req, m)
                if op.redirect:
                    return self._redirect(conn, req, run.nested or loc, op,
                                          _redirect_url(req, op), told)
                uri = op.replacement.render(req)
                # (the arguments change, and are logged, before the URI is checked, as
                # in nginx's regex end code)
                if op.args is not None:
                    new = _escaped_captures(req, op.args)
                    req.args = f"{new}&{req.args}" if op.keep_args and req.args else new
                    req.args_found = True
                elif not op.keep_args:
                    # (nginx keeps r->args.data, its length 0: found where it was)
                    req.args_found = req.args_found or bool(req.args)
                    req.args = ""
                if told:
                    log.write("notice", f'rewritten data: "{uri}", args: "{req.args}"',
                              conn, req)
                if not uri:
                    log.write("error", "the rewritten URI has a zero length", conn, req)
                    return self.fail(conn, req, run.nested or loc, 500)
                req.uri = uri
                req.uri_remade = True
                run.uri_changed = True
                run.quote = False
                req.rewritten = CHANGED
                if op.flag == "last":
                    run.stop = True
                    return None
                if op.flag == "break":
                    _break(req, run)
                    return None
            elif kind is Return:
                assert isinstance(op, Return)
                return self.answer(conn, req, run.nested or loc, op)
            elif kind is Break:
                _break(req, run)
                return None
            elif kind is If:
                assert isinstance(op, If)
                if not holds(req, op.condition, (run.nested or loc).settings,
                             lambda level, text: log.write(level, text, conn, req), told,
                             run.quote):
                    continue
                if op.location is not None:
                    run.nested = op.location
                step = self._execute(conn, req, loc, op.body, run)
                if step is not None or run.stop:
                    return step
        return None

    def _redirect(self, conn: ClientSide, req: Request, loc: Location, op: Rewrite,
                  url: str, told: bool) -> Outcome:
        if op.keep_args and req.args:
            # (nginx's choice of "&" is the written "?", not one a variable brought)
            url += ("&" if op.question else "?") + req.args
        if told:
            self.respond.w.log.write("notice", f'rewritten redirect: "{url}"', conn, req)
        self.respond.redirect(conn, req, loc, op.redirect, url)
        return DONE

    def answer(self, conn: ClientSide, req: Request, loc: Location,
               ret: Return) -> Outcome:
        """``return code [text|URL]``: the request ends here."""
        code = ret.code
        if code in _CLOSING and ret.text is None:
            # nginx: close the connection without a response (with a text, nginx sends
            # it with that code, as any other: ngx_http_send_response)
            req.status = code
            conn.abort()
            return DONE
        req.status = code  # $status in the text is the code, as nginx sets it first
        if code < 400 or ret.text is not None:
            # nginx answers these through ngx_http_send_response, which discards the
            # body its way: a client that waits for "100 Continue" is told to send it
            # (an error without text is not: nginx's special response marks it tested)
            exchange = conn.exchange
            if exchange is not None and req.head.expect_continue:
                exchange.write(exchange.expect_continue())
        text = ret.text.render(req) if ret.text is not None else None
        if code in REDIRECTS:  # (without a URL: nginx's page, with an empty Location)
            self.respond.redirect(conn, req, loc, code, text or "")
            return DONE
        if text is None and code >= 400:
            return self.fail(conn, req, loc, code)
        # (a variable's undecodable bytes, as $uri's of /%FC, go back as they came)
        body = (text or "").encode("utf-8", "surrogateescape")
        final = final_status(req, code)
        if final == 304:
            # nginx's header filter leaves a 304 the type and the length a 200 would
            # have (the text's, none of it sent; the `if ($http_if_modified_since)
            # { return 304; }` idiom): the engines frame no 304, so the length is named
            self.respond.send(conn, req, loc, code, body,
                              self.respond.content_type(req, loc.settings),
                              [(b"Content-Length", b"%d" % len(body))])
            return DONE
        # with a text or without one, nginx's type for the URI (none on a 204 — as the
        # client sees it: an error_page's =code over a 204 gives it a type)
        kind = None if final == 204 else self.respond.content_type(req, loc.settings)
        if kind is None:
            self.respond.send(conn, req, loc, code, body, kind)
            return DONE
        return self.respond.page(conn, req, loc, code, body, kind, [], self.fetch, self.fail)


# codes ngx_http_finalize_request answers by closing the connection: 444 (nginx's own),
# 408 and 499 (request timed out, client closed)
_CLOSING = frozenset({444, 408, 499})


def _redirect_url(req: Request, op: Rewrite) -> str:
    """A redirecting rewrite's URL as nginx makes it: its captures escaped as
    ``_escaped_captures`` says, then the whole unescaped as a redirect is
    (ngx_http_script_regex_end_code)."""
    return unescape_redirect(_escaped_captures(req, op.replacement))


def _escaped_captures(req: Request, template: Template) -> str:
    """``template`` rendered as nginx renders a redirect's URL or the arguments of a
    rewrite: when the request's URI was escaped (or had a "+"), the captures go
    escaped, their text being the decoded URI's — "/s/a%26b" to "q=$1" is "q=a%26b",
    not a second argument."""
    path = req.head.target.split(b"?", 1)[0]
    if b"%" not in path and b"+" not in path:
        return template.render(req)
    captures = req.captures
    req.captures = tuple(c if c is None else escape_capture(c) for c in captures)
    try:
        return template.render(req)
    finally:
        req.captures = captures


def _break(req: Request, run: _Run) -> None:
    """nginx's break (the directive, or rewrite's flag): the set stops, and a URI it
    changed stays in this location."""
    if run.uri_changed:
        run.uri_changed = False
        req.rewritten = STAYED
    run.stop = True


def holds(req: Request, cond: Condition, s: Settings,
          log: Callable[[str, str], None], told: bool = False, quote: bool = False) -> bool:
    """Whether an ``if`` condition holds; a regex sets ``$1``... when it matches and
    clears them when it does not (``~`` and ``!~`` alike, as nginx's), its match or miss
    logged at notice when ``told`` (rewrite_log); a file test looks as the location's
    ``disable_symlinks`` lets it (``log(level, text)``: a failure that is not a missing
    file, as nginx logs it at crit). ``quote``: the captures a compared value or a file
    test's path holds are escaped (nginx's e->quote: see _Run)."""
    op = cond.op
    if op == "=" or op == "!=":
        assert cond.right is not None
        right = _escaped_captures(req, cond.right) if quote else cond.right.render(req)
        return (cond.left.render(req) == right) == (op == "=")
    left = (_escaped_captures(req, cond.left) if quote and op.endswith(("f", "d", "e", "x"))
            else cond.left.render(req))
    if op == "":
        return left != "" and left != "0"
    if cond.regex is not None:
        # as nginx's regex script code: a match (of "~" or "!~") gives $1..., one that
        # does not match takes them away, whichever way the condition then goes
        m = cond.regex.search(left)
        if told:
            log("notice", f'"{cond.pattern}" {"matches" if m else "does not match"} "{left}"')
        if m is None:
            req.captures = ()
            return op.startswith("!")
        req.captures = (m.group(0), *m.groups())
        set_named_captures(req, m)
        return not op.startswith("!")
    # -f -d -e -x, or negated: on the file system, as nginx tests them (and as
    # disable_symlinks lets it look)
    test = op[-1]
    try:
        st = symlinks.file_info(left, s, req)
    except (OSError, ValueError) as e:
        if isinstance(e, OSError) and e.errno not in (
                errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
            log("crit", f'{symlinks.label(s, True)} "{left}" failed ({e.errno}: {e.strerror})')
        return op.startswith("!")
    if test == "f":
        found = stat.S_ISREG(st.st_mode)
    elif test == "d":
        found = stat.S_ISDIR(st.st_mode)
    elif test == "e":
        found = True
    else:
        found = stat.S_ISREG(st.st_mode) and os.access(left, os.X_OK)
    return not found if op.startswith("!") else found
