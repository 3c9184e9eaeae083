"""``listen ... proxy_protocol`` end to end, plain and TLS (the header comes before the
handshake), on both engines, with keep-alive upstreams (the callback path) and without
(the task path): the header's address reaches the backend only through realip, a
connection without a header is closed and nothing of it reaches the backend."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from e2e_util import wait_for_text
from helpers import self_signed
from raw_backend import RawBackend

SECRET = "pp-e2e-secret-0123456789abcdef01234567"
HEADER = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n"


def _token() -> str:
    return pyjwt.encode({"sub": "a", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")


def _read_all(s: socket.socket) -> bytes:
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass
    return out


def _exchange(port: int, first: bytes, request: bytes, tls: bool) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(first)
        if not tls:
            raw.sendall(request)
            return _read_all(raw)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            s = ctx.wrap_socket(raw, server_hostname="localhost")
        except (ssl.SSLError, ConnectionResetError):
            return b""  # closed before the handshake ended
        with s:
            s.sendall(request)
            return _read_all(s)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
@pytest.mark.parametrize("keepalive", [16, 0], ids=["callback", "task"])
def test_proxy_protocol(tmp_path: Path, gateway, free, tls: bool, keepalive: int) -> None:  # type: ignore[no-untyped-def]
    crt, key = self_signed(tmp_path)
    be = RawBackend()
    try:
        port = free()
        ssl_conf = f"ssl_certificate {crt}; ssl_certificate_key {key};" if tls else ""
        g = gateway(f"""error_log stderr info; http {{ access_log off;
          upstream pool {{ server 127.0.0.1:{be.port}; keepalive {keepalive}; }}
          server {{ listen 127.0.0.1:{port} {"ssl " if tls else ""}proxy_protocol;
            {ssl_conf} client_header_timeout 2s; auth_jwt_key "{SECRET}";
            set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;
            location / {{ auth_jwt on; proxy_set_header X-Client $remote_addr;
                          proxy_set_header X-Scheme $scheme; proxy_pass http://pool; }} }} }}""",
                    port)
        request = (f"GET /a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {_token()}\r\n"
                   "Connection: close\r\n\r\n").encode()
        for _ in range(2):  # the second over a pooled upstream connection, if any
            answer = _exchange(port, HEADER, request, tls)
            assert answer.startswith(b"HTTP/1.1 200"), answer
        # two requests on one connection: the header counts for both
        kept = request.replace(b"Connection: close\r\n", b"")
        assert _exchange(port, HEADER, kept + request, tls).count(b"HTTP/1.1 200 ") == 2
        got = be.requests()
        assert [r.header(b"x-client") for r in got] == [[b"203.0.113.7"]] * 4
        assert got[0].header(b"x-scheme") == [b"https" if tls else b"http"]
        # no header: closed, nothing reaches the backend
        sneaky = request.replace(b"/a", b"/sneaky")
        assert _exchange(port, b"", sneaky, tls) == b""
        assert wait_for_text(g.stderr_path, "broken header")
        # a forged token behind a good header: 401, nothing reaches the backend
        forged = request.replace(b"/a", b"/forged").replace(b"Bearer ", b"Bearer x")
        assert _exchange(port, HEADER, forged, tls).startswith(b"HTTP/1.1 401")
        # a client that sends nothing is closed after client_header_timeout
        with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
            start = time.monotonic()
            assert _read_all(idle) == b"" and time.monotonic() - start < 8
        assert not any(r.target in (b"/sneaky", b"/forged") for r in be.requests())
        assert b"/sneaky" not in be.raw() and b"/forged" not in be.raw()
    finally:
        be.stop()
