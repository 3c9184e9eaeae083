"""Variables of nginx 1.22's HTTP core and modules that fastgate refused at load,
beside nginx: ``$upstream_cookie_NAME`` (from the upstream's Set-Cookie lines, as
nginx's parser reads them), ``$realip_remote_port``, ``$connection_time``,
``$tcpinfo_rtt``, ``$tcpinfo_rttvar``, ``$tcpinfo_snd_cwnd``, ``$tcpinfo_rcv_space``
(measures: their form is compared), and ``$gzip_ratio`` and ``$upstream_cache_status``,
empty as nginx's without gzip and a cache, which fastgate does not do — on both
engines."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, wait_port
from e2e_util import NGINX, beside_nginx, stop_process
from raw_backend import RawBackend, Received

VALUES = ("[$upstream_cookie_sid][$upstream_cookie_theme][$upstream_cookie_SID]"
          "[$upstream_cookie_none][$upstream_cookie_bad][$upstream_cookie_sp]"
          "[$realip_remote_addr][$realip_remote_port][$remote_port]"
          "[$gzip_ratio][$upstream_cache_status]")
MEASURES = "[$connection_time][$tcpinfo_rtt][$tcpinfo_rttvar][$tcpinfo_snd_cwnd][$tcpinfo_rcv_space]"


def _answer(req: Received) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
            b"Set-Cookie: theme=dark; Path=/\r\n"
            b"Set-Cookie: bad\r\n"
            b"Set-Cookie: sid = abc123 ; HttpOnly\r\n"
            b"Set-Cookie: sid=second\r\n"
            b"Set-Cookie: sp=a b;\r\n\r\nok")


class Side:
    def __init__(self, kind: str, tmp: Path, backend: int, engine: str) -> None:
        self.home = tmp / kind
        self.home.mkdir()
        self.port = free_port()
        engine_line = f"http_engine {engine};" if kind == "fastgate" else ""
        body = f"""{engine_line}
http {{ access_log off;
  server {{ listen 127.0.0.1:{self.port};
    set_real_ip_from 127.0.0.1; real_ip_header X-Real-IP;
    location /up {{ proxy_pass http://127.0.0.1:{backend};
      add_header X-V "{VALUES}"; add_header X-M "{MEASURES}"; }}
    location / {{ return 200 "{VALUES}{MEASURES}"; }}
  }} }}
"""
        self.proc = beside_nginx(kind, self.home, body, "error")
        wait_port(self.port, self.proc)

    def ask(self, path: str) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: h\r\nX-Real-IP: 192.0.2.9\r\n"
                      f"Connection: close\r\n\r\n".encode())
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def sides(tmp_path: Path, engine: str) -> Iterator[tuple[Side, Side]]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    backend = RawBackend(answer=_answer)
    made: list[Side] = []
    try:
        for kind in ("nginx", "fastgate"):
            made.append(Side(kind, tmp_path, backend.port, engine))
        yield made[0], made[1]
    finally:
        for side in made:
            side.stop()
        backend.stop()


def _header(out: bytes, name: bytes) -> str:
    found = re.search(rb"\r\n" + name + rb": ([^\r]*)", out)
    return found.group(1).decode("latin-1") if found else "<none>"


def _ports(text: str) -> str:
    return re.sub(r"\[\d{4,5}\]", "[PORT]", text)


MEASURED = re.compile(r"\[\d+\.\d{3}\]\[\d+\]\[\d+\]\[\d+\]\[\d+\]$")


def test_as_nginx(sides: tuple[Side, Side]) -> None:
    nginx, fastgate = sides
    theirs, ours = nginx.ask("/up"), fastgate.ask("/up")
    assert _ports(_header(ours, b"X-V")) == _ports(_header(theirs, b"X-V")) == \
        "[abc123 ][dark][abc123 ][][][a b][127.0.0.1][PORT][][][]"
    for out in (theirs, ours):
        assert MEASURED.fullmatch(_header(out, b"X-M")), out
    bodies = [side.ask("/").partition(b"\r\n\r\n")[2].decode() for side in (nginx, fastgate)]
    values = [_ports(MEASURED.sub("", b)) for b in bodies]
    assert values[1] == values[0] == "[][][][][][][127.0.0.1][PORT][][][]"
    assert all(MEASURED.search(b) for b in bodies), bodies
