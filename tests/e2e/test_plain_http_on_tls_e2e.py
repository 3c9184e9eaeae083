"""Plain HTTP sent to a ``listen ... ssl`` address, beside nginx 1.22: nginx reads the
request, chooses its server by Host, and answers 497 — its 400 page "The plain HTTP
request was sent to HTTPS port", or the server's ``error_page 497`` (a redirect to
https://, a page, a named location) — then closes. fastgate closed such connections
without a word. Then, on both engines: no such request reaches a backend, whatever it
carries; TLS on the same address is unchanged, and after a PROXY protocol header too."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import jwt as pyjwt
import pytest
from conftest import Gateway, free_port
from e2e_util import nginx_and_fastgate, wait_for_text
from helpers import self_signed
from raw_backend import RawBackend

SECRET = "plain-on-tls-secret-0123456789abcdef"


def _exchange(port: int, data: bytes, before: bytes = b"") -> bytes:
    """Everything the server sends for ``data`` until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(before + data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            out += chunk
        return out


def _shown(raw: bytes, port: int = 0) -> tuple[bytes, list[bytes], bytes]:
    """The status (without its reason phrase: nginx's 302 is "Moved Temporarily",
    Python's "Found"), the headers but Date and Server (sorted, lowercased names), the
    body with the server's name as ours; ``port`` written PORT."""
    head, _, body = raw.replace(b":%d" % port, b":PORT").partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = sorted(n.lower() + b":" + v for n, _, v in (x.partition(b":") for x in lines[1:])
                    if n.lower() not in (b"date", b"server", b"content-length"))
    return lines[0][:12], fields, body.replace(b"nginx/1.22.1", b"fastgate").replace(
        b"nginx", b"fastgate")


class Side(NamedTuple):
    port: int
    home: Path


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Side, Side]]:
    cert, key = self_signed(tmp_path, "localhost")
    pair = f"ssl_certificate {cert}; ssl_certificate_key {key};"

    def body(ports: list[int]) -> str:
        # (the access log under each one's prefix: its home)
        return f"""
http {{
  log_format plain '$status $scheme "$https" $server_name "$request"';
  access_log access.log plain;
  server {{ listen 127.0.0.1:{ports[0]} ssl default_server; server_name _; {pair}
    charset utf-8;
    location / {{ return 200 "secure $scheme\\n"; }} }}
  server {{ listen 127.0.0.1:{ports[0]} ssl; server_name moved.test; {pair}
    error_page 497 =301 https://$host:$server_port$request_uri;
    location / {{ return 200 "moved\\n"; }} }}
  server {{ listen 127.0.0.1:{ports[0]} ssl; server_name found.test; {pair}
    error_page 497 https://$host$request_uri;
    location / {{ return 200 "found\\n"; }} }}
  server {{ listen 127.0.0.1:{ports[0]} ssl; server_name named.test; {pair}
    error_page 497 = @plain;
    location / {{ return 200 "named\\n"; }}
    location @plain {{ return 200 "speak TLS here, not $scheme ($request_method $uri)\\n"; }} }}
}}
"""

    with nginx_and_fastgate(tmp_path, body, level="info") as ports:
        yield Side(ports["nginx"][0], tmp_path / "nginx"), \
            Side(ports["fastgate"][0], tmp_path / "fastgate")


REQUESTS = [
    b"GET /a?b=1 HTTP/1.1\r\nHost: other.test\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: other.test\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"POST /form HTTP/1.1\r\nHost: other.test\r\nContent-Length: 5\r\n\r\nhello",
    # two at once: the first is answered, the connection closed
    b"GET /1 HTTP/1.1\r\nHost: other.test\r\n\r\nGET /2 HTTP/1.1\r\nHost: other.test\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: moved.test\r\n\r\n",
    b"GET /x?y=2 HTTP/1.1\r\nHost: found.test\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: named.test\r\nContent-Length: 2\r\n\r\nhi",
]
# what nginx refuses before it looks at the scheme: the same refusal
REFUSED = [b"GET / HTTP/1.1\r\nHost: bad/host\r\n\r\n",
           b"TRACE / HTTP/1.1\r\nHost: other.test\r\n\r\n"]


