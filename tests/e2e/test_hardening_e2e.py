"""Hostile input and faults against the real process, on every engine: request
smuggling and framing, slow and abusive clients, many idle connections, upstream faults
through both proxy paths."""

from __future__ import annotations

import http.client
import resource
import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "http"))
from test_engine_differential import STREAMS, run  # noqa: E402

from fastgate.http.h11_engine import H11Server  # noqa: E402
from fastgate.http.uri import parse_target  # noqa: E402

EXTRA = {
    "long-request-line": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    "long-header": b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + b"v" * 9000 + b"\r\n\r\n",
    "many-headers": b"GET / HTTP/1.1\r\nHost: a\r\n"
                    + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 90) for i in range(400)) + b"\r\n",
    "connect-authority": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "options-asterisk": b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "dot-segments": b"GET /a/../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n",
    "encoded-nul": b"GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n",
}
# (raw bytes past ASCII in a target go upstream as they came, as nginx sends them, and
# this h11 backend refuses them as h11 servers do: what reaches an upstream for those is
# compared with nginx's in test_raw_targets_e2e, against a backend that takes any bytes)
ALL = {**{k: v for k, v in STREAMS.items() if not k.startswith("utf8-")}, **EXTRA}


def exchange(port: int, data: bytes) -> tuple[list[int], bool]:
    """Send, half-close, read everything: the statuses seen, and whether it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b""
        closed = False
        while True:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                closed = True
                break
            if not chunk:
                closed = True
                break
            out += chunk
    statuses = [int(line.split(b" ")[1]) for line in out.split(b"\r\n")
                if line.startswith(b"HTTP/1.") and len(line.split(b" ")) > 1
                and line.split(b" ")[1].isdigit()]
    return statuses, closed


def expected_requests(data: bytes) -> tuple[list[tuple[str, str, int]], bool]:
    """What the reference engine accepts from these bytes, as the backend should see it."""
    accepted, failed = run(H11Server, data)
    out = []
    for method, target, body in accepted:
        try:
            parse_target(target)
        except Exception:
            failed = True
            break
        if method == b"CONNECT":
            continue  # answered by the gateway itself, never proxied
        out.append((method.decode(), target.decode("latin-1"), len(body)))
    return out, failed


def test_smuggling_table(backends, gateway, free) -> None:  # type: ignore[no-untyped-def]
    assert len(ALL) >= 40
    be = backends()
    port = free()
    gateway(f"""http {{ server {{ listen 127.0.0.1:{port};
      client_header_timeout 3s; client_body_timeout 3s;
      location / {{ proxy_pass http://127.0.0.1:{be.port}; }} }} }}""", port)
    problems = []
    for name, data in ALL.items():
        before = len(be.requests())
        statuses, closed = exchange(port, data)
        want, failed = expected_requests(data)
        time.sleep(0.05)
        got = [(r["method"], r["target"], r["body_bytes"]) for r in be.requests()[before:]]
        want_targets = [(m, t if t.startswith("/") else "/" + t.split("/", 3)[-1], n)
                        for m, t, n in want]
        if got != want_targets:
            problems.append(f"{name}: backend saw {got}, expected {want_targets}")
        if failed and not any(400 <= s < 600 for s in statuses) and statuses:
            problems.append(f"{name}: refused without an error status: {statuses}")
        if not closed:
            problems.append(f"{name}: connection left open")
    assert problems == []


def test_slowloris_is_cut(gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gw = gateway(f"""error_log stderr info; http {{ server {{ listen 127.0.0.1:{port};
      client_header_timeout 1s; return 204; }} }}""", port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        t0 = time.time()
        closed_after = None
        for byte in b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: aaaaaaaaaaaaaaaaaaa":
            try:
                s.send(bytes([byte]))
                s.settimeout(0.3)
                if s.recv(100) == b"":
                    closed_after = time.time() - t0
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.time() - t0
                break
    assert closed_after is not None and closed_after < 3.0
    deadline = time.time() + 2
    while "client timed out" not in gw.stderr and time.time() < deadline:
        time.sleep(0.05)
    assert "client timed out" in gw.stderr


def test_slow_body_is_cut(backends, gateway, free) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    port = free()
    gateway(f"""http {{ server {{ listen 127.0.0.1:{port}; client_body_timeout 1s;
      location / {{ proxy_pass http://127.0.0.1:{be.port}; }} }} }}""", port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
        t0 = time.time()
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        assert time.time() - t0 < 5
    assert out == b"" or out.startswith(b"HTTP/1.1 408") or out.startswith(b"HTTP/1.1 502")
    assert be.requests() == []  # the backend never saw a complete request


def test_client_that_never_reads(backends, gateway, free) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    port = free()
    gw = gateway(f"""http {{ server {{ listen 127.0.0.1:{port};
      location / {{ proxy_pass http://127.0.0.1:{be.port}; }} }} }}""", port)
    assert http.client.HTTPConnection("127.0.0.1", port).request("GET", "/warm") is None
    base = _rss(gw.proc.pid)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /big?n=500000000 HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(4)  # read nothing: back-pressure must hold the backend back
        grown = _rss(gw.proc.pid) - base
    assert grown < 32, f"RSS grew {grown:.1f} MiB for a client that reads nothing"


def test_many_idle_keepalive_connections(gateway, free) -> None:  # type: ignore[no-untyped-def]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 10000 + 500  # each process (this one, the gateway) holds 10,000 sockets
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below what 10,000 connections need")
    # raised before the gateway starts: it inherits the limit
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY
                                                else want * 2, hard))
    port = free()
    gw = gateway(f"""events {{ worker_connections 20000; }}
      http {{ server {{ listen 127.0.0.1:{port} backlog=4096; keepalive_timeout 6s;
      return 204; }} }}""", port)
    base = _rss(gw.proc.pid)
    socks = []
    try:
        for _ in range(10000):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            socks.append(s)
        for s in socks:
            assert s.recv(1000).startswith(b"HTTP/1.1 204")
        grown = _rss(gw.proc.pid) - base
        assert grown < 150, f"10,000 idle connections cost {grown:.1f} MiB"
        time.sleep(7)  # keepalive_timeout (plus the clock's tick)
        s = socks[0]
        s.settimeout(2)
        assert s.recv(10) == b""  # closed by the gateway
        closed = 0
        for s in socks[1:200]:
            s.settimeout(2)
            if s.recv(10) == b"":
                closed += 1
        assert closed == 199
    finally:
        for s in socks:
            s.close()


def test_worker_connections_is_enforced(gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gw = gateway(f"""error_log stderr info; events {{ worker_connections 3; }}
      http {{ server {{ listen 127.0.0.1:{port}; return 204; }} }}""", port)
    time.sleep(0.2)  # the fixture's probe connection has gone
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    extra = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        extra.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        refused = extra.recv(100) == b""  # closed at once...
    except (ConnectionResetError, BrokenPipeError):
        refused = True  # ...or reset, having unread bytes
    assert refused
    held[0].sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert held[0].recv(100).startswith(b"HTTP/1.1 204")
    for s in [*held, extra]:
        s.close()
    assert "3 worker_connections are not enough" in gw.stderr


@pytest.mark.parametrize("path,expect", [("/close", 502), ("/badstatus", 502)])
def test_faults_on_pooled_connections(backends, gateway, free, path: str, expect: int) -> None:  # type: ignore[no-untyped-def]
    """The same faults as test_proxy_e2e, but on a warm pool: the callback path."""
    be = backends()
    port = free()
    gateway(f"""http {{ upstream be {{ server 127.0.0.1:{be.port}; keepalive 4; }}
      server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://be; }} }} }}""", port)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/warm")
    assert c.getresponse().read()
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    assert r.status == expect
    c.close()
    assert _get_status(port, "/after") == 200
    conns = [r["connection"] for r in be.requests()]
    assert conns[-1] != conns[-2]  # the faulty connection was not reused


def _get_status(port: int, path: str) -> int:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def _rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")
