"""The content handler of ``fastcgi_pass``, ``uwsgi_pass`` and ``scgi_pass``: nginx's
three CGI-family modules, which differ on the wire (``http.fastcgi``, ``http.uwsgi``,
``http.scgi``) and agree on the rest, as here:

- the request's body is read whole first (nginx's default request buffering): in
  memory up to ``client_body_buffer_size`` (``$request_body``), past it in a file with
  no name, framed piece by piece as it is sent;
- the parameters are the location's ``*_param`` in order (``if_not_empty`` ones left out
  when empty), then each client header as ``HTTP_NAME`` — unless a ``*_param HTTP_NAME``
  owns that name (an empty one hides the header: the ``HTTP_PROXY ""`` defence);
- the application's CGI response is relayed: ``Status`` gives the status (else 302 with
  a ``Location``, else 200; uwsgi and SCGI may send an HTTP status line instead), through
  the same ``response_head`` as ``proxy_pass`` but leaving a relative Location as nginx
  leaves it; FastCGI's STDERR is logged; an application that stops early, or sends less
  than its Content-Length, cuts the response.

One connection per request, closed after it; one server of a group is tried. Always on
the task path: it is not the JWT gateway's common exchange."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastgate._wire import ResponseHead
from fastgate.config.tls import TlsError
from fastgate.decimals import decimal
from fastgate.errors import FastgateError, OutputFailed
from fastgate.http import fastcgi, scgi, uwsgi
from fastgate.http.buffered_body import BufferedBody, KeptBodyError
from fastgate.http.cgi import AppConnection, CgiHead
from fastgate.http.engine import ProtocolError
from fastgate.proxy import accel, output, rate, store
from fastgate.proxy._headers import response_head
from fastgate.proxy.failure import TIMED_OUT, unix_connect_failed
from fastgate.proxy.headers import response_drop
from fastgate.proxy.respond import final_status
from fastgate.proxy.status import reason as status_reason
from fastgate.proxy.steps import DONE, Step, finished
from fastgate.variables import RATE_KEY

if TYPE_CHECKING:
    from fastgate.config.model import AppPass, CgiParam, Location, Settings
    from fastgate.http.engine import Headers
    from fastgate.http.exchange import Exchange
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.exchange import UpstreamExchange
    from fastgate.proxy.output import Output
    from fastgate.proxy.rate import Pace
    from fastgate.proxy.request import Request
    from fastgate.proxy.respond import Responder
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.steps import Fail, Outcome
    from fastgate.proxy.store import Store
    from fastgate.proxy.upstream import Peer
    from fastgate.variables import Template

# nginx's *_hide_headers of the three modules (Status is read, never passed), and
# Content-Length: the client engine frames the body
_HIDDEN = frozenset({b"status", b"content-length", b"x-accel-expires", b"x-accel-redirect",
                     b"x-accel-limit-rate", b"x-accel-buffering", b"x-accel-charset"})


@dataclass(frozen=True, slots=True)
class Plan:
    """A location's settings of its module (``fastcgi_*``, ``uwsgi_*`` or ``scgi_*``),
    read once."""

    kind: str
    params: tuple[CgiParam, ...]
    pass_headers: bool
    pass_body: bool
    connect_timeout: float
    send_timeout: float
    read_timeout: float
    intercept_errors: bool
    drop: tuple[bytes, ...]
    buffer_size: int
    store: Template | bool  # *_store: off, under root, or a path
    store_access: int
    ignore_headers: frozenset[str]
    buffering: bool  # (unbuffered: no limit_rate, as nginx's)
    socket_keepalive: bool

    @classmethod
    def of(cls, kind: str, s: Settings) -> Plan:
        """``kind``'s settings (``Settings.<kind>_<name>`` for each of ``SETTINGS``)."""
        got = {name: getattr(s, f"{kind}_{name}") for name in SETTINGS}
        return cls(kind, got["param"], got["pass_request_headers"], got["pass_request_body"],
                   got["connect_timeout"], got["send_timeout"], got["read_timeout"],
                   got["intercept_errors"],
                   response_drop(got["hide_header"], got["pass_header"], _HIDDEN),
                   got["buffer_size"], got["store"], got["store_access"],
                   got["ignore_headers"], got["buffering"], got["socket_keepalive"])


