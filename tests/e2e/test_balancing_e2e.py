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


@pytest.mark.parametrize("keepalive", [16, 0], ids=["callback", "task"])
def test_max_conns_skips_a_server_at_its_limit(gateway, free, backends,  # type: ignore[no-untyped-def]
                                               keepalive: int) -> None:
    """server ... max_conns=1 (nginx's, per worker as without a zone): while a request
    holds the server, the next goes to the backup; a group of that server alone answers
    502 ("no live upstreams") without reaching it; once the holder is gone, it is asked
    again. (fastgate refused the parameter at load.)"""
    a, b = backends
    port, alone = free(), free()
    gateway(f"""http {{ access_log off;
      upstream pool {{ server 127.0.0.1:{a.port} max_conns=1; server 127.0.0.1:{b.port} backup;
                      keepalive {keepalive}; }}
      upstream one {{ server 127.0.0.1:{a.port} max_conns=1; keepalive {keepalive}; }}
      server {{ listen 127.0.0.1:{port}; proxy_read_timeout 30s;
        location / {{ proxy_pass http://pool; }} }}
      server {{ listen 127.0.0.1:{alone}; proxy_read_timeout 30s;
        location / {{ proxy_pass http://one; }} }} }}""", port)
    for p in (port, alone):
        assert _get(p, "/warm/a") == 200  # (a pooled connection for the callback path)
    assert len(b.requests()) == 0
    seen = len(a.requests())
    holder = socket.create_connection(("127.0.0.1", port), timeout=10)
    holder.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 10
    while len(a.requests()) == seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(a.requests()) == seen + 1
    assert _get(port, "/next/b") == 200  # a is at its limit: the backup answers
    assert [r.target for r in b.requests()] == [b"/next/b"]
    # (a counts again once the holder's exchange is gone: its client resets, as a FIN
    # alone is a half-close whose answer is still awaited)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    holder.close()
    deadline = time.monotonic() + 10
    while a.requests()[-1].target != b"/again/a":
        assert _get(port, "/again/a") == 200 and time.monotonic() < deadline
        time.sleep(0.05)
    # the group of a alone: 502 while a request holds it, and a gets nothing more
    holder = socket.create_connection(("127.0.0.1", alone), timeout=10)
    holder.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    seen = len(a.requests())
    deadline = time.monotonic() + 10
    while not any(r.target == b"/hold" for r in a.requests()[seen - 1:]) \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    count = len(a.requests())
    assert _get(alone, "/refused") == 502
    assert len(a.requests()) == count
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    holder.close()
