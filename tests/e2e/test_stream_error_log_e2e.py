"""The stream block's error log line by line beside nginx 1.22: each line of a session
carries its connection's ``*N``; the session's first line says who connected where and
the upstream's says which local address it connected from; once the proxy handler runs,
a line ends in nginx's byte counts; a ``proxy_timeout`` is nginx's "connection timed
out", with nothing said after it. Numbers aside (nginx counts its upstream connections
among its connections, and the ports are the system's), the lines are the same."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, wait_port
from e2e_util import NGINX, beside_nginx, stop_process
from helpers import self_signed

STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


class Side:
    def __init__(self, kind: str, tmp: Path, dead: int, live: int) -> None:
        self.home = tmp / kind
        self.home.mkdir()
        self.ports = [free_port() for _ in range(5)]
        p = self.ports
        cert, key = self_signed(self.home)
        body = f"""stream {{
  server {{ listen 127.0.0.1:{p[0]}; proxy_pass 127.0.0.1:{dead}; }}
  server {{ listen 127.0.0.1:{p[1]}; proxy_pass 127.0.0.1:{live}; proxy_timeout 300ms; }}
  server {{ listen 127.0.0.1:{p[2]}; deny all; proxy_pass 127.0.0.1:{live}; }}
  server {{ listen 127.0.0.1:{p[3]}; return "x"; }}
  server {{ listen 127.0.0.1:{p[4]} ssl; ssl_certificate {cert};
           ssl_certificate_key {key}; return "x"; }}
}}"""
        self.errors = self.home / "error.log"
        self.proc = beside_nginx(kind, self.home, body, "info", (STREAM_MODULE,))
        for port in p:
            wait_port(port, self.proc)

    def sessions(self) -> list[tuple[str, ...]]:
        """The info and error lines of each session (its ``*N``), sorted: the time,
        process and ports gone (the sessions of one side may interleave)."""
        stop_process(self.proc)
        by_number: dict[str, list[str]] = {}
        for line in self.errors.read_text().splitlines():
            m = re.match(r"\S+ \S+ \[(info|error)\] \d+#\d+: (\*\d+) (.*)$", line)
            if m is not None:
                words = re.sub(r":\d{4,5}\b", ":PORT", m.group(3))
                # (OpenSSL's error code and library, which Python's ssl does not give)
                words = re.sub(r"SSL: error:[0-9A-F]+:SSL routines::", "SSL: ", words)
                by_number.setdefault(m.group(2), []).append(f"[{m.group(1)}] {words}")
        return sorted(tuple(lines) for lines in by_number.values())


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Side, Side]]:
    for needed in (Path(NGINX), STREAM_MODULE):
        if not needed.exists():
            pytest.skip(f"{needed} is installed by make test (test-deps)")
    dead = free_port()
    live = socket.socket()
    live.bind(("127.0.0.1", 0))
    live.listen(8)
    made: list[Side] = []
    try:
        for kind in ("nginx", "fastgate"):
            made.append(Side(kind, tmp_path, dead, live.getsockname()[1]))
        yield made[0], made[1]
    finally:
        for side in made:
            stop_process(side.proc)
        live.close()


def test_lines_as_nginx(sides: tuple[Side, Side]) -> None:
    for side in sides:
        for port in side.ports:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"hello")
                time.sleep(0.5 if port == side.ports[1] else 0.1)
        # an ssl port: a client that closes before any handshake (fastgate said nothing
        # of either: it logged a TLS client only once its handshake was done)
        socket.create_connection(("127.0.0.1", side.ports[4]), timeout=5).close()
        with socket.create_connection(("127.0.0.1", side.ports[4]), timeout=5) as s:
            s.sendall(b"\x16\x03\x01\x00\x05abc")  # (a handshake begun, then closed)
            time.sleep(0.1)
        time.sleep(0.1)
    theirs, ours = (side.sessions() for side in sides)
    assert ours == theirs
    for session in [
        ("[info] client 127.0.0.1:PORT connected to 127.0.0.1:PORT",
         '[error] connect() failed (111: Connection refused) while connecting to upstream, '
         'client: 127.0.0.1, server: 127.0.0.1:PORT, upstream: "127.0.0.1:PORT", '
         "bytes from/to client:0/0, bytes from/to upstream:0/0"),
        ("[info] client 127.0.0.1:PORT connected to 127.0.0.1:PORT",
         "[info] proxy 127.0.0.1:PORT connected to 127.0.0.1:PORT",
         "[info] connection timed out (110: Connection timed out) while proxying "
         'connection, client: 127.0.0.1, server: 127.0.0.1:PORT, upstream: "127.0.0.1:PORT", '
         "bytes from/to client:5/0, bytes from/to upstream:0/5"),
        ("[info] client 127.0.0.1:PORT connected to 127.0.0.1:PORT",
         "[error] access forbidden by rule while initializing session, client: 127.0.0.1, "
         "server: 127.0.0.1:PORT"),
        ("[info] client 127.0.0.1:PORT connected to 127.0.0.1:PORT",
         "[info] SSL_do_handshake() failed (SSL: wrong version number) while SSL "
         "handshaking, client: 127.0.0.1, server: 127.0.0.1:PORT"),
        ("[info] client 127.0.0.1:PORT connected to 127.0.0.1:PORT",
         "[info] peer closed connection in SSL handshake while SSL handshaking, "
         "client: 127.0.0.1, server: 127.0.0.1:PORT"),
    ]:
        assert session in theirs, session