# the settings every CGI-family module has under its prefix, read by Plan.of
KINDS = ("fastcgi", "uwsgi", "scgi")
SETTINGS = ("param", "pass_request_headers", "pass_request_body", "connect_timeout",
            "send_timeout", "read_timeout", "intercept_errors", "hide_header", "pass_header",
            "buffer_size", "store", "store_access", "ignore_headers", "buffering",
            "socket_keepalive")


def params(req: Request, plan: Plan) -> list[tuple[bytes, bytes]]:
    """What the application gets as its environment, in nginx's order."""
    out: list[tuple[bytes, bytes]] = []
    owned: set[bytes] = set()
    for p in plan.params:
        if p.name.startswith(b"HTTP_") and len(p.name) > 5:
            owned.add(p.name[5:].lower())
            if not p.value.source:
                continue  # nginx: an empty HTTP_ parameter only hides the header
        value = p.value.render(req).encode("utf-8", "surrogateescape")
        if p.if_not_empty and not value:
            continue
        out.append((p.name, value))
    if plan.pass_headers:
        for name, value in req.head.headers:
            key = name.lower().replace(b"-", b"_")
            if key in owned:
                continue
            out.append((b"HTTP_" + key.upper(), value))
    return out


def request_bytes(req: Request, plan: Plan, s: Settings, body: bytes | BufferedBody) -> bytes:
    """The request as the application's protocol frames it (uwsgi.TooBig: it cannot);
    for a body in a file, what comes before it (``body_pieces`` frames the rest)."""
    env = params(req, plan)
    kept = body if isinstance(body, bytes) else b""
    if plan.kind == "fastcgi":
        if isinstance(body, BufferedBody):
            return fastcgi.request_head(env, False)
        return fastcgi.request(env, kept, False)
    if plan.kind == "uwsgi":
        return uwsgi.request(env, kept, s.uwsgi_modifier1, s.uwsgi_modifier2,
                             s.uwsgi_string.encode("utf-8", "surrogateescape"))
    if isinstance(body, BufferedBody):
        return scgi.request_head(env, body.size)
    return scgi.request(env, kept)


def body_pieces(kind: str, body: BufferedBody) -> Iterator[bytes]:
    """A body kept in a file, read back and framed as the protocol carries it: FastCGI
    in STDIN records, ended by an empty one; uwsgi and SCGI as it is (KeptBodyError when
    the file cannot be read)."""
    if kind == "fastcgi":  # (a piece a record: as a body in memory is cut)
        for piece in body.pieces(fastcgi.MAX_CONTENT):
            yield fastcgi.record(fastcgi.STDIN, piece)
    else:
        yield from body.pieces()
    if kind == "fastcgi":
        yield fastcgi.record(fastcgi.STDIN)


class _Gone(FastgateError):
    """The application closed the connection before its response was whole."""


class _Output:
    """The application's output as the response's bytes: FastCGI's STDOUT records (its
    STDERR logged, END_REQUEST the end), or uwsgi's and SCGI's raw stream (the end is
    the connection's)."""

    def __init__(self, kind: str) -> None:
        self.records = fastcgi.Records() if kind == "fastcgi" else None
        self.ended = False

    def feed(self, data: bytes, stderr: list[str]) -> bytes:
        if self.records is None:
            return data
        out = []
        for kind, content in self.records.feed(data):
            if kind == fastcgi.STDOUT:
                out.append(content)
            elif kind == fastcgi.STDERR:
                stderr.append(content.decode("utf-8", "replace").rstrip("\r\n"))
            elif kind == fastcgi.END_REQUEST:
                fastcgi.end_status(content)
                self.ended = True
        return b"".join(out)

    def closed(self) -> bool:
        """The connection ended: whether that was the response's end."""
        return self.records is None


