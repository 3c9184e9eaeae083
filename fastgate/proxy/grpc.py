"""The content handler of ``grpc_pass``, as nginx's ``ngx_http_grpc_module``: the request
goes to the application as the one stream of an HTTP/2 connection — through h2, the
HTTP/2 state machine made for Python (framing, HPACK, flow control, and the checks of
what the server sends) — built as nginx builds it:

- ``:method``, ``:scheme`` (https for grpcs://), ``:path`` (the request's target, as a
  proxy_pass without a URI part sends it), ``:authority`` (grpc_pass's address as
  written; when ``grpc_set_header`` sets Host, that goes as a ``host`` field instead);
- ``grpc_set_header``'s fields, then nginx's defaults the location does not set
  (``Content-Length: $content_length``, ``TE: $grpc_internal_trailers``; Host,
  Connection, Transfer-Encoding, Keep-Alive, Expect and Upgrade empty, so never sent);
  a field that renders empty is left out;
- every client header but those, its name lowercased;
- the body as it comes (a client-streaming or bidirectional call goes message by
  message, the answer relayed meanwhile), in DATA frames as the server's flow-control
  windows allow: the client's next piece is read only when the last one has gone, so
  a server that takes it slowly slows the client.

The answer is relayed as it comes (nginx's module never buffers it): the status, the
headers but nginx's hidden ones (Date, Server, X-Accel-*) and ``grpc_hide_header``'s,
the DATA, and the trailers (grpc-status, grpc-message...) after a chunked body, before
``add_trailer``'s — to an HTTP/1.1 client; an HTTP/1.0 one gets the body to the
connection's end without them, as nginx's. A stream the server resets, a GOAWAY that
leaves the stream out, a connection closed before the stream ends, and what HTTP/2
forbids fail as nginx's: 502 before the response head, the response cut after it.

One connection per request, closed after it (nginx's, without ``keepalive`` in the
upstream block); always on the task path."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    InformationalResponseReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error
from h2.settings import SettingCodes, Settings

from fastgate._wire import field_value
from fastgate.errors import FastgateError
from fastgate.http.buffered_body import KeptBodyError
from fastgate.proxy.cgi import CgiModule, Plan
from fastgate.proxy.exchange import BodyError, request_target
from fastgate.proxy.failure import TIMED_OUT
from fastgate.proxy.headers import response_drop
from fastgate.proxy.steps import DONE, Step
from fastgate.variables import TRAILERS_KEY, Registry, Template

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from fastgate.config.model import AppPass, Location
    from fastgate.config.model import Settings as SettingsModel
    from fastgate.http.cgi import AppConnection
    from fastgate.http.engine import Headers
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.cgi import _Relay
    from fastgate.proxy.request import Request
    from fastgate.proxy.upstream import Peer

# nginx's grpc_set_header defaults: set unless the location sets the name (an empty
# value: the client's header is not passed, and nothing goes in its place)
_REGISTRY = Registry()
_DEFAULT_FIELDS = tuple(
    (name, _REGISTRY.compile(value)) for name, value in (
        (b"content-length", "$content_length"), (b"te", "$grpc_internal_trailers"),
        (b"host", ""), (b"connection", ""), (b"transfer-encoding", ""), (b"keep-alive", ""),
        (b"expect", ""), (b"upgrade", "")))

# nginx's grpc_hide_header defaults, and Content-Length: the client engine frames the body
_HIDDEN = frozenset({b"content-length", b"date", b"server", b"x-accel-expires",
                     b"x-accel-redirect", b"x-accel-limit-rate", b"x-accel-buffering",
                     b"x-accel-charset"})

# what h2 leaves to its user: the client side, bytes for names and values, and the
# fields as nginx writes them (lowercased here, the client's as they came, which may
# include names HTTP/2 calls connection-specific: nginx passes those too)
_H2 = H2Configuration(client_side=True, header_encoding=None,
                      validate_outbound_headers=False, normalize_outbound_headers=False)

# a trailer goes on to an HTTP/1.1 client only if it cannot split the header block
_UNSAFE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

_STREAM = 1  # the one stream of a connection


@dataclass(frozen=True, slots=True)
class GrpcPlan:
    """A location's grpc_* settings, read once."""

    fields: tuple[tuple[bytes, Template], ...]  # grpc_set_header's and the defaults'
    owned: frozenset[bytes]  # client headers those name: not passed
    host_set: bool  # grpc_set_header Host: no :authority
    relay: Plan  # the relay's settings, as the CGI family's


