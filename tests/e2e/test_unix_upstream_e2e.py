"""Upstream servers on unix sockets, beside nginx 1.22: ``proxy_pass
http://unix:/PATH[:/URI]``, ``server unix:/PATH`` in an upstream block (with the next
server tried after a socket that is not there), ``https://unix:`` over TLS, and
``proxy_pass http://$to`` whose value names a socket. Compared: the status, what the
application got (request line and headers: Host is ``localhost``, ``$proxy_host`` too,
``$proxy_port`` empty), ``$upstream_addr`` (``unix:/PATH``) and the error log's
messages (a socket that is not there: nginx's ``connect() to unix:/PATH failed (2: No
such file or directory)`` at crit). Then, on both engines and both exchange paths, a
request auth_jwt refuses reaches no socket's application."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, request, wait_port
from e2e_util import NGINX, bearer, beside_nginx, log_messages, stop_process
from helpers import self_signed
from raw_backend import RawBackend

SECRET = "unix-upstream-secret-0123456789abcdef"

BLOCK = """
http {
  access_log off;
  upstream app { server unix:HOME/app.sock; }
  upstream mixed { server unix:HOME/none.sock; server unix:HOME/app.sock; }
  server {
    listen 127.0.0.1:PORT;
    proxy_set_header X-PH $proxy_host;
    proxy_set_header X-PP "[$proxy_port]";
    add_header X-UA $upstream_addr always;
    location /direct/ { proxy_pass http://unix:HOME/app.sock; }
    location /uri/ { proxy_pass http://unix:HOME/app.sock:/base/; }
    location /block/ { proxy_pass http://app; }
    location /missing/ { proxy_pass http://unix:HOME/none.sock; }
    location /next/ { proxy_pass http://mixed; }
    location /tls/ { proxy_pass https://unix:HOME/tls.sock; }
    location /dyn/ { set $to unix:HOME/app.sock; proxy_pass http://$to; }
    location /dynuri/ { set $to "unix:HOME/app.sock:/v$uri"; proxy_pass http://$to; }
    location /dynmissing/ { set $to unix:HOME/none.sock; proxy_pass http://$to; }
  }
}
"""

PATHS = ["/direct/a?x=1", "/uri/b", "/block/c", "/missing/d", "/next/e", "/tls/f",
         "/dyn/g?y=2", "/dynuri/h", "/dynmissing/i"]


def _raw(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: front\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


class Side:
    def __init__(self, kind: str, tmp: Path) -> None:
        self.port = free_port()
        home = tmp / kind
        home.mkdir()
        self.errors = home / "error.log"
        block = BLOCK.replace("PORT", str(self.port)).replace("HOME", str(tmp))
        self.proc = beside_nginx(kind, home, block, "error")
        wait_port(self.port, self.proc)

    def get(self, path: str) -> tuple[int, bytes]:
        """The status and $upstream_addr's header."""
        head = _raw(self.port, path).partition(b"\r\n\r\n")[0]
        lines = head.split(b"\r\n")
        ua = [v for n, _, v in (h.partition(b": ") for h in lines[1:]) if n.lower() == b"x-ua"]
        return int(lines[0].split()[1]), b",".join(ua)

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Side, Side, RawBackend, RawBackend]]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    cert, key = self_signed(tmp_path, "localhost")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    app = RawBackend(unix=str(tmp_path / "app.sock"))
    tls = RawBackend(tls=ctx, unix=str(tmp_path / "tls.sock"))
    made: list[Side] = []
    try:
        for kind in ("nginx", "fastgate"):
            made.append(Side(kind, tmp_path))
        yield made[0], made[1], app, tls
    finally:
        for side in made:
            side.stop()
        app.stop()
        tls.stop()


@pytest.mark.parametrize("path", PATHS)
def test_as_nginx(sides: tuple[Side, Side, RawBackend, RawBackend], tmp_path: Path,
                  path: str) -> None:
    nginx, fastgate, app, tls = sides

    def received() -> list[tuple[bytes, bytes, list[tuple[bytes, bytes]]]]:
        # (the fields as a set: fastgate writes Host first and keeps the connection,
        # where nginx 1.0's request closes it)
        time.sleep(0.05)
        return [(r.method, r.target, sorted((n.lower(), v) for n, v in r.headers
                                            if n.lower() != b"connection"))
                for r in app.requests() + tls.requests()]

    want = nginx.get(path)
    nginx_got = received()
    expected = log_messages(nginx.errors)
    got = fastgate.get(path)
    fastgate_got = received()[len(nginx_got):]
    assert got == want
    assert log_messages(fastgate.errors) == expected
    assert fastgate_got == nginx_got  # (what the application received, in order)
    if path.startswith("/missing/"):
        assert expected == [f"[crit] connect() to unix:{tmp_path}/none.sock failed "
                            "(2: No such file or directory) while connecting to upstream"]
    elif path.startswith("/next/"):  # (the socket that is not there, then the next)
        assert want == (200, f"unix:{tmp_path}/none.sock, unix:{tmp_path}/app.sock".encode())
    elif path.startswith("/block/"):  # (a group's name is its Host)
        assert want[0] == 200 and (b"host", b"app") in nginx_got[0][2]
    elif not path.startswith("/dynmissing/"):  # (a socket's is localhost, no port)
        assert want[0] == 200 and (b"host", b"localhost") in nginx_got[0][2]
        assert (b"x-pp", b"[]") in nginx_got[0][2]


def test_a_refused_request_reaches_no_socket(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    """A request without a valid token reaches no application on a socket, through a
    group, a socket named by proxy_pass or by a variable — over a fresh connection and
    over one pooled idle (the callback path); a valid one does, with the claim."""
    app = RawBackend(unix=str(tmp_path / "app.sock"))
    port = free()
    try:
        gateway(f"""error_log stderr info;
http {{ access_log off;
  upstream app {{ server unix:{tmp_path}/app.sock; keepalive 4; }}
  server {{ listen 127.0.0.1:{port};
    auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
    proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_set_header X-User $jwt_claim_sub;
    location /block/ {{ proxy_pass http://app; }}
    location /direct/ {{ proxy_pass http://unix:{tmp_path}/app.sock; }}
    location /dyn/ {{ set $to unix:{tmp_path}/app.sock; proxy_pass http://$to; }}
  }} }}""", port)
        for path in ("/block/a", "/direct/b", "/dyn/c"):
            status, _, _ = request(port, "GET", path, None,
                                   {"X-User": "forged", **bearer(SECRET)}, timeout=10)
            assert status == 200
        seen = len(app.requests())
        assert seen == 3
        for path in ("/block/a", "/direct/b", "/dyn/c"):  # (the block's idle connection)
            for headers in ({}, {"Authorization": "Bearer a.b.c"}, bearer(SECRET, -60),
                            bearer("another-secret-of-32-bytes-0123456")):
                status, _, _ = request(port, "POST", path, b"SECRET-BODY",
                                       {"X-User": "forged", **headers}, timeout=10)
                assert status == 401
        time.sleep(0.1)
        assert len(app.requests()) == seen and not app.seen(b"SECRET-BODY")
        assert all(r.header(b"x-user") == [b'"alice"'] for r in app.requests())
    finally:
        app.stop()