class CgiModule:
    """The content handler of locations with ``fastcgi_pass``, ``uwsgi_pass`` or
    ``scgi_pass``."""

    def __init__(self, worker: Runtime, respond: Responder, upstream: UpstreamExchange,
                 fail: Fail) -> None:
        self.w = worker
        self.respond = respond
        self.upstream = upstream  # reads the client's body as proxy_pass does
        self.fail = fail
        self._plans: dict[int, tuple[Location, Plan]] = {}

    def __call__(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        return self._exchange(conn, req, loc)

    def plan(self, loc: Location) -> Plan:
        kept = self._plans.get(id(loc))
        if kept is None or kept[0] is not loc:
            cp = loc.app_pass
            assert cp is not None
            kept = self._plans[id(loc)] = (loc, Plan.of(cp.kind, loc.settings))
        return kept[1]

    async def _exchange(self, conn: ClientSide, req: Request, loc: Location) -> Step:
        kept = req.body_buffer  # read already: a mirror's, or before an internal redirect
        if kept is not None or not self.upstream.reads_body(req, loc.settings):
            return await self._with_body(conn, req, loc, kept or b"")
        got = await self.upstream.buffer_body(conn, req, loc)
        if got is None:
            return DONE  # reading it failed, and that has been answered
        req.body_buffer = got  # ($request_body, and for a location an error_page names)
        try:
            return await self._with_body(conn, req, loc, got)
        finally:
            if isinstance(got, BufferedBody):
                got.close()
                req.body_buffer = None

    async def _with_body(self, conn: ClientSide, req: Request, loc: Location,
                         got: bytes | BufferedBody) -> Step:
        plan = self.plan(loc)
        body = got if plan.pass_body else b""
        try:
            data = request_bytes(req, plan, loc.settings, body)
        except uwsgi.TooBig as e:
            self.w.log.error(str(e), conn, req)
            return await finished(self.fail(conn, req, loc, 500))
        rest = body if isinstance(body, BufferedBody) else None
        return await self.talk(
            conn, req, loc, plan.connect_timeout, plan.socket_keepalive,
            lambda app, peer, started: self._run(conn, req, loc, plan, peer, app, data,
                                                 started, rest))

    async def talk(self, conn: ClientSide, req: Request, loc: Location, timeout: float,
                   keepalive: bool,
                   exchange: Callable[[AppConnection, Peer | None, float], Awaitable[Step]],
                   target: AppPass | None = None) -> Step:
        """``exchange`` over a connection to the location's application (``target``:
        its pass made concrete for this request already; ``keepalive``: the module's
        ``*_socket_keepalive``), with the server and when connecting began, the
        connection dropped after; or the answer to a failure to connect."""
        connected = await self._connect(conn, req, loc, timeout, keepalive, target)
        if not isinstance(connected, tuple):
            return connected
        app, peer, started = connected
        try:
            return await exchange(app, peer, started)
        finally:
            app.abort()

    async def target(self, conn: ClientSide, req: Request, loc: Location) -> AppPass | Step:
        """The location's pass as this request goes through it: with variables, what
        they name (``fastcgi_pass $to``); with a MODULE_ssl_name with variables, the
        pool of its name; or the failure's answer."""
        ap = loc.app_pass
        assert ap is not None
        if ap.template is not None:
            found = await self.upstream.dynamic.app_target(conn, req, loc)
            if isinstance(found, int):
                return await finished(self.fail(conn, req, loc, found))
            return found
        if ap.tls_name is not None and ap.unix is None:
            return self.upstream.dynamic.app_named(req, loc, ap)
        return ap

    async def _connect(self, conn: ClientSide, req: Request, loc: Location, timeout: float,
                       keepalive: bool, target: AppPass | None
                       ) -> tuple[AppConnection, Peer | None, float] | Step:
        """A connection to the location's application (a server of its group, or its
        unix socket), the server, and when connecting began; or the failure's answer."""
        ap = target
        if ap is None:
            found = await self.target(conn, req, loc)
            if isinstance(found, Step):
                return found
            ap = found
        peer = self._peer(ap, req)
        if peer is None and ap.unix is None:
            self.w.log.error("no live upstreams while connecting to upstream", conn, req)
            return await finished(self.fail(conn, req, loc, 502))
        started = time.monotonic()
        server = peer.server if peer is not None else None
        if ap.unix is None:
            group = self.w.groups[ap.upstream]
            tls, name = group.tls, group.tls_name
        elif ap.secure:
            try:
                tls, name = self.upstream.dynamic.unix_tls(req, loc, ap)
            except TlsError as e:  # (a file the context needs went away since the load)
                return await self._failed(conn, req, loc, peer, 502, f"{e.message} while "
                                          "SSL handshaking to upstream")
        else:
            tls, name = None, ""
        # (a socket named by the pass, or a server of its group on one)
        unix = ap.unix if server is None else server.unix
        try:
            # (with TLS, suwsgi://, the handshake is part of connecting and its timeout)
            app = await asyncio.wait_for(
                AppConnection.open(server.host if server else "", server.port if server else 0,
                                   unix, tls, name, keepalive),
                timeout)
        except TimeoutError:
            return await self._failed(conn, req, loc, peer, 504,
                                      f"{TIMED_OUT} while connecting to upstream")
        except ssl.SSLCertVerificationError as e:
            return await self._failed(conn, req, loc, peer, 502, f"upstream SSL certificate "
                                      f"verify error: ({e.verify_code}:{e.verify_message}) "
                                      "while SSL handshaking to upstream")
        except ssl.SSLError as e:
            return await self._failed(conn, req, loc, peer, 502, f"SSL_do_handshake() failed "
                                      f"({e.reason or e}) while SSL handshaking to upstream")
        except OSError as e:
            if e.errno is None and tls is not None:
                return await self._failed(conn, req, loc, peer, 502, "SSL_do_handshake() "
                                          "failed (peer closed connection in SSL handshake) "
                                          "while SSL handshaking to upstream")
            if unix is not None:
                return await self._failed(conn, req, loc, peer, 502,
                                          *unix_connect_failed(f"unix:{unix}", e))
            return await self._failed(conn, req, loc, peer, 502, f"connect() failed "
                                      f"({e.errno}: {e.strerror}) while connecting to "
                                      "upstream")
        req.upstream_connect_time = time.monotonic() - started
        return app, peer, started

    def _peer(self, cp: AppPass, req: Request) -> Peer | None:
        if cp.unix is not None:
            req.upstream_addr = f"unix:{cp.unix}"
            return None
        peer = self.w.groups[cp.upstream].pick(time.monotonic(), frozenset(), req)
        req.upstream_addr = peer.address if peer is not None else cp.upstream
        return peer

    async def _failed(self, conn: ClientSide, req: Request, loc: Location, peer: Peer | None,
                      status: int, message: str, level: str = "error") -> Step:
        """A failure before anything of the response went to the client."""
        self.w.log.write(level, message, conn, req)
        if peer is not None and status == 502:
            peer.failed(time.monotonic())
        req.upstream_status = str(status)
        return await finished(self.fail(conn, req, loc, status))

    async def _run(self, conn: ClientSide, req: Request, loc: Location, plan: Plan,
                   peer: Peer | None, app: AppConnection, data: bytes,
                   started: float, rest: BufferedBody | None = None) -> Step:
        s = loc.settings
        try:
            await app.send(data, plan.send_timeout)
            if rest is not None:  # the body from its file, as the application takes it
                for piece in body_pieces(plan.kind, rest):
                    await app.send(piece, plan.send_timeout)
        except KeptBodyError as e:
            self.w.log.error(str(e), conn, req)
            return await finished(self.fail(conn, req, loc, 500))
        except TimeoutError:
            return await self._failed(conn, req, loc, peer, 504,
                                      f"{TIMED_OUT} while sending request to upstream")
        except OSError as e:
            return await self._failed(conn, req, loc, peer, 502, f"writev() failed "
                                      f"({e.errno}: {e.strerror}) while sending request to "
                                      "upstream")
        output = _Output(plan.kind)
        head = CgiHead(plan.buffer_size, status_line=plan.kind != "fastcgi")
        relay: _Relay | None = None
        stderr: list[str] = []
        try:
            while True:
                try:
                    data = await app.read(plan.read_timeout)
                except TimeoutError:
                    message = f"{TIMED_OUT} while reading " + (
                        "upstream" if relay is not None else "response header from upstream")
                    if relay is None:
                        return await self._failed(conn, req, loc, peer, 504, message)
                    self.w.log.error(message, conn, req)
                    relay.cut()
                    return DONE
                except OSError as e:
                    # a reset is never the end of a response, even where the end is
                    # the connection's
                    message = (f"recv() failed ({e.errno}: {e.strerror}) while reading "
                               "upstream")
                    if relay is None:
                        return await self._failed(conn, req, loc, peer, 502, message)
                    self.w.log.error(message, conn, req)
                    relay.cut()
                    return DONE
                if not data:
                    if relay is not None and output.closed():
                        await relay.end()
                        return DONE
                    raise _Gone()
                out = output.feed(data, stderr)
                for text in stderr:
                    self.w.log.error(f'FastCGI sent in stderr: "{text}"', conn, req)
                    if relay is None and any(p in text for p in s.fastcgi_catch_stderr):
                        return await self._failed(conn, req, loc, peer, 502, "upstream sent "
                                                  "an error on stderr (fastcgi_catch_stderr)")
                stderr.clear()
                if relay is None and out:
                    parsed = head.feed(out)
                    if parsed is not None:
                        status, reason, headers, out = parsed
                        begun = await self.head_arrived(conn, req, loc, plan, app, started,
                                                        status, reason, headers)
                        if isinstance(begun, Step):
                            return begun
                        relay = begun
                if relay is not None:
                    await relay.body(out)
                    if output.ended or relay.whole():
                        await relay.end()
                        return DONE
                elif output.ended:
                    raise _Gone()
        except ProtocolError as e:
            if relay is None:
                return await self._failed(conn, req, loc, peer, 502, e.reason)
            self.w.log.error(e.reason, conn, req)
            relay.cut()
            return DONE
        except OutputFailed as e:  # (raised only once the relay has begun)
            self.w.log.error(str(e), conn, req)
            if relay is not None:
                relay.cut()
            return DONE
        except _Gone:
            if relay is None:
                return await self._failed(
                    conn, req, loc, peer, 502, "upstream prematurely closed FastCGI stdout"
                    if plan.kind == "fastcgi" else "upstream prematurely closed connection "
                    "while reading response header from upstream")
            self.w.log.error("upstream prematurely closed connection while reading "
                             "upstream", conn, req)
            relay.cut()
            return DONE
        finally:
            if relay is not None:
                relay.forget()  # (a store not ended is not kept)

    async def head_arrived(self, conn: ClientSide, req: Request, loc: Location, plan: Plan,
                           app: AppConnection, started: float, status: int, reason: bytes,
                           headers: Headers) -> _Relay | Step:
        """The application's response head: sent to ``error_page`` (``*_intercept_errors``),
        followed (X-Accel-Redirect), or begun towards the client — the relay of its
        body, or how the request ended."""
        req.upstream_time = time.monotonic() - started
        req.upstream_status = str(status)
        if (status >= 300 and plan.intercept_errors
                and loc.settings.error_page_for(status) is not None):
            return await finished(self.fail(conn, req, loc, status))
        to = accel.target(headers, plan.ignore_headers)
        if to is not None:
            app.abort()  # (the rest of its answer is not read)
            return await finished(self.upstream.accel(conn, req, loc, headers, to))
        loc = self.upstream.charset_location(conn, req, loc, headers, plan.ignore_headers)
        relay = self._start(conn, req, loc, plan, status, reason, headers)
        return DONE if relay is None else relay  # (None: a 502 has been answered)

    def _start(self, conn: ClientSide, req: Request, loc: Location, plan: Plan, status: int,
               reason: bytes, headers: list[tuple[bytes, bytes]]) -> _Relay | None:
        """The response head to the client; None when it could not be sent (a 502 has
        been answered instead)."""
        length = -1
        for name, value in headers:
            if name.lower() == b"content-length":
                number = decimal(value.strip())
                if number is None:
                    self.w.log.error(f'upstream sent invalid "Content-Length" header: '
                                     f'"Content-Length: {value.decode("latin-1")}"', conn,
                                     req)
                    self._refuse(conn, req, loc)
                    return None
                length = number
        shown = final_status(req, status)
        req.status = shown
        head_only = req.method == "HEAD" or shown in (204, 304) or shown < 200
        exchange = conn.exchange
        assert exchange is not None
        filters = None
        framed = length
        if loc.settings.filters_output:
            filters, headers, framed = output.start(
                req, loc.settings, headers, length, shown, head_only, conn,
                self.upstream.fetch, self.w.config.variables, self.respond.client_error(req))
        # a Status header of the code alone gets nginx's phrase (its *_module take the
        # header's text as the status line only past the code)
        rhead = ResponseHead(shown, reason or status_reason(shown), b"HTTP/1.1", headers,
                             framed, False)
        try:
            out = response_head(exchange, self.respond, req, loc, rhead, self.w.http_date(),
                                plan.drop, None, head_only)
        except ProtocolError as e:
            self.w.log.error(f"upstream sent an invalid header: {e.reason}", conn, req)
            self._refuse(conn, req, loc)
            return None
        exchange.write(out)
        req.bytes_sent = len(out)
        kept = None
        if plan.store is not False:
            kept = store.begin(req, loc.settings, plan.store, plan.store_access, status,
                               headers, length, head_only, self.respond.client_error(req))
        paced = None
        if not head_only:
            rate.upstream_rate(req, headers, plan.ignore_headers)
            if not plan.buffering:
                req.memo[RATE_KEY] = 0  # (nginx's unbuffered relay has no rate)
            paced = rate.pace(req, loc.settings, self.respond.client_error(req))
        return _Relay(exchange, req, length, head_only, self.respond, loc, filters, kept,
                      paced)

    def _refuse(self, conn: ClientSide, req: Request, loc: Location) -> None:
        req.status = 0  # the 502 is ours, not the application's answer
        self.respond.respond_error(conn, req, loc, 502)


class _Relay:
    """The application's body to the client, framed by the client's engine; at most
    ``length`` bytes when the application gave a Content-Length (nginx drops the rest),
    and a response shorter than it said is cut, never completed."""

    def __init__(self, exchange: Exchange, req: Request, length: int, head_only: bool,
                 respond: Responder, loc: Location, filters: Output | None,
                 kept: Store | None, paced: Pace | None) -> None:
        self.filters = filters  # sub_filter, recoding, SSI, additions, when they apply
        self.kept = kept  # *_store's file, when the body is kept
        self.paced = paced  # limit_rate's, when there is one
        self.exchange = exchange
        self.req = req
        self.left = length
        self.head_only = head_only
        self.respond = respond
        self.loc = loc

    async def body(self, data: bytes) -> None:
        if self.head_only or not data:
            return
        if self.left >= 0:
            data = data[:self.left]
            self.left -= len(data)
            if not data:
                return
        if self.filters is not None:
            self._send(await self.filters.begin())
        if self.kept is not None:
            self.kept.write(data)
            if self.left == 0:  # in place before the client can see the end
                self.kept.end()
        if self.filters is not None:
            data = await self.filters.feed(data)
        paced = self.paced
        while paced is not None and data:  # (limit_rate: as much as it allows now)
            part = data[:await paced.take(len(data))]
            if self.exchange.closed:
                return
            paced.sent(len(part))
            self._send(part)
            data = data[len(part):]
        self._send(data)

    def _send(self, data: bytes) -> None:
        if not data:
            return
        out = self.exchange.body(data)
        self.exchange.write(out)
        self.req.sent_body(len(out), len(data))

    def whole(self) -> bool:
        """All the body a Content-Length announced has been relayed (or none is due)."""
        return self.left == 0 or (self.head_only and self.left >= 0)

    async def end(self, trailers: Headers | None = None) -> None:
        """The body's end; ``trailers`` (an HTTP/2 application's) go before add_trailer's,
        when the body is chunked."""
        if self.left > 0 and not self.head_only:
            self.cut()
            return
        req = self.req
        req.release_conn_slots()
        if self.kept is not None and not self.exchange.closed:  # (whole, and taken)
            self.kept.end()
        if self.filters is not None:
            self._send(await self.filters.begin())  # (a body without bytes has it too)
            self._send(await self.filters.end())
            if self.exchange.closed:
                return
        out = self.exchange.end(self.respond.trailers(req, self.loc, trailers))
        self.exchange.write(out)
        req.sent_body(len(out), 0)

    def cut(self) -> None:
        self.exchange.abort()

    def forget(self) -> None:
        """What was kept and not stored is dropped (the body was cut or not taken)."""
        if self.kept is not None:
            self.kept.drop()
