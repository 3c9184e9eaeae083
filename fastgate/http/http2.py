"""HTTP/2 to clients (``listen ... http2``): by ALPN over TLS, by the connection preface
in clear (prior knowledge; an HTTP/1.1 client on the same address is served as before).

Each stream is served as one HTTP/1.1 request on a connection of its own, as nginx
serves each stream on a fake connection of its own (ngx_http_v2_create_stream): the
stream's fields become an HTTP/1.1 head, its DATA a body of exact framing, and what the
request path writes back is parsed (h11, client side) into HEADERS, DATA and trailers.
A stream therefore passes the same parser, the same phases and the same token check as
an HTTP/1.1 request — on either engine, on the callback and the task paths — and
nothing the HTTP/1.1 parser would refuse reaches the phases. The price is a second
framing of each exchange; HTTP/2 is not the path the benchmarks measure.

Framing, HPACK, flow control and the protocol's checks on what a client sends are
python-hyper's h2 (already the gRPC client's): an uppercase or malformed field, a
connection-specific field, a pseudo-field out of place, DATA beyond ``content-length``,
a CONTINUATION flood or a header list past the limit end the connection with GOAWAY.
Streams are bounded per connection (``http2_max_concurrent_streams``) and over its life
(``keepalive_requests``, as nginx 1.19.7+), which bounds a rapid-reset client too.

Server push is nginx 1.22's: the request path names what a location pushes
(``ClientConnection.promise``); when that stream's answer head goes, each URI (and,
with ``http2_push_preload``, each ``Link: <...>; rel=preload``) is promised
(PUSH_PROMISE with the request's :authority, Accept-Encoding, Accept-Language and
User-Agent) and served as a GET of its own, through the same phases as any request —
one without the client's credentials, so a protected location answers it as it answers
anyone without a token.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import h11
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from fastgate.decimals import decimal
from fastgate.http.server import ClientConnection
from fastgate.openssl import OcspPolicy

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# how long what the client sends after our GOAWAY is read and dropped (nginx's
# lingering_timeout default)
LINGERING_TIME = 5.0

# fields HTTP/2 does not carry (RFC 9113 8.2.2): dropped from the answers, as is a TE
# that says anything but "trailers" (add_header's: HTTP/2 would make the whole answer
# malformed)
_CONNECTION_FIELDS = frozenset({b"connection", b"keep-alive", b"proxy-connection",
                                b"transfer-encoding", b"upgrade"})
# a stream's answer waiting for the client's window past this: its writer is paused
_HIGH = 64 * 1024
_LOW = 16 * 1024
_MAX_WINDOW = 2**31 - 1
# an answer's head as the request path writes it may be long (many Set-Cookie)
_MAX_HEAD = 1 << 20


def _carried(fields: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """An answer's fields (h11's: names in lower case) that HTTP/2 carries."""
    return [(n, v) for n, v in fields if n not in _CONNECTION_FIELDS
            and (n != b"te" or v.lower() == b"trailers")]


@dataclass(frozen=True, slots=True)
class Http2Limits:
    """An address's HTTP/2 settings (its default server's, as nginx)."""
    max_concurrent_streams: int = 128  # http2_max_concurrent_streams
    preread_size: int = 64 * 1024  # http2_body_preread_size: a stream's first window
    max_header_list: int = 32 * 1024  # large_client_header_buffers: count x size
    idle_timeout: float = 75.0  # keepalive_timeout: no stream open
    max_requests: int = 1000  # keepalive_requests: streams over the connection's life
    max_pushes: int = 10  # http2_max_concurrent_pushes: pushed streams going at once


class Preface(asyncio.Protocol):
    """A cleartext http2 address's connection until its first bytes say which protocol
    it speaks: the HTTP/2 preface, or anything else (HTTP/1.1). The ``ClientConnection``
    is made at once — counted against worker_connections, timed by client_header_timeout,
    closed by a graceful stop as any idle connection — and reads the PROXY protocol
    header the address expects; only the bytes after it are looked at here."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self._read = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.conn.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn.closed or conn.transport is None:
            return
        data = conn.after_proxy_header(data)
        if not data:
            return
        got = self._read + data
        if got[:len(PREFACE)] == PREFACE[:len(got)] and len(got) < len(PREFACE):
            self._read = got  # the preface so far: wait for the rest
            return
        self._read = b""
        conn.transport.set_protocol(conn)
        if got.startswith(PREFACE):
            conn.speak_http2(got)
        else:
            conn.data_received(got)

    def eof_received(self) -> bool | None:
        return self.conn.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.connection_lost(exc)

    def pause_writing(self) -> None:
        self.conn.pause_writing()

    def resume_writing(self) -> None:
        self.conn.resume_writing()


