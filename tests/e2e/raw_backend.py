"""A backend for the security tests that keeps every byte it receives.

It runs in the test process (a thread with its own event loop), so a test can ask what
reached it — and, above all, what did not. Requests are parsed only as far as needed to
answer them (head, Content-Length or chunked body); ``raw()`` is everything received on
every connection, whether it parsed or not.

Answers: 200 with a small JSON body, keep-alive. A request for ``/ws...`` that carries
an Upgrade header gets ``101`` and its connection echoes from then on; ``/switch``
answers ``101`` whatever was asked (a backend that switches on its own).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Received:
    connection: int
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name.lower()]


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    raw: list[bytes] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    peers: list[str] = field(default_factory=list)  # each connection's source address
    answer: Callable[[Received], bytes | None] | None = None


class _Conn(asyncio.Protocol):
    def __init__(self, state: _State) -> None:
        self.state = state
        self.buf = b""
        self.echo = False
        with state.lock:
            state.connections += 1
            self.cid = state.connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        peer = transport.get_extra_info("peername")
        with self.state.lock:  # (a unix socket's peer has no address)
            self.state.peers.append(peer[0] if isinstance(peer, tuple) else "unix")

    def data_received(self, data: bytes) -> None:
        with self.state.lock:
            self.state.raw.append(data)
        if self.echo:
            self.t.write(data)  # type: ignore[attr-defined]
            return
        self.buf += data
        while not self.echo:
            req = self._take()
            if req is None:
                return
            self._answer(req)

    def _take(self) -> Received | None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = self.buf[:end].split(b"\r\n")
        method, target, _ = lines[0].split(b" ", 2)
        headers = [tuple(line.split(b":", 1)) for line in lines[1:]]
        headers = [(n, v.strip()) for n, v in headers]  # type: ignore[misc]
        rest = self.buf[end + 4:]
        names = {n.lower(): v for n, v in headers}
        if names.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = b""
            pos = 0
            while True:
                eol = rest.find(b"\r\n", pos)
                if eol < 0:
                    return None
                size = int(rest[pos:eol].split(b";")[0], 16)
                if len(rest) < eol + 2 + size + 2:
                    return None
                body += rest[eol + 2:eol + 2 + size]
                pos = eol + 2 + size + 2
                if size == 0:
                    break
            self.buf = rest[pos:]
        else:
            n = int(names.get(b"content-length", b"0"))
            if len(rest) < n:
                return None
            body, self.buf = rest[:n], rest[n:]
        req = Received(self.cid, method, target, headers, body)  # type: ignore[arg-type]
        with self.state.lock:
            self.state.requests.append(req)
        return req

    def _answer(self, req: Received) -> None:
        if self.state.answer is not None:
            out = self.state.answer(req)
            if out is not None:  # (None: the answer below)
                self.t.write(out)  # type: ignore[attr-defined]
                return
        path = req.target.split(b"?", 1)[0]
        if path == b"/switch" or (path.startswith(b"/ws") and req.header(b"upgrade")):
            self.t.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"  # type: ignore[attr-defined]
                         b"Connection: Upgrade\r\n\r\n")
            self.echo = True
            if self.buf:
                self.t.write(self.buf)  # type: ignore[attr-defined]
                self.buf = b""
            return
        body = json.dumps({"ok": True, "target": req.target.decode("latin-1")}).encode()
        self.t.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"  # type: ignore[attr-defined]
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


class RawBackend:
    """Start with ``RawBackend()``, read ``port``; ``stop()`` when done. With ``tls`` (a
    server context) it speaks HTTPS; with ``answer``, that function's bytes answer each
    request; with ``unix``, it listens on that socket (``port`` 0)."""

    def __init__(self, tls: ssl.SSLContext | None = None,
                 answer: Callable[[Received], bytes | None] | None = None,
                 unix: str | None = None) -> None:
        self._tls = tls
        self._unix = unix
        self._state = _State(answer=answer)
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("raw backend did not start")

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
        self._loop.run_until_complete(server.wait_closed())

    def requests(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.requests)

    def peers(self) -> list[str]:
        """The source address of each connection, in order."""
        with self._state.lock:
            return list(self._state.peers)

    def raw(self) -> bytes:
        with self._state.lock:
            return b"".join(self._state.raw)

    def seen(self, marker: bytes) -> bool:
        """Whether any byte sequence ``marker`` reached this backend, parsed or not."""
        return marker in self.raw()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
