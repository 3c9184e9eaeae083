"""least_conn with requests really in progress, end to end on both engines and both
exchange paths (pooled connections: the callback path; none: the task path): a server
busy with a request its backend holds gets no new ones, and counts again once that
request's client went away. Which server each method picks is compared with nginx in
test_nginx_parity_e2e.py."""

from __future__ import annotations

import http.client
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from raw_backend import RawBackend, Received


def _answer(req: Received) -> bytes:
    if req.target.startswith(b"/hold"):
        return b""  # takes the request, never answers
    return b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + req.target[-1:]


@pytest.fixture
def backends() -> Iterator[tuple[RawBackend, RawBackend]]:
    a, b = RawBackend(answer=_answer), RawBackend(answer=_answer)
    yield a, b
    a.stop()
    b.stop()


def _get(port: int, path: str) -> int:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


@pytest.mark.parametrize("keepalive", [16, 0], ids=["callback", "task"])
def test_least_conn_counts_requests_in_progress(gateway, free, backends,  # type: ignore[no-untyped-def]
                                                keepalive: int) -> None:
    a, b = backends
    port = free()
    gateway(f"""http {{ access_log off;
      upstream pool {{ least_conn; server 127.0.0.1:{a.port}; server 127.0.0.1:{b.port};
                      keepalive {keepalive}; }}
      server {{ listen 127.0.0.1:{port}; proxy_read_timeout 30s;
        location / {{ proxy_pass http://pool; }} }} }}""", port)
    assert _get(port, "/warm/a") == 200 and _get(port, "/warm/b") == 200
    held_on = len(a.requests()), len(b.requests())
    holder = socket.create_connection(("127.0.0.1", port), timeout=10)
    holder.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 10
    while (len(a.requests()), len(b.requests())) == held_on and time.monotonic() < deadline:
        time.sleep(0.02)
    busy, idle = (a, b) if len(a.requests()) > held_on[0] else (b, a)
    before = len(busy.requests())
    for i in range(6):
        assert _get(port, f"/n{i}") == 200
    assert len(busy.requests()) == before  # all six went to the idle server
    # the client goes away (a reset: a FIN alone is a half-close, and the answer would
    # still be awaited): its exchange ends, the server counts as idle again
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    holder.close()
    time.sleep(0.3)
    for i in range(6):
        assert _get(port, f"/m{i}") == 200
    assert len(busy.requests()) == before + 3 and len(idle.requests()) >= 9
