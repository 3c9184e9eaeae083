"""``fastcgi_pass`` (and uwsgi_pass, scgi_pass) with variables beside nginx 1.22: the
value evaluated per request as nginx's ngx_http_fastcgi_eval does — an upstream block's
name (matched first), an address, ``unix:PATH``, or a name the location's ``resolver``
resolves — and what nginx answers and logs when it is none of these (no resolver, a name
that does not resolve, no port, an invalid port). Compared: status, what the
application got, and the error log's messages."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, wait_port
from dns_server import DnsServer
from e2e_util import NGINX, beside_nginx, log_messages, stop_process
from fastcgi_backend import FastcgiBackend

BLOCK = """
http {
  access_log off;
  upstream php { server 127.0.0.1:APP; }
  upstream phpsock { server unix:HOME/php.sock; }
  map $arg_to $fcgi {
    block   php;
    addr    127.0.0.1:APP;
    sock    unix:HOME/php.sock;
    blocksock phpsock;
    nosock  unix:HOME/none.sock;
    name    app.test:APP;
    noport  app.test;
    unknown nowhere.test:APP;
    badport 127.0.0.1:99999;
    default "";
  }
  server {
    listen 127.0.0.1:PORT;
    fastcgi_param DOCUMENT_URI $document_uri;
    fastcgi_param QUERY_STRING $query_string;
    location /v/ { resolver 127.0.0.1:DNS ipv6=off; fastcgi_pass $fcgi; }
    location /nores/ { fastcgi_pass $fcgi; }
    location /static/ { fastcgi_pass phpsock; }
  }
}
"""


class Side:
    def __init__(self, kind: str, tmp: Path, app: int, dns: int) -> None:
        self.port = free_port()
        home = tmp / kind
        home.mkdir()
        self.errors = home / "error.log"
        block = (BLOCK.replace("PORT", str(self.port)).replace("APP", str(app))
                 .replace("DNS", str(dns)).replace("HOME", str(tmp)))
        self.proc = beside_nginx(kind, home, block, "error")
        wait_port(self.port, self.proc)

    def get(self, path: str) -> tuple[int, bytes]:
        """The status and the body (its own port named PORT: the Host the app echoes)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, r.read().replace(str(self.port).encode(), b"PORT")
        except urllib.error.HTTPError as e:
            return e.code, b"(error page)"

    def messages(self) -> list[str]:
        return log_messages(self.errors)

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Side, Side, FastcgiBackend, FastcgiBackend]]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    app = FastcgiBackend()
    sock = FastcgiBackend(unix=str(tmp_path / "php.sock"))
    dns = DnsServer()
    dns.set("app.test", ["127.0.0.1"])
    made: list[Side] = []
    try:
        for kind in ("nginx", "fastgate"):
            made.append(Side(kind, tmp_path, app.port, dns.port))
        yield made[0], made[1], app, sock
    finally:
        for side in made:
            side.stop()
        app.stop()
        sock.stop()
        dns.stop()


@pytest.mark.parametrize("path", [
    "/v/x?to=block", "/v/x?to=addr", "/v/x?to=sock", "/v/x?to=blocksock",
    "/v/x?to=nosock", "/v/x?to=name", "/v/x?to=noport",
    "/v/x?to=unknown", "/v/x?to=badport", "/v/x?to=", "/nores/x?to=name",
    "/nores/x?to=addr", "/static/x",
])
def test_as_nginx(sides: tuple[Side, Side, FastcgiBackend, FastcgiBackend], path: str) -> None:
    nginx, fastgate, app, sock = sides

    def received() -> list[list[tuple[bytes, bytes]]]:
        time.sleep(0.05)
        ports = (str(nginx.port).encode(), str(fastgate.port).encode())
        return [[(n, v.replace(ports[0], b"PORT").replace(ports[1], b"PORT"))
                 for n, v in r.params] for r in app.requests() + sock.requests()]

    want = nginx.get(path)
    nginx_got = received()
    expected = nginx.messages()
    got = fastgate.get(path)
    fastgate_got = received()[len(nginx_got):]
    assert got == want
    assert fastgate.messages() == expected
    assert fastgate_got == nginx_got  # (what the application received, in order)
