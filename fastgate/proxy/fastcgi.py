"""``fastcgi_pass``'s content handler, as nginx's ``ngx_http_fastcgi_module``: the
request's body is read whole first (nginx's default request buffering), its parameters
are ``fastcgi_param``'s in order (``if_not_empty`` ones left out when empty) followed by
each client header as ``HTTP_NAME`` — unless a ``fastcgi_param HTTP_NAME`` set it (an
empty one drops the header: the ``HTTP_PROXY ""`` defence) — and the application's CGI
response is relayed: ``Status`` gives the status (else 302 with a ``Location``, else
200), STDERR is logged, and a connection that ends before END_REQUEST cuts the response.

One connection per request, closed after it (nginx's ``fastcgi_keep_conn off``); one
server of a group is tried. Always on the task path: it is not the JWT gateway's
common exchange."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from fastgate._wire import ResponseHead
from fastgate.errors import FastgateError
from fastgate.http import fastcgi as wire
from fastgate.http.engine import ProtocolError
from fastgate.proxy._headers import response_head
from fastgate.proxy.headers import HOP_BY_HOP
from fastgate.proxy.respond import final_status
from fastgate.proxy.steps import DONE, finished

if TYPE_CHECKING:
    from fastgate.config.model import Location, Settings
    from fastgate.http.exchange import Exchange
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.exchange import UpstreamExchange
    from fastgate.proxy.request import Request
    from fastgate.proxy.respond import Responder
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.steps import Fail, Outcome, Step
    from fastgate.proxy.upstream import Peer

# nginx's ngx_http_fastcgi_hide_headers (Status is read, never passed), and
# Content-Length: the client engine frames the body
_HIDDEN = frozenset({b"status", b"content-length", b"x-accel-expires", b"x-accel-redirect",
                     b"x-accel-limit-rate", b"x-accel-buffering", b"x-accel-charset"})
TIMED_OUT = "upstream timed out (110: Connection timed out)"


def response_drop(hide: tuple[str, ...], passed: tuple[str, ...]) -> tuple[bytes, ...]:
    """The application's response headers a location does not pass on: hop-by-hop
    ones, nginx's hidden ones unless ``fastcgi_pass_header`` names them, and those
    ``fastcgi_hide_header`` names."""
    shown = {p.encode("latin-1") for p in passed} - {b"content-length", b"status"}
    hidden = (_HIDDEN - shown) | {h.encode("latin-1") for h in hide}
    return tuple(sorted(HOP_BY_HOP | hidden))


def params(req: Request, s: Settings) -> list[tuple[bytes, bytes]]:
    """What the application gets as its environment, in nginx's order."""
    out: list[tuple[bytes, bytes]] = []
    owned: set[bytes] = set()
    for p in s.fastcgi_param:
        value = p.value.render(req).encode("utf-8", "surrogateescape")
        if p.name.startswith(b"HTTP_") and len(p.name) > 5:
            owned.add(p.name[5:].lower())
            if not p.value.source:
                continue  # nginx: an empty HTTP_ parameter only hides the header
        if p.if_not_empty and not value:
            continue
        out.append((p.name, value))
    if s.fastcgi_pass_request_headers:
        for name, value in req.head.headers:
            key = name.lower().replace(b"-", b"_")
            if key in owned:
                continue
            out.append((b"HTTP_" + key.upper(), value))
    return out


class _Gone(FastgateError):
    """The application closed the connection before END_REQUEST."""