def grpc_plan(loc: Location) -> GrpcPlan:
    s = loc.settings
    given = tuple((name.lower().encode("latin-1"), t) for name, t in s.grpc_set_header)
    names = {name for name, _ in given}
    merged = given + tuple((n, t) for n, t in _DEFAULT_FIELDS if n not in names)
    relay = Plan("grpc", (), True, True, s.grpc_connect_timeout, s.grpc_send_timeout,
                 s.grpc_read_timeout, s.grpc_intercept_errors,
                 response_drop(s.grpc_hide_header, s.grpc_pass_header, _HIDDEN),
                 s.grpc_buffer_size, False, 0, s.grpc_ignore_headers, False,
                 s.grpc_socket_keepalive)
    return GrpcPlan(tuple((n, t) for n, t in merged if t.source),
                    frozenset(n for n, _ in merged), b"host" in names, relay)


def request_fields(req: Request, plan: GrpcPlan, ap: AppPass) -> tuple[Headers, list[bytes]]:
    """The request's HTTP/2 header fields (to ``ap``, grpc_pass made concrete for this
    request), and the names of grpc_set_header fields left out because their value
    would carry a control byte."""
    out: Headers = [(b":method", req.method.encode("latin-1")),
                    (b":scheme", b"https" if ap.secure else b"http"),
                    (b":path", request_target(req))]
    if not plan.host_set:
        out.append((b":authority", ap.authority.encode("latin-1", "replace")))
    unsafe: list[bytes] = []
    for name, template in plan.fields:
        value = template.render(req)
        if not value:
            continue
        raw = field_value(value)
        if raw is None:
            unsafe.append(name)
            continue
        out.append((name, raw))
    owned = plan.owned
    for name, given in req.head.headers:
        low = name.lower()
        if low not in owned:
            out.append((low, given))
    return out, unsafe


class _Failed(FastgateError):
    """The exchange failed, as nginx logs it: ``status`` (502, 504 for a timeout) before
    the response head, the response cut after it."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class _Upload:
    """The client's body into the stream as it comes, as the server's flow-control
    windows allow; the stream's end once the body has ended and all of it has gone."""

    __slots__ = ("h2", "left", "ended", "done")

    def __init__(self, h2: H2Connection) -> None:
        self.h2 = h2
        self.left = memoryview(b"")  # taken from the client, waiting for a window
        self.ended = False  # the client's body has ended
        self.done = False  # END_STREAM sent, or the server closed the stream

    def wants_more(self) -> bool:
        """Whether to read the client's next piece: the last one has gone into h2."""
        return not self.ended and not self.left and not self.done

    def take(self, piece: bytes | None) -> None:
        if piece is None:
            self.ended = True
        else:
            self.left = memoryview(piece)
        self.push()

    def push(self) -> None:
        """As much as the windows allow now (what is left is dropped once the server
        has closed the stream: it answered without it)."""
        h2 = self.h2
        try:
            while self.left and not self.done:
                room = min(h2.local_flow_control_window(_STREAM), h2.max_outbound_frame_size)
                if room <= 0:
                    return
                part, self.left = self.left[:room], self.left[room:]
                h2.send_data(_STREAM, bytes(part))
            if self.ended and not self.done:
                self.done = True
                h2.end_stream(_STREAM)
        except H2Error:  # (the stream is closed on its side)
            self.left = memoryview(b"")
            self.done = True


def _drop(task: asyncio.Task[Any] | None) -> None:
    """A read nobody waits for any more: cancelled, or its outcome taken (never left
    for the loop to report)."""
    if task is None:
        return
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


def _too_big(headers: Headers, limit: int) -> bool:
    """A response head larger than grpc_buffer_size, counted as its decoded fields."""
    return sum(len(n) + len(v) for n, v in headers) > limit


