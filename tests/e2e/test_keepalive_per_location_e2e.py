"""keepalive_requests and keepalive_timeout are read from the location that answered a
request (or its server: a virtual host that is not the address's default), as nginx
reads them — compared with nginx 1.22 on one connection at a time: which response says
``Connection: close`` and whether the connection then ends, both ways (a location
that ends sooner than its server, and one that carries on where the default server
would have stopped)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from test_nginx_parity_e2e import both

BLOCK = """server { listen 127.0.0.1:PORT; keepalive_requests 3;
    location /one/ { keepalive_requests 1; return 200 "one"; }
    location /none/ { keepalive_timeout 0; return 200 "none"; }
    location /named/ { try_files /nothing @many; }
    location @many { keepalive_requests 100; return 200 "named"; }
    location /many/ { keepalive_requests 100; return 200 "many"; }
    location / { return 200 "plain"; } }
  server { listen 127.0.0.1:PORT; server_name other.test; keepalive_requests 2;
    location / { return 200 "other"; }
    location /more/ { keepalive_requests 50; return 200 "more"; } }"""


def _session(port: int, requests: list[tuple[str, str]]) -> list[tuple[int, str, bool]]:
    """Each request on one connection, in turn: (status, "close" if it says so, whether
    the connection was closed after it); stops once it is."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        f = s.makefile("rb")
        for host, path in requests:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            status = int(f.readline().split()[1])
            connection, length = "", 0
            while (line := f.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "connection" and value.strip().lower() == "close":
                    connection = "close"  # (nginx also says keep-alive, HTTP/1.1's default)
                elif name.lower() == "content-length":
                    length = int(value)
            f.read(length)
            s.settimeout(0.1)
            try:
                closed = s.recv(1, socket.MSG_PEEK) == b""
            except TimeoutError:
                closed = False
            s.settimeout(5)
            out.append((status, connection, closed))
            if closed:
                break
    return out


SESSIONS = [
    [("a", "/"), ("a", "/one/x"), ("a", "/")],
    [("a", "/"), ("a", "/none/x"), ("a", "/")],
    [("a", "/"), ("a", "/"), ("a", "/many/x"), ("a", "/many/x"), ("a", "/")],
    [("a", "/"), ("a", "/"), ("a", "/named/x"), ("a", "/named/x"), ("a", "/")],
    [("other.test", "/"), ("other.test", "/"), ("other.test", "/")],
    [("other.test", "/more/"), ("other.test", "/more/"), ("other.test", "/more/"),
     ("other.test", "/")],
]


@pytest.mark.parametrize("engine", ["httptools", "h11"])
def test_keepalive_by_the_requests_location_as_nginx(tmp_path: Path, engine: str) -> None:
    with both(tmp_path, BLOCK, engine) as (nginx, fastgate):
        for session in SESSIONS:
            want = _session(nginx.port, session)
            assert _session(fastgate.port, session) == want, (session, want)