class Stream(asyncio.Transport):
    """One stream: the transport of its HTTP/1.1 connection. What that connection writes
    is its answer, parsed back into HTTP/2 frames; the client's DATA is fed to it."""

    def __init__(self, owner: Http2Connection, sid: int, method: bytes,
                 length: int, fields: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__()
        self.owner = owner
        self.sid = sid
        self.method = method
        # what a push from this stream's answer repeats of its request (nginx's: the
        # authority, Accept-Encoding, Accept-Language, User-Agent), and the pushes the
        # request path named: (URIs, http2_push_preload, how to warn of a relative one)
        self.fields = fields or []
        self.promised: tuple[tuple[bytes, ...], bool, Callable[[bytes], None]] | None = None
        self.conn: ClientConnection | None = None
        # the body still to come: its length, or -1 (chunked)
        self.length = length
        self.parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
        # the parser learns the method (a HEAD's answer has no body); the rest of this
        # request head is never sent anywhere
        self.parser.send(h11.Request(method=method, target="/", headers=[("host", "-")]))
        self.pending: deque[bytes] = deque()
        self.pending_size = 0
        self.trailers: list[tuple[bytes, bytes]] | None = None
        self.line_next = True  # the next write begins with a status line
        self.answered = False  # HEADERS sent
        self.ended = False  # the answer is whole: END_STREAM follows its last DATA
        self.finished = False  # END_STREAM sent, or the stream reset
        self.client_ended = False  # the client's END_STREAM came
        self.closed = False  # the HTTP/1.1 side is closed
        self.reading = True
        self.unacked = 0  # DATA held while the request path reads no more
        self.writing_paused = False
        self.resuming = False  # a resume_writing is scheduled

    # --- asyncio.Transport, as the HTTP/1.1 connection uses it -------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":  # the client's socket options are the connection's
            return default
        t = self.owner.transport
        return t.get_extra_info(name, default) if t is not None else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed or self.finished or not data:
            return
        data = bytes(data)
        if self.line_next:
            data = self._without_reason(data)
        try:
            self.parser.receive_data(data)
            self._events()
        except h11.RemoteProtocolError:
            # not an answer h11 can read: cannot happen with what the request path
            # writes, whichever engine read the upstream's answer (both refuse what h11
            # would); should it, the stream is reset rather than passed on half-read
            self.owner.reset(self, ErrorCodes.INTERNAL_ERROR)

    def _without_reason(self, data: bytes) -> bytes:
        """A head's status line (written whole, at the start of a write) without its
        reason phrase, which HTTP/2 does not carry — an upstream's may hold bytes that
        the read-back refuses (a NUL, which llhttp and nginx take). After a 1xx line
        another status line follows."""
        end = data.find(b"\r\n")
        if end < 12 or not data.startswith(b"HTTP/1.1 "):
            self.line_next = False  # (not a line of ours: the parser reads it whole)
            return data
        self.line_next = data[9:10] == b"1"
        return data[:12] + data[end:]

    def _events(self) -> None:
        parser = self.parser
        owner = self.owner
        while True:
            ev = parser.next_event()
            if ev is h11.NEED_DATA or ev is h11.PAUSED:
                return
            if isinstance(ev, h11.Data):
                if ev.data:
                    self.pending.append(bytes(ev.data))
                    self.pending_size += len(ev.data)
                    owner.flush(self)
            elif isinstance(ev, h11.Response | h11.InformationalResponse):
                fields = [(b":status", str(ev.status_code).encode())]
                fields += _carried(ev.headers)
                if isinstance(ev, h11.Response):
                    self.answered = True
                    if self.promised is not None:  # (the promises go before the head)
                        owner.push_for(self, fields)
                owner.send_head(self, fields)
            elif isinstance(ev, h11.EndOfMessage):
                self.trailers = _carried(ev.headers) or None
                self.ended = True
                owner.flush(self)
                # the stream's connection has served its one request
                asyncio.get_running_loop().call_soon(self.close_http1)
                return
            elif isinstance(ev, h11.ConnectionClosed):
                return

    def is_closing(self) -> bool:
        return self.closed

    def promise(self, paths: tuple[bytes, ...], preload: bool,
                warn: Callable[[bytes], None]) -> None:
        """What this stream's answer pushes (its location's ``http2_push`` URIs, and
        ``http2_push_preload``); nothing when both are empty."""
        self.promised = (paths, preload, warn) if paths or preload else None

    def close(self) -> None:
        """The HTTP/1.1 connection closes: an answer it did not finish is cut (a
        close-delimited one is whole)."""
        if self.closed:
            return
        if not self.ended and not self.finished and self.answered:
            try:
                self.parser.receive_data(b"")
                self._events()
            except h11.RemoteProtocolError:
                pass
        if not self.ended:
            self.owner.reset(self, ErrorCodes.INTERNAL_ERROR)
        self.close_http1()

    def abort(self, reset: bool = False) -> None:
        # (a stream is reset whatever ``reset`` says: its connection carries others)
        if not self.ended:
            self.owner.reset(self, ErrorCodes.INTERNAL_ERROR)
        self.close_http1()

    def close_http1(self) -> None:
        """The stream's HTTP/1.1 connection is over (its answer is whole, or cut)."""
        if self.closed:
            return
        self.closed = True
        conn = self.conn
        if conn is not None:
            asyncio.get_running_loop().call_soon(conn.connection_lost, None)
        self.owner.settle(self)

    def can_write_eof(self) -> bool:
        """A stream cannot half-close its HTTP/1.1 side: its answer ends with its
        framing (so ``write_eof`` is asyncio's own, not offered)."""
        return False

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        if not self.reading:
            self.reading = True
            self.owner.acknowledge(self)

    def is_reading(self) -> bool:
        return self.reading

    def get_write_buffer_size(self) -> int:
        return self.pending_size

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.conn is not None
        return self.conn

    # --- the client's side ---------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        conn = self.conn
        if conn is None or self.closed:
            return
        if self.length < 0:
            conn.data_received(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            data = data[:self.length]  # h2 has checked content-length; never past it
            self.length -= len(data)
            if data:
                conn.data_received(data)

    def end(self) -> None:
        """The client's END_STREAM: the body's end, and the connection's (no second
        request can follow on it)."""
        self.client_ended = True
        conn = self.conn
        if conn is None or self.closed:
            return
        if self.length < 0:
            conn.data_received(b"0\r\n\r\n")
        conn.eof_received()


class Http2Connection(asyncio.Protocol):
    """A client connection that speaks HTTP/2, taken over from the ``ClientConnection``
    that accepted it (``outer``): that one stays the connection the worker counts, times
    and stops; this one frames, and serves each stream on a ``Stream``. It is the
    ``ConnectionObserver`` of its streams' connections."""

    def __init__(self, outer: ClientConnection, limits: Http2Limits) -> None:
        self.outer = outer
        self.limits = limits
        self.label = "h2" if outer.scheme == "https" else "h2c"
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None))
        self.streams: dict[int, Stream] = {}
        self.transport: asyncio.Transport | None = None
        self.paused = False  # the client reads slower than we write
        self.going_away = False  # GOAWAY sent: no new stream
        self.dead = False  # closing: nothing more is read
        self.lingering = False  # our side is shut: waiting for the client's close
        self.served = 0
        self.pushing = 0  # pushed streams going
        self._loop = asyncio.get_running_loop()

    # --- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        limits = self.limits
        c = h2.settings.SettingCodes
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            c.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
            c.INITIAL_WINDOW_SIZE: limits.preread_size,
            c.MAX_HEADER_LIST_SIZE: limits.max_header_list,
        })
        self.h2.initiate_connection()
        # the connection's window as nginx's (the largest): each stream's own window
        # bounds what a client may send ahead of the request path reading it
        self.h2.increment_flow_control_window(_MAX_WINDOW - 65535)
        self._send()
        self._idle()

    def data_received(self, data: bytes) -> None:
        if self.dead:
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self._fail(e.error_code if hasattr(e, "error_code") else ErrorCodes.PROTOCOL_ERROR)
            return
        try:
            for ev in events:
                self._event(ev)
        except Exception as e:  # a bug: it costs this connection, never the event loop
            self.outer.handler.on_crash(self.outer, e)
            self.dead = True
            if self.transport is not None:
                self.transport.abort()
            return
        self._send()

    def eof_received(self) -> bool:
        return False  # the client is done: close

    def connection_lost(self, exc: Exception | None) -> None:
        self.dead = True
        for s in list(self.streams.values()):
            s.finished = True
            s.close_http1()
        self.outer.connection_lost(exc)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        for s in list(self.streams.values()):
            self.flush(s)
        self._send()

    # --- the outer connection's asks -----------------------------------------------------

    def expire(self) -> None:
        """No stream for ``keepalive_timeout``: GOAWAY, and closed; or the lingering
        after that is over."""
        if self.lingering:
            if self.transport is not None:
                self.transport.close()
        elif not self.streams:
            self._close(ErrorCodes.NO_ERROR)

    def close(self) -> None:
        """A graceful stop: no new stream; closed once those in progress are answered."""
        self._go_away()
        if not self.streams:
            self._close(ErrorCodes.NO_ERROR)

    # --- the ConnectionObserver of the streams' connections --------------------------------

    @property
    def stopping(self) -> bool:
        return self.outer.observer.stopping

    def admit(self) -> bool:
        return True

    def next_connection_id(self) -> int:
        return self.outer.connection_id

    def opened(self, conn: ClientConnection) -> None:
        pass

    def closed(self, conn: ClientConnection) -> None:
        pass

    def idle(self, delta: int) -> None:
        pass

    def certificate_status(self, conn: ClientConnection, policy: OcspPolicy,
                           chain: list[bytes]) -> Coroutine[Any, Any, str]:
        # (a stream's certificate is its connection's, checked there: never asked)
        return self.outer.observer.certificate_status(self.outer, policy, chain)

    # --- frames in ---------------------------------------------------------------------------

    def _event(self, ev: h2.events.Event) -> None:
        if isinstance(ev, h2.events.DataReceived):
            s = self.streams.get(ev.stream_id)
            if s is None or s.closed:
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                return
            s.unacked += ev.flow_controlled_length
            if ev.data:
                s.feed(ev.data)
            if s.reading:
                self.acknowledge(s)
        elif isinstance(ev, h2.events.RequestReceived):
            self._request(ev.stream_id, ev.headers or [], ev.stream_ended is not None)
        elif isinstance(ev, h2.events.StreamEnded):
            s = self.streams.get(ev.stream_id)
            if s is not None:
                s.end()
        elif isinstance(ev, h2.events.StreamReset):
            s = self.streams.get(ev.stream_id)
            if s is not None:  # the client gave up: its request is abandoned
                s.finished = True
                s.close_http1()
        elif isinstance(ev, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            for s in list(self.streams.values()):
                self.flush(s)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            # the client's GOAWAY: h2 sends nothing more after it, so the answers in
            # progress are abandoned, as the client said it will not read them
            self._close(None)
        # trailers from a client (a request body's) are dropped, as nginx; pings and
        # settings h2 answers itself

    def _request(self, sid: int, fields: list[tuple[bytes, bytes]], whole: bool) -> None:
        if self.going_away:
            self.h2.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        self.served += 1
        self.outer.requests += 1
        if self.served >= self.limits.max_requests:
            self._go_away()  # this stream is the connection's last (keepalive_requests)
        head, method, length = http1_head(fields, whole)
        if head is None:
            # a pseudo-field HTTP/1.1 could not carry (RFC 9113 8.1.1: malformed)
            self.h2.reset_stream(sid, ErrorCodes.PROTOCOL_ERROR)
            return
        self._serve(Stream(self, sid, method, length, fields), head)

    def _serve(self, stream: Stream, head: bytes) -> None:
        """A stream's request on a connection of its own."""
        sid = stream.sid
        self.streams[sid] = stream
        if len(self.streams) == 1:
            self.outer.set_idle(False)
            self.outer.deadline = 0.0
        conn = stream.conn = self.outer.stream_connection(self, self.label)
        conn.connection_made(stream)
        if not conn.closed:
            conn.data_received(head)

    def push_for(self, s: Stream, fields: list[tuple[bytes, bytes]]) -> None:
        """The pushes of ``s``'s answer, as nginx's ngx_http_v2_push_resources: on a
        client's stream (not a pushed one), not for HEAD, while the client takes pushes
        and the connection is not going away; relative URIs are warned of and skipped;
        past ``http2_max_concurrent_pushes`` (or without an authority) no more."""
        assert s.promised is not None
        paths, preload, warn = s.promised
        s.promised = None
        if (s.sid % 2 == 0 or s.method == b"HEAD" or self.going_away or self.dead
                or not self.h2.remote_settings.enable_push):
            return
        targets = [p for p in paths if p and p != b"off"]
        if preload:
            for name, value in fields:
                if name == b"link":
                    targets += preload_links(value)
        authority = next((v for n, v in s.fields if n == b":authority"), None) \
            or next((v for n, v in s.fields if n == b"host"), None)
        scheme = next((v for n, v in s.fields if n == b":scheme"), b"http")
        given = dict(s.fields)
        copied = [(n, given[n]) for n in (b"accept-encoding", b"accept-language",
                                          b"user-agent") if n in given]
        for path in targets:
            if path[:1] != b"/":
                warn(path)
                continue
            if self.pushing >= self.limits.max_pushes or authority is None:
                return
            if len(path) > _MAX_HEAD:
                continue
            promised = [(b":method", b"GET"), (b":path", path), (b":scheme", scheme),
                        (b":authority", authority), *copied]
            try:
                sid = self.h2.get_next_available_stream_id()
                self.h2.push_stream(s.sid, sid, promised)
            except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                return  # (the client's stream limit, or the stream is gone)
            head, method, length = http1_head(promised, True)
            if head is None:
                self.h2.reset_stream(sid, ErrorCodes.INTERNAL_ERROR)
                continue
            self.pushing += 1
            pushed = Stream(self, sid, method, length, promised)
            pushed.client_ended = True  # (nothing comes from the client on it)
            self._serve(pushed, head)
        self._send()

    def acknowledge(self, s: Stream) -> None:
        """The stream's DATA read so far is let through: its window opens again."""
        if s.unacked and not self.dead:
            n, s.unacked = s.unacked, 0
            self.h2.acknowledge_received_data(n, s.sid)
            self._send()

    # --- frames out ----------------------------------------------------------------------------

    def send_head(self, s: Stream, fields: list[tuple[bytes, bytes]]) -> None:
        if s.finished or self.dead:
            return
        try:
            self.h2.send_headers(s.sid, fields)
        except h2.exceptions.StreamClosedError:
            s.finished = True  # the client reset the stream meanwhile
        except h2.exceptions.ProtocolError:
            self.reset(s, ErrorCodes.INTERNAL_ERROR)  # a field HTTP/2 cannot carry
            return
        self._send()

    def flush(self, s: Stream) -> None:
        """As much of the stream's answer as the client's windows let through."""
        if not (s.finished or self.dead or self.paused):
            self._write_out(s)
        conn = s.conn
        if conn is not None and not s.closed:
            if s.pending_size > _HIGH and not s.writing_paused:
                s.writing_paused = True
                conn.pause_writing()
            elif s.pending_size <= _LOW and s.writing_paused and not s.resuming:
                # as a socket's transport does it: from the loop, never from inside a
                # write (flush runs inside the stream's own writes too)
                s.resuming = True
                self._loop.call_soon(self._resume, s)
        if s.finished and s.closed:
            self.settle(s)

    def _resume(self, s: Stream) -> None:
        s.resuming = False
        if s.writing_paused and s.pending_size <= _LOW and s.conn is not None \
                and not s.closed:
            s.writing_paused = False
            s.conn.resume_writing()

    def _write_out(self, s: Stream) -> None:
        h = self.h2
        try:
            while s.pending:
                room = min(h.local_flow_control_window(s.sid), h.max_outbound_frame_size)
                if room <= 0:
                    break
                chunk = s.pending[0]
                if len(chunk) > room:
                    s.pending[0] = chunk[room:]
                    chunk = chunk[:room]
                else:
                    s.pending.popleft()
                s.pending_size -= len(chunk)
                h.send_data(s.sid, chunk)
            if s.ended and not s.pending:
                if s.trailers:
                    h.send_headers(s.sid, s.trailers, end_stream=True)
                else:
                    h.end_stream(s.sid)
                s.finished = True
                if not s.client_ended:
                    # answered before the client finished sending: it need send no more
                    h.reset_stream(s.sid, ErrorCodes.NO_ERROR)
        except h2.exceptions.StreamClosedError:
            s.finished = True  # the client reset the stream meanwhile
        self._send()

    def reset(self, s: Stream, code: ErrorCodes) -> None:
        if not s.finished and not self.dead:
            s.finished = True
            try:
                self.h2.reset_stream(s.sid, code)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass
            self._send()
        s.close_http1()

    def settle(self, s: Stream) -> None:
        """A stream whose request is served and whose answer is sent (or cut) is gone."""
        if not (s.closed and (s.finished or self.dead)):
            return
        if self.streams.pop(s.sid, None) is None:
            return
        if s.sid % 2 == 0:
            self.pushing -= 1
        if s.unacked:
            self.acknowledge(s)
        if not self.streams:
            if self.going_away:
                self._close(ErrorCodes.NO_ERROR)
            else:
                self.outer.set_idle(True)
                self._idle()

    def _idle(self) -> None:
        self.outer.deadline = self._loop.time() + self.limits.idle_timeout

    def _go_away(self) -> None:
        """GOAWAY naming the last stream taken; the connection stays for those open.
        (h2's own GOAWAY would refuse their answers.)"""
        if self.going_away or self.dead or self.transport is None:
            return
        self.going_away = True
        self._send()
        frame = GoAwayFrame(0, last_stream_id=self.h2.highest_inbound_stream_id,
                            error_code=ErrorCodes.NO_ERROR)
        self.transport.write(frame.serialize())

    def _close(self, code: ErrorCodes | None) -> None:
        if self.dead:
            return
        self.dead = True
        if code is not None:
            try:
                self.h2.close_connection(code)
            except h2.exceptions.ProtocolError:
                pass
            self._send()
        t = self.transport
        if t is None or t.is_closing():
            return
        if t.can_write_eof():
            # nginx's lingering close: what the client still sends (a WINDOW_UPDATE, a
            # SETTINGS ack) must not reset the connection before it has read our last
            # frames; read and dropped for at most LINGERING_TIME
            self.lingering = True
            t.write_eof()
            self.outer.deadline = self._loop.time() + LINGERING_TIME
        else:
            t.close()

    def _fail(self, code: int) -> None:
        """A connection error (RFC 9113 5.4.1): GOAWAY with its code; the streams in
        progress are abandoned."""
        try:
            known = ErrorCodes(code)
        except ValueError:
            known = ErrorCodes.PROTOCOL_ERROR
        self._close(known)

    def _send(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


def preload_links(value: bytes) -> list[bytes]:
    """The URIs one ``Link`` header asks to preload, read as nginx's push_preload
    reads it (ngx_http_v2_push_resources): each ``<URI>`` whose parameters hold
    ``rel=preload`` (or ``rel="... preload ..."``) and no ``nopush``, not one starting
    with ``//``; a link it cannot read ends the header's reading."""
    out: list[bytes] = []
    end = len(value)
    start = 0
    while True:  # (nginx's next_link)
        while start < end and value[start] == 0x20:
            start += 1
        if start == end or value[start] != 0x3C:  # "<"
            return out
        start += 1
        while start < end and value[start] == 0x20:
            start += 1
        last = value.find(b">", start)
        if last < 0 or last == start:
            return out
        path = value[start:last]
        start = last + 1
        while start < end and value[start] == 0x20:
            start += 1
        if start == end:
            return out
        if value[start] == 0x2C:  # ","
            start += 1
            continue
        if value[start] != 0x3B:  # ";"
            return out
        start += 1
        last = value.find(b",", start)
        if last < 0:
            last = end
        push = False
        while True:  # the link's parameters, to the next comma
            while start < last and value[start] == 0x20:
                start += 1
            low = value[start:last].lower()
            if low.startswith(b"nopush") and (len(low) == 6 or low[6] in b" ;"):
                push = False
                break
            if low.startswith(b"rel=preload"):
                start += 11
                if start == last or value[start] in b" ;":
                    push = True
            elif low.startswith(b"rel="):
                start += 4
                while start < last and value[start] == 0x20:
                    start += 1
                opened = start < last and value[start] == 0x22  # '"'
                start += start < last  # (nginx's *start++: past it either way)
                if opened:
                    while True:
                        while start < last and value[start] == 0x20:
                            start += 1
                        if value[start:start + 7].lower() == b"preload" \
                                and start + 7 <= last:
                            start += 7
                            if start < last and value[start] in b' "':
                                push = True
                                break
                        while start < last and value[start] not in b' "':
                            start += 1
                        if start == last or value[start] == 0x22:
                            break
                        start += 1
            semi = value.find(b";", start, last)
            if semi < 0:
                break
            start = semi + 1
        if push:
            path = path.rstrip(b" ")
        if push and path and not path.startswith(b"//"):
            out.append(path)
        if last >= end:
            return out
        start = last + 1


def http1_head(fields: list[tuple[bytes, bytes]], whole: bool,
                ) -> tuple[bytes | None, bytes, int]:
    """The HTTP/1.1 head a stream's fields stand for, the method, and the body's length
    (-1: chunked, as a client may send DATA without ``content-length``; none when the
    stream ended with its HEADERS, ``whole``). None when a
    pseudo-field cannot be written into a request line: the method must be a token and
    the path free of spaces and controls (h2 has refused CR, LF and NUL anywhere)."""
    method = path = authority = b""
    length = 0
    has_length = False
    lines = []
    cookies = []
    for name, value in fields:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            continue  # :scheme is the connection's
        if name == b"content-length":
            number = decimal(value)
            if number is None:
                return None, method, 0
            has_length = True
            length = number
        elif name == b"host":
            authority = b""  # the client's own Host (h2 has checked it matches)
        elif name == b"cookie":
            # HTTP/2 may split the cookie into crumbs (RFC 9113 8.2.3); HTTP/1.1 has one
            # field, joined last as nginx's ngx_http_v2_construct_cookie_header does
            cookies.append(value)
            continue
        lines.append(b"%b: %b\r\n" % (name, value))
    if not _is_token(method) or not path or any(c <= 0x20 or c == 0x7f for c in path):
        return None, method, 0
    if method == b"CONNECT":
        return None, method, 0
    head = [b"%b %b HTTP/1.1\r\n" % (method, path)]
    if authority:
        head.append(b"host: %b\r\n" % authority)
    head += lines
    if cookies:
        head.append(b"cookie: %b\r\n" % b"; ".join(cookies))
    if not has_length and not whole:
        length = -1
        head.append(b"transfer-encoding: chunked\r\n")
    head.append(b"\r\n")
    return b"".join(head), method, length


_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                   b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _is_token(value: bytes) -> bool:
    return bool(value) and all(c in _TCHAR for c in value)
