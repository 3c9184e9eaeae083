"""A FastCGI application for the tests that keeps every byte it receives (in the test
process: a thread with its own event loop), on a loopback port or a unix socket.

Its records are read here with ``struct``, not with fastgate's own codec, so that the
two do not share a mistake. Each request is answered by ``answer(received)``: the bytes
of its STDOUT (a CGI response) and of its STDERR; the default echoes the parameters as
JSON. With ``close_early`` it closes the connection after STDOUT, before END_REQUEST.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FcgiReceived:
    params: list[tuple[bytes, bytes]]
    stdin: bytes
    keep_conn: bool

    def param(self, name: bytes) -> bytes | None:
        found = [v for n, v in self.params if n == name]
        return found[-1] if found else None


def _pairs(data: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    i = 0
    while i < len(data):
        lens = []
        for _ in range(2):
            if data[i] >> 7:
                lens.append(struct.unpack(">I", data[i:i + 4])[0] & 0x7FFFFFFF)
                i += 4
            else:
                lens.append(data[i])
                i += 1
        out.append((data[i:i + lens[0]], data[i + lens[0]:i + lens[0] + lens[1]]))
        i += lens[0] + lens[1]
    return out


def _record(kind: int, content: bytes) -> bytes:
    return struct.pack(">BBHHBx", 1, kind, 1, len(content), 0) + content


def default_answer(r: FcgiReceived) -> tuple[bytes, bytes]:
    body = json.dumps({n.decode("latin-1"): v.decode("latin-1") for n, v in r.params}
                      | {"stdin": r.stdin.decode("latin-1")}).encode()
    return b"Content-Type: application/json\r\n\r\n" + body, b""


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    raw: list[bytes] = field(default_factory=list)
    requests: list[FcgiReceived] = field(default_factory=list)
    answer: Callable[[FcgiReceived], tuple[bytes, bytes]] = default_answer
    close_early: bool = False


class _Recording(asyncio.Protocol):
    """A connection of a recording application: every byte kept (``state.raw``) and
    gathered in ``buf`` for the parser of its protocol."""

    state: _State | _StreamState

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def keep(self, data: bytes) -> None:
        with self.state.lock:
            self.state.raw.append(data)
        self.buf += data


class _Conn(_Recording):
    def __init__(self, state: _State) -> None:
        self.state = state
        self.buf = b""
        self.params = b""
        self.stdin = b""
        self.keep_conn = False

    def data_received(self, data: bytes) -> None:
        self.keep(data)
        while len(self.buf) >= 8:
            _, kind, _, length, padding = struct.unpack(">BBHHBx", self.buf[:8])
            if len(self.buf) < 8 + length + padding:
                return
            content = self.buf[8:8 + length]
            self.buf = self.buf[8 + length + padding:]
            if kind == 1:
                self.keep_conn = bool(content[2] & 1)
            elif kind == 4:
                self.params += content
            elif kind == 5 and content:
                self.stdin += content
            elif kind == 5:
                self._answer()

    def _answer(self) -> None:
        r = FcgiReceived(_pairs(self.params), self.stdin, self.keep_conn)
        with self.state.lock:
            self.state.requests.append(r)
        out, err = self.state.answer(r)
        t = self.t
        if err:
            t.write(_record(7, err))  # type: ignore[attr-defined]
        for i in range(0, len(out), 1000):  # several records, as applications send them
            t.write(_record(6, out[i:i + 1000]))  # type: ignore[attr-defined]
        if self.state.close_early:
            t.close()
            return
        t.write(_record(6, b"") + _record(3, struct.pack(">IB3x", 0, 0)))  # type: ignore[attr-defined]
        t.close()  # no KEEP_CONN asked: the application closes


class FastcgiBackend:
    """``FastcgiBackend()`` on a loopback port (``port``), or on ``unix`` (a path)."""

    def __init__(self, answer: Callable[[FcgiReceived], tuple[bytes, bytes]] | None = None,
                 unix: str | None = None, close_early: bool = False,
                 tls: ssl.SSLContext | None = None) -> None:
        self._state = _State(close_early=close_early)
        if answer is not None:
            self._state.answer = answer
        self._unix = unix
        self._tls = tls
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("FastCGI backend did not start")

    def _protocol(self) -> asyncio.Protocol:
        return _Conn(self._state)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        if self._unix is not None:
            made = self._loop.create_unix_server(self._protocol, self._unix, ssl=self._tls)
        else:
            made = self._loop.create_server(self._protocol, "127.0.0.1", 0, ssl=self._tls)
        server = self._loop.run_until_complete(made)
        self.port = 0 if self._unix is not None else server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())

    def requests(self) -> list[FcgiReceived]:
        with self._state.lock:
            return list(self._state.requests)

    def raw(self) -> bytes:
        with self._state.lock:
            return b"".join(self._state.raw)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


# an answer ending so is cut by a TCP reset after what precedes it
RESET = b"<RESET>"


class _StreamConn(_Recording):
    """uwsgi or SCGI: the request is read whole (its size is in its first bytes), the
    answer written, the connection closed."""

    def __init__(self, state: _StreamState) -> None:
        self.state = state
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.keep(data)
        got = self.state.parse(self.buf)
        if got is None:
            return
        with self.state.lock:
            self.state.requests.append(got)
        out = self.state.answer(got)
        if out.endswith(RESET):  # the connection is reset after the bytes before it
            self.t.write(out[:-len(RESET)])  # type: ignore[attr-defined]
            sock = self.t.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.t.abort()
            return
        self.t.write(out)  # type: ignore[attr-defined]
        self.t.close()


def parse_uwsgi(buf: bytes) -> FcgiReceived | None:
    if len(buf) < 4:
        return None
    size = struct.unpack("<H", buf[1:3])[0]
    if len(buf) < 4 + size:
        return None
    data, rest = buf[4:4 + size], buf[4 + size:]
    pairs = []
    i = 0
    while i + 2 <= len(data):  # (uwsgi_string's bytes may follow the pairs)
        k = struct.unpack("<H", data[i:i + 2])[0]
        if i + 2 + k + 2 > len(data):
            break
        name = data[i + 2:i + 2 + k]
        v = struct.unpack("<H", data[i + 2 + k:i + 4 + k])[0]
        if i + 4 + k + v > len(data):
            break
        pairs.append((name, data[i + 4 + k:i + 4 + k + v]))
        i += 4 + k + v
    got = FcgiReceived(pairs, b"", False)
    length = int(got.param(b"CONTENT_LENGTH") or b"0")
    if len(rest) < length:
        return None
    got.stdin = rest[:length]
    return got


def parse_scgi(buf: bytes) -> FcgiReceived | None:
    colon = buf.find(b":")
    if colon < 0 or len(buf) < colon + 2 + int(buf[:colon]):
        return None
    size = int(buf[:colon])
    fields = buf[colon + 1:colon + 1 + size].split(b"\0")[:-1]
    got = FcgiReceived(list(zip(fields[::2], fields[1::2], strict=True)), b"", False)
    rest = buf[colon + 2 + size:]
    length = int(got.param(b"CONTENT_LENGTH") or b"0")
    if len(rest) < length:
        return None
    got.stdin = rest[:length]
    return got


@dataclass
class _StreamState:
    parse: Callable[[bytes], FcgiReceived | None]
    answer: Callable[[FcgiReceived], bytes]
    lock: threading.Lock = field(default_factory=threading.Lock)
    raw: list[bytes] = field(default_factory=list)
    requests: list[FcgiReceived] = field(default_factory=list)


class StreamBackend(FastcgiBackend):
    """A uwsgi (``kind="uwsgi"``) or SCGI application that keeps every byte; each
    request is answered with ``answer(received)``'s bytes, then the connection closes."""

    def __init__(self, kind: str, answer: Callable[[FcgiReceived], bytes],
                 tls: ssl.SSLContext | None = None, unix: str | None = None) -> None:
        self._stream = _StreamState(parse_uwsgi if kind == "uwsgi" else parse_scgi, answer)
        super().__init__(tls=tls, unix=unix)

    def _protocol(self) -> asyncio.Protocol:
        return _StreamConn(self._stream)

    def requests(self) -> list[FcgiReceived]:
        with self._stream.lock:
            return list(self._stream.requests)

    def raw(self) -> bytes:
        with self._stream.lock:
            return b"".join(self._stream.raw)