def test_plain_http_on_a_tls_address_as_nginx(sides: tuple[Side, Side]) -> None:
    nginx, ours = sides
    for data in REQUESTS:
        theirs = _shown(_exchange(nginx.port, data), nginx.port)
        got = _shown(_exchange(ours.port, data), ours.port)
        assert got == theirs, data
    # the page and the redirects, as they read
    status, fields, body = _shown(_exchange(ours.port, REQUESTS[0]))
    assert status == b"HTTP/1.1 400" and b"connection: close" in fields
    assert b"The plain HTTP request was sent to HTTPS port" in body
    status, fields, _ = _shown(_exchange(ours.port, REQUESTS[5]), ours.port)
    assert status == b"HTTP/1.1 301"
    assert b"location: https://moved.test:PORT/x" in fields
    # TLS on the same address is as before
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", ours.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"secure https\n")
    # logged as nginx logs them: the status sent, the scheme the client spoke
    assert wait_for_text(ours.home / "access.log", '200 https "on" _ "GET / HTTP/1.1"')
    theirs = (nginx.home / "access.log").read_text().splitlines()
    lines = (ours.home / "access.log").read_text().splitlines()
    assert len(lines) == len(REQUESTS) + 3
    assert lines[:len(REQUESTS)] == theirs[:len(REQUESTS)]
    assert lines[len(REQUESTS)] == '400 http "" _ "GET /a?b=1 HTTP/1.1"'
    errors = (ours.home / "error.log").read_text()
    assert errors.count("client sent plain HTTP request to HTTPS port") == len(REQUESTS) + 2


@pytest.mark.parametrize("proxy_protocol", [False, True], ids=["tls", "proxy-protocol"])
def test_a_plain_request_never_reaches_the_backend(tmp_path: Path, engine: str,
                                                   proxy_protocol: bool) -> None:
    """A protected location behind a TLS address, asked in plain HTTP with a valid
    token (and a forged identity header): 400, and the backend receives nothing — not
    the request, not its body. Over TLS the same token is let through, with only the
    verified claim; after a PROXY protocol header, the same."""
    backend = RawBackend()
    port = free_port()
    cert, key = self_signed(tmp_path, "localhost")
    pp = " proxy_protocol" if proxy_protocol else ""
    gw = Gateway(tmp_path, f"""error_log stderr info;
      http {{ access_log off;
        server {{ listen 127.0.0.1:{port} ssl{pp};
          ssl_certificate {cert}; ssl_certificate_key {key};
          location / {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
            proxy_set_header X-Sub $jwt_claim_sub;
            proxy_pass http://127.0.0.1:{backend.port}; }} }} }}""",
                 port, extra_args=["--http-engine", engine])
    before = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n" if proxy_protocol else b""
    token = pyjwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    try:
        for data in (
                f"GET /p HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\n"
                "X-Sub: mallory\r\n\r\n".encode(),
                f"POST /p HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\n"
                "Content-Length: 6\r\n\r\nsecret".encode(),
                b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n"):
            answer = _exchange(port, data, before)
            assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
            assert b"The plain HTTP request was sent to HTTPS port" in answer
        assert backend.requests() == [] and backend.raw() == b""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(before)
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(f"GET /p HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\n"
                          "X-Sub: mallory\r\nConnection: close\r\n\r\n".encode())
                answer = b""
                while chunk := s.recv(65536):
                    answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        [got] = backend.requests()
        assert got.header(b"x-sub") == [b'"alice"']  # only the verified claim
    finally:
        code = gw.stop()
        backend.stop()
    assert gw.stderr.count("client sent plain HTTP request to HTTPS port") == 3
    assert "Traceback" not in gw.stderr and code in (0, -15)


def test_a_silent_client_is_closed_after_client_header_timeout(tmp_path: Path,
                                                                engine: str) -> None:
    """Nothing sent on the TLS address: closed once client_header_timeout has passed
    (nginx's wait for the first byte), without an answer."""
    port = free_port()
    cert, key = self_signed(tmp_path, "localhost")
    gw = Gateway(tmp_path, f"""http {{ access_log off; client_header_timeout 1s;
        server {{ listen 127.0.0.1:{port} ssl;
          ssl_certificate {cert}; ssl_certificate_key {key}; return 200; }} }}""",
                 port, extra_args=["--http-engine", engine])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            started = time.monotonic()
            assert s.recv(10) == b""
            assert 0.8 < time.monotonic() - started < 4
    finally:
        gw.stop()
