"""A gRPC-style HTTP/2 application for the tests (cleartext h2 with prior knowledge, or
over TLS with ALPN h2) that keeps every request it receives: its header fields as they
came (no validation, no normalisation: what a gateway sent is what is kept), its body,
and every raw byte. In the test process: a thread with its own event loop.

Each request is answered by ``answer(received)``, a list of steps: ("head", status,
fields), ("data", bytes), ("trailers", fields), ("end",), ("reset", code),
("goaway", code, last_stream), ("close",), ("wait",) (nothing more: the connection stays
open). The default echoes the request as JSON with gRPC's trailers. A call whose path
ends in ``/Chat`` is answered as it comes instead (a bidirectional stream): the head at
once, each DATA frame echoed as it arrives, the trailers when the client ends."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, RequestReceived, StreamEnded, WindowUpdated

Fields = list[tuple[bytes, bytes]]


@dataclass
class GrpcReceived:
    fields: Fields
    body: bytes = b""

    def get(self, name: bytes) -> bytes | None:
        found = [v for n, v in self.fields if n == name]
        return found[-1] if found else None

    @property
    def path(self) -> str:
        return (self.get(b":path") or b"").decode("latin-1")


def echo(r: GrpcReceived) -> list[tuple[Any, ...]]:
    body = json.dumps({"fields": [[n.decode("latin-1"), v.decode("latin-1")]
                                  for n, v in r.fields],
                       "body": r.body.decode("latin-1")}).encode()
    head_only = r.get(b":method") == b"HEAD"  # (a body there breaks HTTP/2)
    return [("head", 200, [(b"content-type", b"application/grpc"), (b"x-app", b"grpc")]),
            ("data", b"" if head_only else body),
            ("trailers", [(b"grpc-status", b"0"), (b"grpc-message", b"ok")])]


@dataclass
class _State:
    answer: Callable[[GrpcReceived], list[tuple[Any, ...]]]
    lock: threading.Lock = field(default_factory=threading.Lock)
    raw: list[bytes] = field(default_factory=list)
    requests: list[GrpcReceived] = field(default_factory=list)
    closed: int = 0  # connections that ended


class _Conn(asyncio.Protocol):
    def __init__(self, state: _State) -> None:
        self.state = state
        self.h2 = H2Connection(H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=False,
            normalize_inbound_headers=False, validate_outbound_headers=False))
        self.got: dict[int, GrpcReceived] = {}
        self.steps: dict[int, list[tuple[Any, ...]]] = {}
        self.live: set[int] = set()  # /Chat streams, echoed as they come

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: Any = transport
        self.h2.initiate_connection()
        self.t.write(self.h2.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        with self.state.lock:
            self.state.closed += 1

    def _drip(self, sid: int) -> None:
        """("drip",): a message every tenth of a second, never the end (a server
        stream), until the connection goes."""
        if self.t.is_closing():
            return
        self.h2.send_data(sid, b"\x00\x00\x00\x00\x04tick")
        self.t.write(self.h2.data_to_send())
        asyncio.get_running_loop().call_later(0.1, self._drip, sid)

    def data_received(self, data: bytes) -> None:
        with self.state.lock:
            self.state.raw.append(data)
        try:
            events = self.h2.receive_data(data)
        except Exception:  # (what a gateway sent that HTTP/2 refuses: kept, then closed)
            self.t.close()
            return
        for ev in events:
            if isinstance(ev, RequestReceived):
                self.got[ev.stream_id] = GrpcReceived(list(ev.headers))
                if self.got[ev.stream_id].path.endswith("/Chat"):
                    self.live.add(ev.stream_id)
                    self.h2.send_headers(ev.stream_id, [(b":status", b"200"),
                                                        (b"content-type", b"application/grpc")])
            elif isinstance(ev, DataReceived):
                self.got[ev.stream_id].body += ev.data
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if ev.stream_id in self.live and ev.data:
                    self.h2.send_data(ev.stream_id, ev.data)
            elif isinstance(ev, StreamEnded) and ev.stream_id in self.live:
                with self.state.lock:
                    self.state.requests.append(self.got[ev.stream_id])
                self.h2.send_headers(ev.stream_id, [(b"grpc-status", b"0")], end_stream=True)
            elif isinstance(ev, StreamEnded):
                r = self.got[ev.stream_id]
                with self.state.lock:
                    self.state.requests.append(r)
                self.steps[ev.stream_id] = list(self.state.answer(r))
                if not self._pump(ev.stream_id):
                    return
            elif isinstance(ev, WindowUpdated):
                for sid in list(self.steps):
                    if not self._pump(sid):
                        return
        out = self.h2.data_to_send()
        if out:
            self.t.write(out)

    def _pump(self, sid: int) -> bool:
        """The answer's steps, as far as the client's windows allow (False: closed)."""
        h2 = self.h2
        steps = self.steps[sid]
        while steps:
            step = steps[0]
            kind = step[0]
            if kind == "head":
                h2.send_headers(sid, [(b":status", str(step[1]).encode()), *step[2]],
                                end_stream=len(step) > 3 and step[3])
            elif kind == "data":
                data = step[1]
                while data:
                    room = min(h2.local_flow_control_window(sid), 16384)
                    if room <= 0:
                        steps[0] = ("data", data)
                        return True  # (the rest when the window opens)
                    h2.send_data(sid, data[:room])
                    data = data[room:]
            elif kind == "trailers":
                h2.send_headers(sid, step[1], end_stream=True)
            elif kind == "end":
                h2.end_stream(sid)
            elif kind == "reset":
                h2.reset_stream(sid, step[1])
            elif kind == "goaway":
                h2.close_connection(step[1], last_stream_id=step[2])
            elif kind == "close":
                self.t.write(h2.data_to_send())
                self.t.close()
                return False
            elif kind == "wait":
                break
            elif kind == "drip":
                self.t.write(h2.data_to_send())
                asyncio.get_running_loop().call_later(0.1, self._drip, sid)
                break
            steps.pop(0)
        del self.steps[sid]
        return True


class GrpcBackend:
    """``GrpcBackend(answer)`` on a loopback port (``port``), or on the unix socket
    ``unix``; ``tls``: over TLS, the name each handshake asked for (SNI, None: none)
    kept in ``names``."""

    def __init__(self, answer: Callable[[GrpcReceived], list[tuple[Any, ...]]] = echo,
                 tls: ssl.SSLContext | None = None, unix: str | None = None) -> None:
        self._state = _State(answer)
        self._tls = tls
        self._unix = unix
        self.names: list[str | None] = []
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.names.append(name)
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("gRPC backend did not start")

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        if self._unix is not None:
            made = self._loop.create_unix_server(lambda: _Conn(self._state), self._unix,
                                                 ssl=self._tls)
        else:
            made = self._loop.create_server(lambda: _Conn(self._state), "127.0.0.1", 0,
                                            ssl=self._tls)
        server = self._loop.run_until_complete(made)
        self.port = 0 if self._unix is not None else server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()
        server.close()

    def requests(self) -> list[GrpcReceived]:
        with self._state.lock:
            return list(self._state.requests)

    def raw(self) -> bytes:
        with self._state.lock:
            return b"".join(self._state.raw)

    def closed(self) -> int:
        with self._state.lock:
            return self._state.closed

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
