"""A small blocking HTTP/2 client for the tests (h2 over a socket): cleartext with prior
knowledge, or TLS with ALPN h2. It sends requests as given (several at once on one
connection, any fields, bodies in pieces, resets) and collects, per stream, the status,
the fields, the body, the trailers, and how the stream ended; the streams a server
pushes likewise, with their promises."""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions


@dataclass
class Answer:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[int] = field(default_factory=list)
    ended: bool = False
    reset: int | None = None  # the RST_STREAM error code, if reset

    def header(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)


class H2Client:
    def __init__(self, port: int, tls: bool = False, timeout: float = 10.0,
                 validate: bool = True, settings: dict[int, int] | None = None,
                 before: bytes = b"", context: ssl.SSLContext | None = None) -> None:
        """``before``: bytes sent first, before the TLS handshake (a PROXY header);
        ``context``: the client's own TLS context (it offers h2 by ALPN)."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if before:
            sock.sendall(before)
        if tls:
            ctx = context or ssl.create_default_context()
            if context is None:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
            assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()
        self.sock = sock
        self.timeout = timeout
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=validate,
            normalize_outbound_headers=validate))
        _read_after_goaway(self.conn)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.answers: dict[int, Answer] = {}
        # each PUSH_PROMISE: (the stream it came on, the pushed stream, its fields)
        self.promises: list[tuple[int, int, list[tuple[bytes, bytes]]]] = []
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path: str = "/", method: str = "GET", headers: dict[str, str] | None = None,
                body: bytes | None = None, end: bool = True, authority: str = "localhost",
                fields: list[tuple[bytes, bytes]] | None = None) -> int:
        """Open a stream; returns its id. ``fields`` replaces the whole field list."""
        sid = self.conn.get_next_available_stream_id()
        if fields is None:
            fields = [(b":method", method.encode()), (b":path", path.encode()),
                      (b":scheme", b"http"), (b":authority", authority.encode())]
            fields += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        self.answers[sid] = Answer()
        self.conn.send_headers(sid, fields, end_stream=end and not body)
        if body:
            self.send(sid, body, end=end)
        self._flush()
        return sid

    def send(self, sid: int, data: bytes, end: bool = False) -> None:
        while data:
            room = min(self.conn.local_flow_control_window(sid),
                       self.conn.max_outbound_frame_size)
            if room <= 0:
                self.read_once()
                continue
            self.conn.send_data(sid, data[:room])
            data = data[room:]
            self._flush()
        if end:
            self.conn.end_stream(sid)
        self._flush()

    def reset(self, sid: int) -> None:
        self.conn.reset_stream(sid, 8)  # CANCEL
        self._flush()

    def read_once(self) -> None:
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("no answer in time") from None
        if not data:
            self.closed = True
            return
        for ev in self.conn.receive_data(data):
            self._event(ev)
        self._flush()

    def _event(self, ev: h2.events.Event) -> None:
        if isinstance(ev, h2.events.PushedStreamReceived):
            self.promises.append((ev.parent_stream_id, ev.pushed_stream_id, list(ev.headers)))
            self.answers[ev.pushed_stream_id] = Answer()
            return
        sid = getattr(ev, "stream_id", None)
        a = self.answers.get(sid) if sid else None
        if isinstance(ev, h2.events.ResponseReceived) and a is not None:
            fields = dict(ev.headers)
            a.status = int(fields[b":status"])
            a.headers = [(n, v) for n, v in ev.headers if not n.startswith(b":")]
        elif isinstance(ev, h2.events.InformationalResponseReceived) and a is not None:
            a.informational.append(int(dict(ev.headers)[b":status"]))
        elif isinstance(ev, h2.events.DataReceived) and a is not None:
            a.body += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived) and a is not None:
            a.trailers = list(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded) and a is not None:
            a.ended = True
        elif isinstance(ev, h2.events.StreamReset) and a is not None:
            a.reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev

    def wait(self, *sids: int, timeout: float | None = None) -> list[Answer]:
        """Read until each stream has ended or been reset (or the connection closed)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        want = sids or tuple(self.answers)
        while not all(self.answers[s].ended or self.answers[s].reset is not None
                      for s in want):
            if self.closed or time.monotonic() > deadline:
                break
            self.read_once()
        return [self.answers[s] for s in want]

    def get(self, path: str = "/", **kw: object) -> Answer:
        return self.wait(self.request(path, **kw))[0]  # type: ignore[arg-type]

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self._flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_after_goaway(conn: h2.connection.H2Connection) -> None:
    """h2 takes a GOAWAY as the end of everything, even of the frames that came with it;
    RFC 9113 6.8 lets the streams it names finish, and the tests read their answers: in
    the closed state, this connection takes what it took while open (it opens no new
    stream: the tests do not ask it to)."""
    cs = h2.connection.ConnectionState
    machine = conn.state_machine
    table = dict(machine._transitions)
    for (state, event), (func, _) in list(table.items()):
        if state is cs.CLIENT_OPEN and (cs.CLOSED, event) not in table:
            table[(cs.CLOSED, event)] = (func, cs.CLOSED)
    machine._transitions = table  # type: ignore[misc]