class GrpcModule(CgiModule):
    """The content handler of locations with ``grpc_pass`` (the CGI family's way to an
    application: its server, its connection and TLS, its failures, its relay)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._grpc_plans: dict[int, tuple[Location, GrpcPlan]] = {}

    def grpc_plan(self, loc: Location) -> GrpcPlan:
        kept = self._grpc_plans.get(id(loc))
        if kept is None or kept[0] is not loc:
            kept = self._grpc_plans[id(loc)] = (loc, grpc_plan(loc))
        return kept[1]

    async def _exchange(self, conn: ClientSide, req: Request, loc: Location) -> Step:
        # (the target first: with variables its :scheme and :authority are this
        # request's, as nginx's ngx_http_grpc_eval makes them before the request)
        target = await self.target(conn, req, loc)
        if isinstance(target, Step):
            return target
        plan = self.grpc_plan(loc)
        fields, unsafe = request_fields(req, plan, target)
        for name in unsafe:
            self.w.log.warn(f'header "{name.decode("latin-1")}" dropped: its value holds a '
                            "control character", conn, req)
            self.w.stats.unsafe_header()
        return await self.talk(
            conn, req, loc, plan.relay.connect_timeout, plan.relay.socket_keepalive,
            lambda app, peer, started: self._stream(conn, req, loc, plan, peer, app, fields,
                                                    started), target)

    def _body_source(self, conn: ClientSide, req: Request, s: SettingsModel
                     ) -> Callable[[], Coroutine[Any, Any, bytes | None]]:
        """Where the body's next piece comes from: the client as it sends it, or the
        body read whole already (a mirror read it, or it went to a location before an
        internal redirect) from its start."""
        kept = req.body_buffer
        if kept is None:
            return lambda: self.upstream.body_piece(conn, req, s)
        pieces = iter((kept,) if isinstance(kept, bytes) else kept.pieces())

        async def next_kept() -> bytes | None:
            try:
                return next(pieces, None)
            except KeptBodyError as e:
                raise BodyError(500, str(e)) from None

        return next_kept

    async def _stream(self, conn: ClientSide, req: Request, loc: Location, plan: GrpcPlan,
                      peer: Peer | None, app: AppConnection, fields: Headers,
                      started: float) -> Step:
        p = plan.relay
        s = loc.settings
        h2 = H2Connection(_H2)
        h2.local_settings = Settings(client=True, initial_values={SettingCodes.ENABLE_PUSH: 0})
        h2.initiate_connection()
        upload = _Upload(h2) if req.head.content_length != 0 else None
        next_piece = self._body_source(conn, req, s)
        h2.send_headers(_STREAM, fields, end_stream=upload is None)
        relay: _Relay | None = None
        trailers: Headers = []
        loop = asyncio.get_running_loop()
        # the next of what the application sends and of the client's body, whichever
        # comes first: a stream's messages go both ways at once
        app_read: asyncio.Task[bytes] | None = None
        body_read: asyncio.Task[bytes | None] | None = None
        try:
            req.upstream_bytes_sent += await _send(app, h2, p.send_timeout)
            if upload is not None:
                exchange = conn.exchange
                assert exchange is not None
                exchange.write(exchange.expect_continue())
            while True:
                if app_read is None:
                    app_read = loop.create_task(_read(app, p.read_timeout, relay is not None))
                if body_read is None and upload is not None and upload.wants_more():
                    body_read = loop.create_task(next_piece())
                await asyncio.wait((app_read,) if body_read is None else (app_read, body_read),
                                   return_when=asyncio.FIRST_COMPLETED)
                if body_read is not None and body_read.done():
                    got_body, body_read = body_read, None
                    try:
                        piece = got_body.result()
                    except BodyError as e:
                        if relay is None:
                            await self.upstream.body_failed(conn, req, loc, e)
                        else:  # (the answer has begun: the client sees it cut)
                            self.w.log.info(str(e), conn, req)
                            relay.cut()
                        return DONE
                    assert upload is not None
                    upload.take(piece)
                    req.upstream_bytes_sent += await _send(app, h2, p.send_timeout)
                if not app_read.done():
                    continue
                got_app, app_read = app_read, None
                data = got_app.result()
                if conn.closed:  # the client went away: so does its stream (a gRPC
                    return DONE  # server stream may never end of itself)
                req.upstream_bytes_received += len(data)
                try:
                    events = h2.receive_data(data)
                except H2Error as e:
                    raise _Failed(f"upstream sent invalid http2: {e}") from None
                for ev in events:
                    if isinstance(ev, ResponseReceived):
                        raw = ev.headers[0][1]  # (h2: :status, the only pseudo-field, first)
                        if len(raw) != 3 or not raw.isdigit():
                            raise _Failed(f'upstream sent invalid :status '
                                          f'"{raw.decode("latin-1")}"')
                        status = int(raw)
                        headers = [(n, v) for n, v in ev.headers if n[:1] != b":"]
                        if ev.stream_ended is not None:  # (nginx: then the length is 0)
                            headers = [(n, v) for n, v in headers if n != b"content-length"]
                            headers.append((b"content-length", b"0"))
                        if _too_big(headers, p.buffer_size):
                            raise _Failed("upstream sent too big header while reading "
                                          "response header from upstream")
                        begun = await self.head_arrived(conn, req, loc, p, app, started,
                                                        status, b"", headers)
                        if isinstance(begun, Step):
                            return begun
                        relay = begun
                    elif isinstance(ev, DataReceived):
                        if relay is not None:
                            await relay.body(ev.data)
                        h2.acknowledge_received_data(ev.flow_controlled_length, _STREAM)
                    elif isinstance(ev, TrailersReceived):
                        req.memo[TRAILERS_KEY] = ev.headers  # ($upstream_trailer_*)
                        trailers = [(n, v) for n, v in ev.headers
                                    if n not in p.drop and not _UNSAFE.search(v)]
                    elif isinstance(ev, StreamEnded):
                        if relay is not None:
                            await relay.end(trailers)
                        return DONE
                    elif isinstance(ev, StreamReset):
                        raise _Failed(f"upstream rejected request with error {ev.error_code}")
                    elif isinstance(ev, ConnectionTerminated):
                        if ev.error_code or (ev.last_stream_id or 0) < _STREAM:
                            raise _Failed(f"upstream sent goaway with error {ev.error_code}")
                    elif isinstance(ev, InformationalResponseReceived):
                        got = dict(ev.headers).get(b":status", b"").decode("latin-1")
                        raise _Failed(f'upstream sent unexpected :status "{got}"')
                    elif isinstance(ev, WindowUpdated) and upload is not None:
                        upload.push()
                req.upstream_bytes_sent += await _send(app, h2, p.send_timeout)
        except _Failed as e:
            if relay is None:
                return await self._failed(conn, req, loc, peer, e.status, str(e))
            self.w.log.error(str(e), conn, req)
            relay.cut()
            return DONE
        finally:
            _drop(app_read)
            _drop(body_read)
            if relay is not None:
                relay.forget()


async def _send(app: AppConnection, h2: H2Connection, timeout: float) -> int:
    """What h2 has to send, handed to the kernel; its length ($upstream_bytes_sent)."""
    out = h2.data_to_send()
    if not out:
        return 0
    try:
        await app.send(out, timeout)
    except TimeoutError:
        raise _Failed(f"{TIMED_OUT} while sending request to upstream", 504) from None
    except OSError as e:
        raise _Failed(f"writev() failed ({e.errno}: {e.strerror}) while sending request to "
                      "upstream") from None
    return len(out)


async def _read(app: AppConnection, timeout: float, relaying: bool) -> bytes:
    """What the server sends next (never b"": its end is a failure here)."""
    doing = "upstream" if relaying else "response header from upstream"
    try:
        data = await app.read(timeout)
    except TimeoutError:
        raise _Failed(f"{TIMED_OUT} while reading {doing}", 504) from None
    except OSError as e:
        raise _Failed(f"recv() failed ({e.errno}: {e.strerror}) while reading "
                      f"{doing}") from None
    if not data:
        raise _Failed(f"upstream prematurely closed connection while reading {doing}")
    return data
