"""Proxy behaviour end to end: framing, streaming, keep-alive, pipelining, limits,
upgrades, upstream faults, header safety."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from conftest import request
from e2e_util import proc_status_kib, raw_exchange, status_of, wait_for_text

SECRET = "proxy-test-secret-0123456789abcdef"


def token(claims: dict | None = None) -> str:
    return pyjwt.encode({"sub": "user123", **(claims or {})}, SECRET, algorithm="HS256")


def config(port: int, backend: int, extra: str = "", dead: int | None = None) -> str:
    dead = dead or 1
    return f"""
error_log {{ERRLOG}} info;
http {{
  upstream be {{ server 127.0.0.1:{backend}; keepalive 8; }}
  upstream dead {{ server 127.0.0.1:{dead}; }}
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{
    listen 127.0.0.1:{port};
    auth_jwt_key "{SECRET}";
    client_max_body_size 200m;
    proxy_read_timeout 2s;
    {extra}
    location / {{ proxy_pass http://be; }}
    location /auth/ {{
      auth_jwt on;
      proxy_set_header X-User $jwt_claim_sub;
      proxy_set_header X-Name $jwt_claim_name;
      proxy_pass http://be;
    }}
    location /small/ {{ client_max_body_size 1k; proxy_pass http://be; }}
    location /ws {{
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_pass http://be;
    }}
    location /dead/ {{ proxy_pass http://dead; }}
    location /strip/ {{ proxy_pass http://be/base/; }}
    location = /status {{ fastgate_status; }}
    location /headers/ {{ add_header X-Added yes; add_header X-Always a always; proxy_pass http://be; }}
  }}
}}
"""


@pytest.fixture
def setup(tmp_path: Path, backends, gateway, free):  # type: ignore[no-untyped-def]
    def make(extra: str = "", dead: int | None = None):  # type: ignore[no-untyped-def]
        be = backends()
        port = free()
        errlog = tmp_path / f"error-{port}.log"
        gw = gateway(config(port, be.port, extra, dead).replace("{ERRLOG}", str(errlog)), port)
        gw.errlog = errlog
        return be, gw, port

    return make


def test_methods_bodies_and_headers(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    status, headers, body = request(port, "POST", "/echo?q=1", b"hello", {"X-Custom": "v"})
    assert status == 200
    rec = json.loads(body)
    assert rec["method"] == "POST" and rec["body_bytes"] == 5 and rec["target"] == "/echo?q=1"
    sent = {k.lower(): v for k, v in rec["headers"]}
    assert sent["x-custom"] == "v"
    assert sent["host"] == "be"
    assert "connection" not in sent or sent["connection"] != "keep-alive"
    assert headers["server"] == "fastgate"  # the backend's own Server is not passed on
    assert headers["x-backend"] == "backend"
    assert "keep-alive" not in headers  # hop-by-hop from the backend stays there
    status, headers, body = request(port, "HEAD", "/echo")
    assert status == 200 and body == b""
    status, _, _ = request(port, "PUT", "/status/204")
    assert status == 204


def test_uri_rewriting(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    request(port, "GET", "/strip/a/b?x=%20")
    request(port, "GET", "/x/../y//z")
    request(port, "GET", "/sp%20ace")
    targets = [r["target"] for r in be.requests()]
    assert targets == ["/base/a/b?x=%20", "/x/../y//z", "/sp%20ace"]


def test_add_header(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    _, headers, _ = request(port, "GET", "/headers/ok")
    assert headers["x-added"] == "yes" and headers["x-always"] == "a"
    _, headers, _ = request(port, "GET", "/headers/status/500")
    assert "x-added" not in headers and headers["x-always"] == "a"


def test_claim_header_injection_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    evil = token({"sub": "a\r\nX-Injected: 1", "name": "bob\x7fsmith"})
    status, _, _ = request(port, "GET", "/auth/x", headers={"Authorization": f"Bearer {evil}"})
    assert status == 200
    (rec,) = be.requests()
    names = [k.lower() for k, _ in rec["headers"]]
    assert "x-injected" not in names
    sent = {k.lower(): v for k, v in rec["headers"]}
    assert sent["x-user"] == '"a\\r\\nX-Injected: 1"'  # JSON escapes: one header, inert
    assert "x-name" not in sent  # a control byte (DEL): the header is dropped, and logged
    assert wait_for_text(gw.errlog, 'header "X-Name" dropped')


def test_jwt_failure_is_logged_with_reason(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    request(port, "GET", "/auth/x")
    request(port, "GET", "/auth/x", headers={"Authorization": "Bearer abc.def"})
    request(port, "GET", "/auth/x", headers={"Authorization": f"Bearer {token()}x"})
    assert wait_for_text(gw.errlog, "JWT: invalid signature")
    log = gw.errlog.read_text()
    assert "[info]" in log and "JWT: failed to find a jwt" in log
    assert "JWT: failed to parse jwt" in log
    assert "JWT: invalid signature" in log
    assert be.requests() == []


def test_backend_down_is_502(setup, free) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup(dead=free())
    status, _, _ = request(port, "GET", "/dead/x")
    assert status == 502
    assert request(port, "GET", "/ok")[0] == 200  # the worker lives on


def test_backend_stall_is_504(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    t0 = time.time()
    status, _, _ = request(port, "GET", "/stall?s=10")
    assert status == 504
    assert 1.5 < time.time() - t0 < 6


@pytest.mark.parametrize("path", ["/close", "/badstatus"])
def test_backend_faults_are_502(setup, path: str) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    assert request(port, "GET", path)[0] == 502
    assert request(port, "GET", "/fine")[0] == 200


def test_short_body_is_truncated_not_completed(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    out = raw_exchange(port, b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"content-length: 100" in head.lower()
    assert len(body) < 100  # the connection was closed: the client sees a short body


def test_extra_bytes_never_reuse_connection(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    status, _, body = request(port, "GET", "/extra")
    assert status == 200 and body == b"yyyyy"
    assert request(port, "GET", "/after")[0] == 200
    conns = [r["connection"] for r in be.requests()]
    assert conns[0] != conns[1]


def test_midstall_is_cut(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    t0 = time.time()
    out = raw_exchange(port, b"GET /midstall HTTP/1.1\r\nHost: x\r\n\r\n", timeout=10)
    assert b"content-length: 1000" in out.lower()
    assert len(out.partition(b"\r\n\r\n")[2]) == 500
    assert time.time() - t0 < 8


def test_keepalive_reuse(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    for _ in range(3):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(20):
            c.request("GET", f"/k{i}")
            r = c.getresponse()
            assert r.status == 200
            r.read()
        c.close()
    conns = {r["connection"] for r in be.requests()}
    assert len(be.requests()) == 60
    assert len(conns) <= 2


def test_pipelining_in_order(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    reqs = b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))
    out = raw_exchange(port, reqs + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    order = [json.loads(part.split(b"\r\n\r\n", 1)[1][:part.split(b"\r\n\r\n", 1)[1].index(b"}") + 1])["target"]
             for part in out.split(b"HTTP/1.1 200 ")[1:]]  # (the backend writes no phrase)
    assert order == ["/p0", "/p1", "/p2", "/p3", "/p4", "/last"]


def test_http10_client(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    out = raw_exchange(port, b"GET /old HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") or out.startswith(b"HTTP/1.0 200")
    assert b"/old" in out


def test_expect_100_continue(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        first = s.recv(1000)
        assert first.startswith(b"HTTP/1.1 100")
        s.sendall(b"data")
        out = b""
        while b"}" not in out:
            out += s.recv(65536)
    assert b"HTTP/1.1 200" in out
    assert be.requests()[0]["body_bytes"] == 4


def test_expect_100_refused_by_auth(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    out = raw_exchange(port, b"POST /auth/up HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                             b"Expect: 100-continue\r\n\r\n", want=1)
    assert out.startswith(b"HTTP/1.1 401")
    assert be.requests() == []


def test_413_and_too_large_headers_and_400(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    out = raw_exchange(port, b"POST /small/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
                       want=1)
    assert status_of(out) == 413
    # headers too large: nginx's 494, sent as a 400 with its own page
    too_large = b"<title>400 Request Header Or Cookie Too Large</title>"
    out = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    assert status_of(out) == 400 and too_large in out
    out = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Line: " + b"a" * 9000 + b"\r\n\r\n")
    assert status_of(out) == 400 and too_large in out
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(400))
    out = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert status_of(out) == 400 and too_large in out
    out = raw_exchange(port, b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(out) == 414
    out = raw_exchange(port, b"GARBAGE\r\n\r\n")
    assert status_of(out) == 400
    out = raw_exchange(port, b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(out) == 400
    out = raw_exchange(port, b"GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(out) == 400
    assert be.requests() == []


def test_chunked_upload_100mib_streams(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()

    def body():  # type: ignore[no-untyped-def]
        for _ in range(100):
            digest.update(block)
            yield block

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/upload", body=body(), encode_chunked=True,
              headers={"Transfer-Encoding": "chunked"})
    r = c.getresponse()
    rec = json.loads(r.read())
    assert r.status == 200
    assert rec["body_bytes"] == 100 << 20
    assert rec["body_sha256"] == digest.hexdigest()
    c.close()
    assert proc_status_kib(gw.proc.pid, "VmHWM") / 1024 < 150


def test_download_100mib_streams(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    for path in ("/big?n=104857600", "/chunked?n=104857600"):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", path)
        r = c.getresponse()
        total = 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
        assert total == 100 << 20
        c.close()
    assert proc_status_kib(gw.proc.pid, "VmHWM") / 1024 < 150


def test_websocket_upgrade_tunnel(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1000)
        assert head.startswith(b"HTTP/1.1 101")
        assert b"upgrade: websocket" in head.lower()
        s.sendall(b"ping-1")
        got = b""
        while len(got) < 6:
            got += s.recv(100)
        assert got == b"ping-1"
    (rec,) = be.requests()
    sent = {k.lower(): v.lower() for k, v in rec["headers"]}
    assert sent["upgrade"] == "websocket" and sent["connection"] == "upgrade"


def test_status_page(setup) -> None:  # type: ignore[no-untyped-def]
    be, gw, port = setup()
    request(port, "GET", "/auth/x")
    request(port, "GET", "/ok")
    status, headers, body = request(port, "GET", "/status")
    text = body.decode()
    assert status == 200
    assert 'fastgate_requests_total{status="2xx"} 1' in text
    assert 'fastgate_requests_total{status="4xx"} 1' in text
    assert 'fastgate_jwt_total{outcome="missing"} 1' in text
    assert "fastgate_request_duration_seconds_count 2" in text


def test_sigquit_drains_in_flight(setup) -> None:  # type: ignore[no-untyped-def]
    import signal
    import threading

    be, gw, port = setup()
    result: dict = {}

    def slow() -> None:
        result["r"] = request(port, "GET", "/stall?s=1")

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    gw.signal(signal.SIGQUIT)
    t.join(10)
    assert result["r"][0] == 200
    assert gw.proc.wait(10) == 0
