"""``proxy_ignore_client_abort``: a client that goes away before its answer ends the
upstream exchange (nginx's 499, the upstream connection closed) by default; with
``on`` the upstream is left to answer, its answer read to the end and dropped, and its
connection may carry the next request, as nginx's buffered relay does."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from e2e_util import Listener, raw_exchange, status_of

BODY = b"x" * 200_000  # (more than one read: the relay is under way when the client left)


class SlowBackend(Listener):
    """Answers each request after ``delay`` seconds; records, for each, whether the
    gateway had closed the connection by then (and counts connections)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.closed_before_answer: list[bool] = []
        super().__init__(self._serve)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                delay = self.delay if b"/slow" in head.split(b"\r\n")[0] else 0
                time.sleep(delay)
                if delay:
                    conn.settimeout(None)  # (a timeout would make the peek wait first)
                    try:
                        peeked = conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                        self.closed_before_answer.append(peeked == b"")
                    except BlockingIOError:
                        self.closed_before_answer.append(False)
                    except OSError:
                        self.closed_before_answer.append(True)
                    conn.settimeout(10)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(BODY), BODY))
        except OSError:
            pass
        finally:
            conn.close()


@pytest.fixture
def slow() -> Iterator[SlowBackend]:
    b = SlowBackend(0.6)
    yield b
    b.stop()


def _leave_early(port: int, path: bytes) -> None:
    """A request whose client goes away 0.2 s later, before the answer: its connection
    reset (a client that only closes its sending side is still answered: README)."""
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.2)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


@pytest.mark.parametrize("path", ["callback", "task"])
@pytest.mark.parametrize("setting", ["on", "off"])
def test_proxy_ignore_client_abort(path: str, setting: str, slow: SlowBackend, gateway,
                                   free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gateway(f"""http {{ access_log off;
      upstream be {{ server 127.0.0.1:{slow.port}; keepalive 4; }}
      server {{ listen 127.0.0.1:{port};
        location / {{ proxy_ignore_client_abort {setting}; proxy_pass http://be; }} }} }}""",
            port)
    if path == "callback":  # (a pooled idle connection: the callback path may take it)
        warm = raw_exchange(port, b"GET /w HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert status_of(warm) == 200 and warm.endswith(BODY)
    _leave_early(port, b"/slow")
    time.sleep(0.8)  # (the answer came, 0.6 s after the request)
    if setting == "off":  # nginx's 499: the upstream connection closed with the request
        assert slow.closed_before_answer == [True]
    else:  # the upstream answered on its connection, read to the end...
        assert slow.closed_before_answer == [False]
    before = slow.connections
    out = raw_exchange(port, b"GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(out) == 200 and out.endswith(BODY)
    if setting == "on":  # ...so that connection carried the next request
        assert slow.connections == before, (before, slow.connections)
