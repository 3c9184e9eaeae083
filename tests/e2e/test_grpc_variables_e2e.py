"""``grpc_pass`` with variables, ``grpcs://`` to a unix socket and ``grpc_ssl_name`` with
variables, beside nginx 1.22: the value read per request as nginx's ngx_http_grpc_eval
reads it — ``grpc://`` or ``grpcs://`` or neither, an upstream block's name, an
address, ``unix:PATH``, a name the location's resolver resolves — and the ``:scheme``
and ``:authority`` it gives; over TLS, the name the handshake sends (SNI) as nginx's
(the address's host by default, ``grpc_ssl_name``'s value, none when that is empty).
Compared: status, the fields each application got, the names its handshakes asked
for, and the error log's messages. Then, on both engines: a request auth_jwt refuses
reaches no application through a grpc_pass with variables."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, request, wait_port
from dns_server import DnsServer
from e2e_util import NGINX, bearer, beside_nginx, log_messages, stop_process
from grpc_backend import GrpcBackend
from helpers import self_signed

SECRET = "grpc-variables-secret-0123456789abcdef"

BLOCK = """
http {
  access_log off;
  upstream block { server 127.0.0.1:APP; }
  map $arg_to $g {
    block   block;
    addr    127.0.0.1:APP;
    scheme  grpc://127.0.0.1:APP;
    upper   GRPC://127.0.0.1:APP;
    tls     grpcs://127.0.0.1:TAPP;
    tlsname grpcs://app.test:TAPP;
    sock    unix:HOME/g.sock;
    tlssock grpcs://unix:HOME/gs.sock;
    name    app.test:APP;
    noport  app.test;
    unknown nowhere.test:APP;
    badport 127.0.0.1:99999;
    nohost  :APP;
    nopath  unix:;
    default "";
  }
  server {
    listen 127.0.0.1:PORT;
    location /v/ { resolver 127.0.0.1:DNS ipv6=off; grpc_ssl_server_name on;
                   grpc_ssl_name $arg_sni; grpc_pass $g; }
    location /d/ { resolver 127.0.0.1:DNS ipv6=off; grpc_ssl_server_name on; grpc_pass $g; }
    location /nores/ { grpc_pass $g; }
    location /s/ { grpc_ssl_server_name on; grpc_ssl_name $arg_sni;
                   grpc_pass grpcs://unix:HOME/gs.sock; }
    location /u/ { grpc_pass grpcs://unix:HOME/gs.sock; }
    location /n/ { grpc_ssl_server_name on; grpc_ssl_name $arg_sni;
                   grpc_pass grpcs://127.0.0.1:TAPP; }
  }
}
"""


def _tls(tmp: Path) -> ssl.SSLContext:
    cert, key = self_signed(tmp, "app.test", stem="grpc-")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    return ctx


class Side:
    def __init__(self, kind: str, tmp: Path, ports: dict[str, int]) -> None:
        self.port = free_port()
        home = tmp / kind
        home.mkdir()
        self.errors = home / "error.log"
        block = BLOCK.replace("PORT", str(self.port)).replace("HOME", str(tmp))
        for name, port in ports.items():
            block = block.replace(name, str(port))
        self.proc = beside_nginx(kind, home, block, "error")
        wait_port(self.port, self.proc)

    def get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                r.read()
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def stop(self) -> None:
        stop_process(self.proc)


class Apps:
    """The four applications: in clear and over TLS, on a port and on a socket."""

    def __init__(self, tmp: Path) -> None:
        self.plain = GrpcBackend()
        self.tls = GrpcBackend(tls=_tls(tmp))
        self.sock = GrpcBackend(unix=str(tmp / "g.sock"))
        self.tls_sock = GrpcBackend(tls=_tls(tmp), unix=str(tmp / "gs.sock"))
        self.all = (self.plain, self.tls, self.sock, self.tls_sock)

    def seen(self) -> tuple[list[list[list[tuple[bytes, bytes]]]], list[list[str | None]]]:
        """Each application's requests (their fields) and the names asked for."""
        time.sleep(0.05)
        return ([[r.fields for r in app.requests()] for app in self.all],
                [list(app.names) for app in self.all])

    def stop(self) -> None:
        for app in self.all:
            app.stop()


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Side, Side, Apps]]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    apps = Apps(tmp_path)
    dns = DnsServer()
    dns.set("app.test", ["127.0.0.1"])
    made: list[Side] = []
    try:
        ports = {"TAPP": apps.tls.port, "APP": apps.plain.port, "DNS": dns.port}
        for kind in ("nginx", "fastgate"):
            made.append(Side(kind, tmp_path, ports))
        yield made[0], made[1], apps
    finally:
        for side in made:
            side.stop()
        apps.stop()
        dns.stop()


def _new(before: tuple[list, list], after: tuple[list, list]) -> tuple[list, list]:
    return ([a[len(b):] for a, b in zip(after[0], before[0], strict=True)],
            [a[len(b):] for a, b in zip(after[1], before[1], strict=True)])


# the names nginx's handshakes ask for (SNI): grpc_ssl_name's value without its port,
# the address's host by default, none for an address or an empty name
NAMES: dict[str, list[str | None]] = {
    "/v/pkg.S/M?to=tls&sni=api.example": ["api.example"], "/v/pkg.S/M?to=tls": [None],
    "/v/pkg.S/M?to=tlsname&sni=x.example:8443": ["x.example"],
    "/v/pkg.S/M?to=tlssock&sni=sock.example": ["sock.example"],
    "/d/pkg.S/M?to=tlsname": ["app.test"], "/d/pkg.S/M?to=tls": [None],
    "/s/pkg.S/M?sni=one.example": ["one.example"], "/s/pkg.S/M": [None],
    "/u/pkg.S/M": [None], "/n/pkg.S/M?sni=two.example": ["two.example"],
}


@pytest.mark.parametrize("path", [
    "/v/pkg.S/M?to=block", "/v/pkg.S/M?to=addr", "/v/pkg.S/M?to=scheme",
    "/v/pkg.S/M?to=upper", "/v/pkg.S/M?to=tls&sni=api.example",
    "/v/pkg.S/M?to=tls", "/v/pkg.S/M?to=tlsname&sni=x.example:8443",
    "/v/pkg.S/M?to=sock", "/v/pkg.S/M?to=tlssock&sni=sock.example", "/v/pkg.S/M?to=name",
    "/v/pkg.S/M?to=noport", "/v/pkg.S/M?to=unknown", "/v/pkg.S/M?to=badport",
    "/v/pkg.S/M?to=nohost", "/v/pkg.S/M?to=nopath", "/v/pkg.S/M?to=",
    "/d/pkg.S/M?to=tlsname", "/d/pkg.S/M?to=tls", "/nores/pkg.S/M?to=name",
    "/nores/pkg.S/M?to=addr", "/s/pkg.S/M?sni=one.example", "/s/pkg.S/M", "/u/pkg.S/M",
    "/n/pkg.S/M?sni=two.example",
])
def test_as_nginx(sides: tuple[Side, Side, Apps], path: str) -> None:
    nginx, fastgate, apps = sides
    ports = (str(nginx.port).encode(), str(fastgate.port).encode())

    def normal(seen: tuple[list, list]) -> tuple[list, list]:
        fields = [[[(n, v.replace(ports[0], b"P").replace(ports[1], b"P")) for n, v in r]
                   for r in app] for app in seen[0]]
        return fields, seen[1]

    start = apps.seen()
    want = nginx.get(path)
    after_nginx = apps.seen()
    expected = log_messages(nginx.errors)
    got = fastgate.get(path)
    after = apps.seen()
    assert got == want
    names = [n for app in _new(start, after_nginx)[1] for n in app]
    assert names == NAMES.get(path, []), (path, names)  # (what nginx's handshakes asked)
    assert log_messages(fastgate.errors) == expected
    assert normal(_new(after_nginx, after)) == normal(_new(start, after_nginx))


def test_a_refused_request_reaches_no_application(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    """auth_jwt before the grpc_pass with variables is read: a request without a valid
    token reaches none of the applications it could name, in clear or over TLS, on a
    port or on a socket; one with a valid token does, with the verified claim."""
    apps = Apps(tmp_path)
    port = free()
    try:
        gateway(f"""error_log stderr info;
http {{ access_log off;
  server {{ listen 127.0.0.1:{port};
    location /api/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
      grpc_set_header X-User $jwt_claim_sub;
      set $g grpc://127.0.0.1:{apps.plain.port};
      if ($arg_to = tls) {{ set $g grpcs://127.0.0.1:{apps.tls.port}; }}
      if ($arg_to = sock) {{ set $g unix:{tmp_path}/g.sock; }}
      if ($arg_to = tlssock) {{ set $g grpcs://unix:{tmp_path}/gs.sock; }}
      grpc_pass $g; }}
  }} }}""", port)
        for to in ("plain", "tls", "sock", "tlssock"):
            for headers in ({}, {"Authorization": "Bearer a.b.c"}, bearer(SECRET, -60),
                            bearer("another-secret-of-32-bytes-0123456")):
                status, _, _ = request(port, "POST", f"/api/pkg.S/M?to={to}", b"SECRET-BODY",
                                       {"X-User": "forged", **headers}, timeout=10)
                assert status == 401
        time.sleep(0.1)
        for app in apps.all:
            assert app.requests() == [] and b"SECRET-BODY" not in app.raw()
        for to, app in zip(("plain", "tls", "sock", "tlssock"), apps.all, strict=True):
            status, _, _ = request(port, "POST", f"/api/pkg.S/M?to={to}", b"body",
                                   {"X-User": "forged", **bearer(SECRET)},
                                   timeout=10)
            assert status == 200
            (got,) = app.requests()
            assert got.get(b"x-user") == b"\"alice\"" and got.body == b"body"  # (JSON text)
            assert got.get(b":scheme") == (b"https" if "tls" in to else b"http")
    finally:
        apps.stop()
