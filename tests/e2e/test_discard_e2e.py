"""A request answered before its body was read — a 401 to a POST whose body is still
coming, a ``return`` — keeps its connection as nginx's does: the rest of the body is
read and dropped (nginx's discarded body), then the next request is served. Compared
with nginx 1.22 on the same bytes, sent in the same pieces; and, behind auth_jwt,
against a backend that records every byte, that nothing of a refused request (nor a
request hidden in its body) reaches it, on both engines and both exchange paths."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, terminate, wait_port
from e2e_util import bearer
from raw_backend import RawBackend

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
KEY = "discard-key-0123456789abcdef0123456789abcdef"
SMUGGLED = b"GET /next/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
NEXT = b"GET /next/after HTTP/1.1\r\nHost: x\r\n\r\n"
PAUSE = 0.1

BLOCK = """server { listen 127.0.0.1:PORT; lingering_timeout 1s;
  location /deny/ { return 401; }
  location /fail/ { return 500; }
  location /page/ { return 200 "page"; }
  location /moved/ { return 301 /next/moved; }
  location /deny-text/ { return 403 "no"; }
  location /caught/ { error_page 401 = /page/x; return 401; }
  location /next/ { return 200 "next:$uri"; }
}"""


def _start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc


def _converse(port: int, pieces: list[bytes], quiet: float = 0.3) -> tuple[list[str], bool]:
    """``pieces`` sent one by one, ``PAUSE`` apart; what came back (each response's
    status line, a ``Connection: close`` — nginx's ``keep-alive`` on HTTP/1.1 says
    nothing — and ``next:``'s text) and whether the
    gateway closed the connection within ``quiet`` seconds of the last piece."""
    data = b""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for i, piece in enumerate(pieces):
            try:
                s.sendall(piece)
            except OSError:
                closed = True
                break
            end = time.monotonic() + (quiet if i == len(pieces) - 1 else PAUSE)
            while time.monotonic() < end:
                s.settimeout(max(0.01, end - time.monotonic()))
                try:
                    chunk = s.recv(65536)
                except TimeoutError:
                    break
                except OSError:
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
                data += chunk
            if closed:
                break
    # (a body ends without a CRLF: the next status line may follow it on one line)
    data = data.replace(b"HTTP/1.1 ", b"\r\nHTTP/1.1 ")
    seen = [line.decode("latin-1").lower() for line in data.split(b"\r\n")
            if line.startswith(b"HTTP/1.1 ") or line.lower() == b"connection: close"
            or line.startswith(b"next:")]
    return seen, closed


def _post(path: str, framing: str) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n".encode()


CL = f"Content-Length: {len(SMUGGLED)}"
EXPECT = "Expect: 100-continue"
CHUNKED = "Transfer-Encoding: chunked"
CHUNK = b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"

CASES = {
    "refused, body later": [_post("/deny/", CL), SMUGGLED[:9], SMUGGLED[9:] + NEXT],
    "refused, chunked later": [_post("/deny/", CHUNKED), CHUNK[:20], CHUNK[20:] + NEXT],
    "refused, body with the head": [_post("/deny/", CL) + SMUGGLED + NEXT],
    "page, body later": [_post("/page/", CL), SMUGGLED + NEXT],
    "500, body later": [_post("/fail/", CL), SMUGGLED + NEXT],
    "refused, malformed chunk later": [_post("/deny/", CHUNKED), b"zz\r\n" + SMUGGLED + NEXT],
    # Expect: 100-continue — a "return" with a page (or below 400) says 100 first, as
    # nginx's ngx_http_send_response does; an error without text does not
    "page, expecting 100": [_post("/page/", f"{CL}\r\n{EXPECT}"), SMUGGLED + NEXT],
    "redirect, expecting 100": [_post("/moved/", f"{CL}\r\n{EXPECT}"), SMUGGLED + NEXT],
    "refused, expecting 100": [_post("/deny/", f"{CL}\r\n{EXPECT}"), SMUGGLED + NEXT],
    "refused with text, expecting 100": [_post("/deny-text/", f"{CL}\r\n{EXPECT}"),
                                         SMUGGLED + NEXT],
    "error page, expecting 100": [_post("/caught/", f"{CL}\r\n{EXPECT}"), SMUGGLED + NEXT],
}


@pytest.mark.skipif(not Path(NGINX).exists(),
                    reason="nginx is installed by make test (test-deps)")
def test_same_conversation_as_nginx(tmp_path: Path, engine: str) -> None:
    nginx_port, fastgate_port = free_port(), free_port()
    home = tmp_path / "nginx"
    home.mkdir()
    (home / "nginx.conf").write_text(
        f"daemon off; master_process off; worker_processes 1; user root;\n"
        f"pid {home}/nginx.pid; error_log {home}/error.log info;\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log off; client_body_temp_path {home}/body;\n"
        f"{BLOCK.replace('PORT', str(nginx_port))}\n}}\n")
    conf = tmp_path / "fastgate.conf"
    conf.write_text(f"pid {tmp_path}/fg.pid; error_log {tmp_path}/fg.log info;\n"
                    f"http {{ access_log off;\n{BLOCK.replace('PORT', str(fastgate_port))}\n}}\n")
    results: dict[str, tuple[list[str], bool]] = {}
    nginx = _start([NGINX, "-p", str(home), "-c", str(home / "nginx.conf")], nginx_port)
    try:
        fastgate = _start([sys.executable, "-m", "fastgate", "-c", str(conf),
                           "--http-engine", engine], fastgate_port)
        try:
            for name, pieces in CASES.items():
                want = _converse(nginx_port, pieces)
                got = results[name] = _converse(fastgate_port, pieces)
                assert got == want, f"{name}: fastgate {got}, nginx {want}"
        finally:
            terminate(fastgate)
    finally:
        terminate(nginx)
    # what the conversations were (nginx's, so fastgate's too)
    served = ["http/1.1 200 ok", "next:/next/after"]
    assert results["refused, body later"] == (["http/1.1 401 unauthorized", *served], False)
    assert results["refused, chunked later"] == results["refused, body later"]
    assert results["page, body later"] == (["http/1.1 200 ok", *served], False)
    assert results["500, body later"] == (
        ["http/1.1 500 internal server error", "connection: close"], True)
    assert results["refused, malformed chunk later"] == (["http/1.1 401 unauthorized"], True)
    assert results["page, expecting 100"] == (["http/1.1 100 continue", "http/1.1 200 ok",
                                               *served], False)
    assert results["refused, expecting 100"] == results["refused, body later"]
    assert results["error page, expecting 100"] == results["page, expecting 100"]


def test_a_discarded_body_never_reaches_the_backend(tmp_path: Path, gateway, free,  # type: ignore[no-untyped-def]
                                                     engine: str) -> None:
    """Behind auth_jwt: a POST without a token, its body (a whole request for the same
    protected location) sent after the 401, then requests with a valid token — a GET
    over the pooled connection (the callback path) and a POST with a body (the task
    path). The backend gets those two and the one before, and not a byte of the
    refused request or of what its body held."""
    backend = RawBackend()
    try:
        port = free()
        gateway(f"""http {{ access_log off;
  upstream be {{ server 127.0.0.1:{backend.port}; keepalive 4; }}
  server {{ listen 127.0.0.1:{port}; auth_jwt_key "{KEY}";
    location /api/ {{ auth_jwt on; proxy_set_header X-User $jwt_claim_sub;
                      proxy_pass http://be; }} }} }}""", port)
        token = bearer(KEY)["Authorization"]
        hidden = (b"POST /api/hidden HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n"
                  b"SECRET")

        def valid(method: str, path: str, body: bytes = b"") -> bytes:
            return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode() + body

        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            def answer() -> bytes:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += s.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
                while len(rest) < length:
                    rest += s.recv(65536)
                return head

            s.sendall(valid("GET", "/api/first"))
            assert answer().startswith(b"HTTP/1.1 200")
            s.sendall(f"POST /api/refused HTTP/1.1\r\nHost: x\r\n"
                      f"Content-Length: {len(hidden)}\r\n\r\n".encode())
            refused = answer()
            assert refused.startswith(b"HTTP/1.1 401")
            assert b"connection: close" not in refused.lower()
            s.sendall(hidden[:20])
            time.sleep(PAUSE)
            s.sendall(hidden[20:] + valid("GET", "/api/second"))
            assert answer().startswith(b"HTTP/1.1 200")
            s.sendall(valid("POST", "/api/third", b"payload"))
            assert answer().startswith(b"HTTP/1.1 200")
        got = [(r.method, r.target, r.body, r.header(b"x-user")) for r in backend.requests()]
        assert got == [(b"GET", b"/api/first", b"", [b'"alice"']),
                       (b"GET", b"/api/second", b"", [b'"alice"']),
                       (b"POST", b"/api/third", b"payload", [b'"alice"'])]
        assert not backend.seen(b"refused") and not backend.seen(b"hidden")
        assert not backend.seen(b"SECRET")
    finally:
        backend.stop()