class FastcgiModule:
    """The content handler of locations with ``fastcgi_pass``."""

    def __init__(self, worker: Runtime, respond: Responder, upstream: UpstreamExchange,
                 fail: Fail) -> None:
        self.w = worker
        self.respond = respond
        self.upstream = upstream  # reads the client's body as proxy_pass does
        self.fail = fail
        self._drops: dict[int, tuple[Location, tuple[bytes, ...]]] = {}

    def __call__(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        return self._exchange(conn, req, loc)

    async def _exchange(self, conn: ClientSide, req: Request, loc: Location) -> Step:
        s = loc.settings
        fp = loc.fastcgi_pass
        assert fp is not None
        body = b""
        if req.head.content_length != 0:
            got = await self.upstream.read_whole_body(conn, req, loc)
            if got is None:
                return DONE  # reading it failed, and that has been answered
            if s.fastcgi_pass_request_body:
                body = got
        peer = None
        if fp.unix is not None:
            req.upstream_addr = f"unix:{fp.unix}"
        else:
            peer = self.w.groups[fp.upstream].pick(time.monotonic(), frozenset(), req)
            if peer is None:
                self.w.log.error("no live upstreams while connecting to upstream", conn, req)
                req.upstream_addr = fp.upstream
                return await finished(self.fail(conn, req, loc, 502))
            req.upstream_addr = peer.address
        started = time.monotonic()
        server = peer.server if peer is not None else None
        try:
            app = await asyncio.wait_for(
                wire.FastcgiConnection.open(server.host if server else "",
                                            server.port if server else 0, fp.unix),
                s.fastcgi_connect_timeout)
        except TimeoutError:
            return await self._failed(conn, req, loc, peer, 504,
                                      f"{TIMED_OUT} while connecting to upstream")
        except OSError as e:
            where = f" to {req.upstream_addr}" if fp.unix is not None else ""
            return await self._failed(conn, req, loc, peer, 502, f"connect(){where} failed "
                                      f"({e.errno}: {e.strerror}) while connecting to "
                                      "upstream")
        req.upstream_connect_time = time.monotonic() - started
        try:
            return await self._run(conn, req, loc, peer, app, body, started)
        finally:
            app.abort()

    async def _failed(self, conn: ClientSide, req: Request, loc: Location, peer: Peer | None,
                      status: int, message: str) -> Step:
        """A failure before anything of the response went to the client."""
        self.w.log.error(message, conn, req)
        if peer is not None and status == 502:
            peer.failed(time.monotonic())
        req.upstream_status = str(status)
        return await finished(self.fail(conn, req, loc, status))

    async def _run(self, conn: ClientSide, req: Request, loc: Location, peer: Peer | None,
                   app: wire.FastcgiConnection, body: bytes, started: float) -> Step:
        s = loc.settings
        try:
            await app.send(wire.request(params(req, s), body, False), s.fastcgi_send_timeout)
        except TimeoutError:
            return await self._failed(conn, req, loc, peer, 504,
                                      f"{TIMED_OUT} while sending request to upstream")
        except OSError as e:
            return await self._failed(conn, req, loc, peer, 502, f"writev() failed "
                                      f"({e.errno}: {e.strerror}) while sending request to "
                                      "upstream")
        records = wire.Records()
        head = wire.CgiHead(s.fastcgi_buffer_size)
        relay: _Relay | None = None
        try:
            while True:
                try:
                    data = await app.read(s.fastcgi_read_timeout)
                except TimeoutError:
                    message = f"{TIMED_OUT} while reading " + (
                        "upstream" if relay is not None else "response header from upstream")
                    if relay is None:
                        return await self._failed(conn, req, loc, peer, 504, message)
                    self.w.log.error(message, conn, req)
                    relay.cut()
                    return DONE
                except OSError as e:
                    data = b""
                    self.w.log.error(f"recv() failed ({e.errno}: {e.strerror}) while "
                                     "reading upstream", conn, req)
                if not data:
                    raise _Gone()
                for kind, content in records.feed(data):
                    if kind == wire.STDERR:
                        text = content.decode("utf-8", "replace").rstrip("\r\n")
                        self.w.log.error(f'FastCGI sent in stderr: "{text}"', conn, req)
                        if relay is None and any(p in text for p in s.fastcgi_catch_stderr):
                            return await self._failed(conn, req, loc, peer, 502,
                                                      "upstream sent an error on stderr "
                                                      "(fastcgi_catch_stderr)")
                    elif kind == wire.STDOUT:
                        if relay is not None:
                            relay.body(content)
                            continue
                        parsed = head.feed(content)
                        if parsed is None:
                            continue
                        status, reason, headers, rest = parsed
                        req.upstream_time = time.monotonic() - started
                        req.upstream_status = str(status)
                        if (status >= 300 and s.fastcgi_intercept_errors
                                and s.error_page_for(status) is not None):
                            return await finished(self.fail(conn, req, loc, status))
                        relay = self._start(conn, req, loc, status, reason, headers)
                        if relay is None:
                            return DONE
                        if rest:
                            relay.body(rest)
                    elif kind == wire.END_REQUEST:
                        wire.end_status(content)
                        if relay is None:
                            raise _Gone()
                        relay.end()
                        return DONE
        except ProtocolError as e:
            if relay is None:
                return await self._failed(conn, req, loc, peer, 502, e.reason)
            self.w.log.error(e.reason, conn, req)
            relay.cut()
            return DONE
        except _Gone:
            if relay is None:
                return await self._failed(conn, req, loc, peer, 502,
                                          "upstream prematurely closed FastCGI stdout")
            self.w.log.error("upstream prematurely closed connection while reading "
                             "upstream", conn, req)
            relay.cut()
            return DONE

    def _start(self, conn: ClientSide, req: Request, loc: Location, status: int,
               reason: bytes, headers: list[tuple[bytes, bytes]]) -> _Relay | None:
        """The response head to the client; None when it could not be sent (the
        connection is then cut)."""
        s = loc.settings
        kept = self._drops.get(id(loc))
        if kept is None or kept[0] is not loc:
            kept = self._drops[id(loc)] = (loc, response_drop(s.fastcgi_hide_header,
                                                             s.fastcgi_pass_header))
        length = -1
        for name, value in headers:
            if name.lower() == b"content-length":
                text = value.strip()
                if not text.isdigit():
                    self.w.log.error(f'upstream sent invalid "Content-Length" header: '
                                     f'"Content-Length: {value.decode("latin-1")}"', conn,
                                     req)
                    self._refuse(conn, req, loc)
                    return None
                length = int(text)
        shown = final_status(req, status)
        req.status = shown
        head_only = req.method == "HEAD" or shown in (204, 304) or shown < 200
        exchange = conn.exchange
        assert exchange is not None
        rhead = ResponseHead(shown, reason, b"HTTP/1.1", headers, length, False)
        try:
            out = response_head(exchange, self.respond, req, loc, rhead, self.w.http_date(),
                                kept[1], None, head_only)
        except ProtocolError as e:
            self.w.log.error(f"upstream sent an invalid header: {e.reason}", conn, req)
            self._refuse(conn, req, loc)
            return None
        exchange.write(out)
        req.bytes_sent = len(out)
        return _Relay(exchange, req, length, head_only, self.respond, loc)

    def _refuse(self, conn: ClientSide, req: Request, loc: Location) -> None:
        req.status = 0  # the 502 is ours, not the application's answer
        self.respond.respond_error(conn, req, loc, 502)


class _Relay:
    """The application's body to the client, framed by the client's engine; at most
    ``length`` bytes when the application gave a Content-Length (nginx drops the rest),
    and a response shorter than it said is cut, never completed."""

    def __init__(self, exchange: Exchange, req: Request, length: int, head_only: bool,
                 respond: Responder, loc: Location) -> None:
        self.exchange = exchange
        self.req = req
        self.left = length
        self.head_only = head_only
        self.respond = respond
        self.loc = loc

    def body(self, data: bytes) -> None:
        if self.head_only or not data:
            return
        if self.left >= 0:
            data = data[:self.left]
            self.left -= len(data)
            if not data:
                return
        out = self.exchange.body(data)
        self.exchange.write(out)
        self.req.bytes_sent += len(out)
        self.req.body_bytes_sent += len(data)

    def end(self) -> None:
        if self.left > 0 and not self.head_only:
            self.cut()
            return
        req = self.req
        req.release_conn_slots()
        self.exchange.write(self.exchange.end(
            self.respond.trailers(req, self.loc) if req.expect_trailers else None))

    def cut(self) -> None:
        self.exchange.abort()
