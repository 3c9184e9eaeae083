"""Configurations written the way people write them for nginx (``tests/configs/wild/``):
each passes ``fastgate -t`` and then serves, on both engines, in front of backends that
keep what they receive. Only addresses, ports and file paths are changed to fit the test
machine (and ``user``, since the tests run as root)."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import jwt as pyjwt
import pytest
from conftest import wait_port
from dns_server import DnsServer
from e2e_util import (
    NGINX,
    beside_nginx,
    compared_answer,
    fastgate,
    stop_process,
    wait_for_text,
)
from fastcgi_backend import FastcgiBackend
from h2_client import H2Client
from helpers import self_signed
from mp4_sample import sample_mp4
from passlib import hash as hashes
from raw_backend import RawBackend, Received

WILD = Path(__file__).resolve().parents[1] / "configs" / "wild"


def _fit(name: str, tmp: Path, extra: dict[str, str]) -> str:
    """The configuration as the test machine can run it."""
    text = (WILD / name).read_text()
    text = re.sub(r"(?m)^\s*user\s+[\w-]+;\s*$", "", text)
    for a, b in {"/var/log/nginx/": f"{tmp}/", "/run/nginx.pid": f"{tmp}/nginx.pid",
                 "/etc/nginx/": f"{tmp}/", "/etc/ssl/certs/": f"{tmp}/",
                 "/etc/ssl/private/": f"{tmp}/", **extra}.items():
        text = text.replace(a, b)
    return text


def _under_nginx(name: str, tmp: Path, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    """nginx running the configuration ``name`` fitted with ``extra`` (its home:
    ``tmp``/nginx, which the caller may have made), for the tests that compare."""
    text = _fit(name, tmp, extra)
    # (beside_nginx writes its own worker_processes and events)
    text = re.sub(r"(?ms)^worker_processes auto;$|^events \{.*?^\}$", "", text)
    home = tmp / "nginx"
    home.mkdir(exist_ok=True)
    return beside_nginx("nginx", home, text, "error")


def _check(conf: Path) -> None:
    run = fastgate("-t", "-c", str(conf))
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr


class Client:
    def __init__(self, port: int, tls: bool = False) -> None:
        self.port = port
        self.tls = tls

    def __call__(self, method: str, path: str, headers: dict[str, str] | None = None,
                 body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        if self.tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            c: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=10, context=ctx)
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()


@pytest.fixture
def backends() -> Iterator[Callable[..., RawBackend]]:
    started: list[RawBackend] = []

    def make(**kw: object) -> RawBackend:
        be = RawBackend(**kw)  # type: ignore[arg-type]
        started.append(be)
        return be

    yield make
    for be in started:
        be.stop()


@pytest.fixture
def serve(tmp_path: Path, gateway, free):  # type: ignore[no-untyped-def]
    """serve(name, {old: new}) -> (Client, the gateway): checked with -t, then started."""

    def run(name: str, extra: dict[str, str], tls: bool = False,  # type: ignore[no-untyped-def]
            port: int | None = None):
        port = port or free()
        text = _fit(name, tmp_path, {**extra, "listen 8080": f"listen 127.0.0.1:{port}"})
        conf = tmp_path / name
        conf.write_text(text)
        _check(conf)
        g = gateway(text, port)
        return Client(port), g

    return run


@pytest.fixture
def beside(serve, tmp_path: Path, free):  # type: ignore[no-untyped-def]
    """beside(name, {old: new}, {kind: {old: new}}) -> {kind: port}: the configuration
    under nginx and under fastgate, each on a port of its own, fitted with the
    replacements both share and its own; nginx stopped at the end (fastgate by
    ``serve``)."""
    started: list[subprocess.Popen[bytes]] = []

    def run(name: str, shared: dict[str, str],
            own: dict[str, dict[str, str]] | None = None) -> dict[str, int]:
        ports = {"nginx": free(), "fastgate": free()}
        mine = own or {}
        proc = _under_nginx(name, tmp_path, {
            **shared, **mine.get("nginx", {}),
            "listen 8080": f"listen 127.0.0.1:{ports['nginx']}"})
        started.append(proc)
        wait_port(ports["nginx"], proc)
        serve(name, {**shared, **mine.get("fastgate", {})}, port=ports["fastgate"])
        return ports

    yield run
    for proc in started:
        stop_process(proc)


def bearer(secret: str, **claims: object) -> dict[str, str]:
    token = pyjwt.encode({"sub": "alice", **claims}, secret, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def test_cors_gateway(serve, backends) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    ask, _ = serve("cors-gateway.conf", {"127.0.0.1:3000": f"127.0.0.1:{be.port}"})
    origin = {"Origin": "https://app.example.com", "Host": "api.example.com"}
    status, headers, _ = ask("OPTIONS", "/api/orders", origin)
    assert status == 204
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert "PUT" in headers["access-control-allow-methods"]
    assert ask("GET", "/api/orders", origin)[0] == 401
    status, headers, _ = ask("GET", "/api/orders",
                             {**origin, **bearer("cors-gateway-secret-0123456789abcdef")})
    assert status == 200 and headers["access-control-allow-origin"] == "https://app.example.com"
    status, headers, _ = ask("GET", "/api/orders", {
        "Origin": "https://evil.example", **bearer("cors-gateway-secret-0123456789abcdef")})
    assert status == 200 and "access-control-allow-origin" not in headers
    assert [r.target for r in be.requests()] == [b"/api/orders"] * 2
    assert be.requests()[0].header(b"x-user") == [b'"alice"']


def test_websocket_app(serve, backends) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    ask, g = serve("websocket-app.conf", {"127.0.0.1:4000": f"127.0.0.1:{be.port}"})
    token = pyjwt.encode({"sub": "bob"}, "websocket-app-secret-0123456789abcdef",
                         algorithm="HS256")
    with socket.create_connection(("127.0.0.1", ask.port), timeout=10) as s:
        s.sendall(b"GET /ws/room HTTP/1.1\r\nHost: chat.example.com\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nCookie: session=" + token.encode() + b"\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101 ")
        s.sendall(b"ping-frame")
        echoed = b""
        while len(echoed) < 10:
            echoed += s.recv(4096)
        assert echoed == b"ping-frame"
    [up] = [r for r in be.requests() if r.target == b"/ws/room"]
    assert up.header(b"connection") == [b"upgrade"] and up.header(b"upgrade") == [b"websocket"]
    # without the cookie: no upgrade reaches the backend
    with socket.create_connection(("127.0.0.1", ask.port), timeout=10) as s:
        s.sendall(b"GET /ws/other HTTP/1.1\r\nHost: chat.example.com\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 401 ")
    assert not be.seen(b"/ws/other")


def test_docker_dns(serve, backends) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    dns = DnsServer()
    try:
        dns.set("orders.internal", ["127.0.0.1"], ttl=5)
        dns.set("catalog.internal", ["127.0.0.1"], ttl=5)
        ask, _ = serve("docker-dns.conf", {"127.0.0.11": f"127.0.0.1:{dns.port}",
                                           ":8000": f":{be.port}"})
        assert ask("GET", "/orders/7")[0] == 401
        assert ask("GET", "/orders/7", bearer("docker-dns-secret-0123456789abcdef"))[0] == 200
        assert ask("GET", "/catalog/shoes?size=42")[0] == 200
        assert ask("GET", "/catalog/hats")[0] == 200
        assert dns.asked("catalog.internal") == 1 and dns.asked("orders.internal") == 1
        assert [r.target for r in be.requests()] == [b"/orders/7", b"/catalog/shoes?size=42",
                                                     b"/catalog/hats"]
    finally:
        dns.stop()


def _oauth2_proxy(req: Received) -> bytes:
    path = req.target.split(b"?")[0]
    if path == b"/oauth2/auth":
        if req.header(b"cookie") == [b"_oauth2_proxy=valid"]:
            return (b"HTTP/1.1 202 Accepted\r\nX-Auth-Request-User: alice\r\n"
                    b"X-Auth-Request-Email: alice@example.com\r\n"
                    b"Set-Cookie: _oauth2_proxy=refreshed; Path=/\r\nContent-Length: 0\r\n\r\n")
        return b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
    if path == b"/oauth2/sign_in":
        return (b"HTTP/1.1 302 Found\r\nLocation: https://idp.example.com/authorize\r\n"
                b"Content-Length: 0\r\n\r\n")
    return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def test_oauth2_proxy(serve, backends) -> None:  # type: ignore[no-untyped-def]
    proxy = backends(answer=_oauth2_proxy)
    app = backends()
    ask, _ = serve("oauth2-proxy.conf", {"127.0.0.1:4180": f"127.0.0.1:{proxy.port}",
                                         "127.0.0.1:8501": f"127.0.0.1:{app.port}"})
    status, headers, _ = ask("GET", "/reports?q=1")
    assert status == 302 and headers["location"] == "https://idp.example.com/authorize"
    assert app.requests() == []
    status, headers, _ = ask("GET", "/reports?q=1", {"Cookie": "_oauth2_proxy=valid"})
    assert status == 200
    assert headers["set-cookie"] == "_oauth2_proxy=refreshed; Path=/"
    [got] = app.requests()
    assert got.target == b"/reports?q=1"
    assert got.header(b"x-user") == [b"alice"]
    assert got.header(b"x-email") == [b"alice@example.com"]
    assert ask("GET", "/oauth2/auth")[0] == 404  # internal: not for clients


def test_tls_edge(serve, backends, tmp_path: Path, free) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    self_signed(tmp_path, "secure.example.com", stem="secure.example.com.")
    (tmp_path / "secure.example.com.pem").write_bytes(
        (tmp_path / "secure.example.com.cert.pem").read_bytes())
    (tmp_path / "secure.example.com.key").write_bytes(
        (tmp_path / "secure.example.com.key.pem").read_bytes())
    tls_port = free()
    ask, g = serve("tls-edge.conf", {"listen 8443": f"listen 127.0.0.1:{tls_port}",
                                     "127.0.0.1:5000": f"127.0.0.1:{be.port}"})
    status, headers, _ = ask("GET", "/api/x?y=1", {"Host": "secure.example.com"})
    assert status == 301 and headers["location"] == "https://secure.example.com/api/x?y=1"
    secure = Client(tls_port, tls=True)
    status, headers, _ = secure("GET", "/api/x")
    assert status == 401 and headers["strict-transport-security"] == "max-age=63072000"
    status, _, _ = secure("GET", "/api/x", bearer("tls-edge-secret-0123456789abcdef-0123"))
    assert status == 200
    assert be.requests()[0].header(b"x-forwarded-proto") == [b"https"]
    # listen ... ssl http2: a browser's HTTP/2 by ALPN, the same checks
    with H2Client(tls_port, tls=True) as h2c:
        refused = h2c.get("/api/x", authority="secure.example.com")
        token = bearer("tls-edge-secret-0123456789abcdef-0123")["Authorization"]
        allowed = h2c.get("/api/y", authority="secure.example.com",
                          headers={"authorization": token})
    assert refused.status == 401
    assert refused.header(b"strict-transport-security") == b"max-age=63072000"
    assert allowed.status == 200
    assert [r.target for r in be.requests()] == [b"/api/x", b"/api/y"]
    # what fastgate cannot do was said once each
    for warned in ('a "shared:" session cache is kept by each worker',
                   '"ssl_stapling" directive is ignored'):
        assert g.stderr.count(warned) == 1
    assert "ssl_session_timeout" not in g.stderr


def test_basic_auth_admin(serve, backends, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    (tmp_path / ".htpasswd").write_text(
        f"admin:{hashes.bcrypt.using(rounds=4, ident='2y').hash('s3cret')}\n"
        f"editor:{hashes.apr_md5_crypt.hash('words')}\n")
    ask, _ = serve("basic-auth-admin.conf", {"127.0.0.1:8000": f"127.0.0.1:{be.port}"})

    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(
            f"{user}:{password}".encode()).decode()}

    assert ask("GET", "/")[0] == 200
    status, headers, _ = ask("GET", "/admin/")
    assert status == 401 and headers["www-authenticate"] == 'Basic realm="Administrator\'s area"'
    assert ask("GET", "/admin/", basic("admin", "wrong"))[0] == 401
    assert ask("GET", "/admin/users", basic("admin", "s3cret"))[0] == 200
    assert ask("GET", "/admin/posts", basic("editor", "words"))[0] == 200
    assert [r.header(b"x-remote-user") for r in be.requests() if r.target != b"/"] == [
        [b"admin"], [b"editor"]]
    status, _, body = ask("GET", "/basic_status")
    assert status == 200 and body.startswith(b"Active connections: ")


def test_realip_behind_lb(serve, backends, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    ask, _ = serve("realip-behind-lb.conf", {"127.0.0.1:9000": f"127.0.0.1:{be.port}"})
    via_lb = {"X-Forwarded-For": "203.0.113.9, 10.1.2.3"}
    for _ in range(3):
        assert ask("GET", "/a", via_lb)[0] == 200
    # the same client through the balancer: limited by its own address
    assert ask("GET", "/a", via_lb)[0] == 429
    # another client is not
    assert ask("GET", "/a", {"X-Forwarded-For": "198.51.100.4"})[0] == 200
    got = be.requests()[0]
    assert got.header(b"x-real-ip") == [b"203.0.113.9"]
    log = (tmp_path / "access.log")
    deadline = time.time() + 5
    while time.time() < deadline and "198.51.100.4" not in log.read_text():
        time.sleep(0.1)
    assert log.read_text().splitlines()[0].startswith("203.0.113.9 - - [")
    assert log.read_text().splitlines()[0].endswith(" 127.0.0.1")


def test_api_gateway_rbac(serve, backends) -> None:  # type: ignore[no-untyped-def]
    users, billing = backends(), backends()
    secret = "api-gateway-secret-0123456789abcdef-01"
    ask, _ = serve("api-gateway-rbac.conf", {"127.0.0.1:7001": f"127.0.0.1:{users.port}",
                                             "127.0.0.1:7002": f"127.0.0.1:{billing.port}"})
    assert ask("GET", "/health")[2] == b"ok\n"
    assert ask("GET", "/users/42")[0] == 401
    assert ask("GET", "/users/42", bearer(secret))[0] == 200
    assert ask("POST", "/billing/pay", bearer(secret, scope="read"), b"{}")[0] == 403
    assert ask("POST", "/billing/pay", bearer(secret, scope="read write"), b"{}")[0] == 200
    assert ask("GET", "/admin/stats", bearer(secret, role="user"))[0] == 403
    assert ask("GET", "/admin/stats", bearer(secret, role="admin"))[0] == 200
    assert [r.target for r in users.requests()] == [b"/42", b"/admin/stats"]
    assert users.requests()[0].header(b"x-user-id") == [b'"alice"']
    assert [r.target for r in billing.requests()] == [b"/pay"]


def test_rate_limited_api(serve, backends) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    ask, _ = serve("rate-limited-api.conf", {"127.0.0.1:6000": f"127.0.0.1:{be.port}"})
    key = {"X-Api-Key": "k1"}
    assert ask("GET", "/v1/a", key)[0] == 200
    assert ask("GET", "/v1/a", key)[0] == 200  # the burst of one
    status, _, body = ask("GET", "/v1/a", key)
    assert status == 429 and json.loads(body) == {"error": "rate limited"}
    assert ask("GET", "/v1/a", {"X-Api-Key": "k2"})[0] == 200
    assert len(be.requests()) == 3


def test_stock_nginx(serve, backends, tmp_path: Path, free) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    site = tmp_path / "www"
    site.mkdir()
    (site / "index.nginx-debian.html").write_bytes(b"<h1>Welcome</h1>")
    ask, g = serve("stock-nginx.conf", {"127.0.0.1:3001": f"127.0.0.1:{be.port}",
                                        "listen [::1]:8080": f"listen 127.0.0.1:{free()}",
                                        "/var/www/html": str(site)})
    status, _, body = ask("GET", "/")  # the third index name
    assert (status, body) == (200, b"<h1>Welcome</h1>")
    assert ask("GET", "/index.nginx-debian.html")[0] == 200
    assert ask("GET", "/index.html")[0] == 404  # try_files' =404
    assert ask("GET", "/api/x")[0] == 401
    assert ask("GET", "/api/x", bearer("stock-nginx-secret-0123456789abcdef-012"))[0] == 200
    # one warning per ignored directive, however often it appears; gzip works now
    assert g.stderr.count('"sendfile" directive is ignored') == 1
    assert '"gzip" directive is ignored' not in g.stderr


def test_rewrite_legacy(serve, backends) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    ask, _ = serve("rewrite-legacy.conf", {"127.0.0.1:3002": f"127.0.0.1:{be.port}"})
    status, headers, _ = ask("GET", "/blog/2019/hello", {"Host": "legacy.example.com"})
    assert status == 301
    assert headers["location"].endswith("/articles/hello?year=2019")
    assert ask("GET", "/api/v1/users")[0] == 401  # rewritten into the protected location
    assert ask("GET", "/api/v1/users",
               bearer("rewrite-legacy-secret-0123456789abcdef"))[0] == 200
    status, headers, _ = ask("GET", "/docs/")
    assert status == 302 and headers["location"].endswith("/docs/index")
    assert ask("GET", "/docs/index")[0] == 200
    assert [r.target for r in be.requests()] == [b"/api/v2/users", b"/docs/index"]


def _failing(req: Received) -> bytes:
    return b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\ntrace"


def test_error_pages(serve, backends, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    be = backends(answer=_failing)
    flag = tmp_path / "maintenance.flag"
    ask, _ = serve("error-pages.conf", {"127.0.0.1:3003": f"127.0.0.1:{be.port}",
                                        "/var/www/maintenance.flag": str(flag)})
    # the backend's 500 answered by the error page, with the error's status (nginx's
    # error_page without "=": the page's own 503 does not replace it)
    status, _, body = ask("GET", "/page")
    assert status == 500 and body == b"Sorry, we are down for a moment.\n"
    assert ask("GET", "/50x.html")[0] == 404  # internal
    flag.write_text("")
    status, _, body = ask("GET", "/page")
    assert status == 503 and body == b"Sorry, we are down for a moment.\n"
    assert len(be.requests()) == 1  # in maintenance, nothing went to the backend


def test_read_only_public(serve, backends) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    ask, _ = serve("read-only-public.conf", {"127.0.0.1:3004": f"127.0.0.1:{be.port}"})
    secret = "read-only-secret-0123456789abcdef-0123"
    assert ask("GET", "/items/1")[0] == 200
    assert ask("HEAD", "/items/1")[0] == 200
    assert ask("PUT", "/items/1", body=b"x")[0] == 401
    assert ask("PUT", "/items/1", bearer(secret), b"x")[0] == 200
    assert ask("POST", "/admin/items/", body=b"x")[0] == 200
    assert ask("DELETE", "/admin/items/1")[0] == 403  # not from the office network
    assert [(r.method, r.target) for r in be.requests()] == [
        (b"GET", b"/items/1"), (b"HEAD", b"/items/1"), (b"PUT", b"/items/1"),
        (b"POST", b"/admin/items/")]


def _unavailable(req: Received) -> bytes:
    return b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"


def test_upstream_failover(serve, backends, free) -> None:  # type: ignore[no-untyped-def]
    failing, healthy, backup = backends(answer=_unavailable), backends(), backends()
    ask, _ = serve("upstream-failover.conf", {"127.0.0.1:3005": f"127.0.0.1:{failing.port}",
                                              "127.0.0.1:3006": f"127.0.0.1:{healthy.port}",
                                              "127.0.0.1:3007": f"127.0.0.1:{backup.port}"})
    for i in range(4):
        assert ask("GET", f"/r{i}")[0] == 200
    assert len(healthy.requests()) == 4 and backup.requests() == []
    assert 1 <= len(failing.requests()) <= 2  # taken out after max_fails


def _policy(req: Received) -> bytes:
    if req.header(b"x-original-method") == [b"GET"]:
        return b"HTTP/1.1 200 OK\r\nX-Policy: read\r\nContent-Length: 0\r\n\r\n"
    return b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"


def test_jwt_and_authz(serve, backends, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "idp-1"}]}))
    opa, app = backends(answer=_policy), backends()
    ask, _ = serve("jwt-and-authz.conf", {"127.0.0.1:8181": f"127.0.0.1:{opa.port}",
                                          "127.0.0.1:3008": f"127.0.0.1:{app.port}"})
    token = pyjwt.encode({"sub": "carol"}, key, algorithm="ES256", headers={"kid": "idp-1"})
    auth = {"Authorization": f"Bearer {token}"}
    assert ask("GET", "/api/doc", {"Authorization": "Bearer forged.token.here"})[0] == 401
    assert opa.requests() == []  # a refused token costs no policy question
    assert ask("GET", "/api/doc", auth)[0] == 200
    assert ask("DELETE", "/api/doc", auth)[0] == 403
    [got] = app.requests()
    assert got.header(b"x-policy") == [b"read"] and got.header(b"x-subject") == [b'"carol"']
    assert [q.target for q in opa.requests()] == [b"/v1/allow"] * 2


def test_status_monitoring(serve, backends) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    ask, _ = serve("status-monitoring.conf", {"127.0.0.1:3009": f"127.0.0.1:{be.port}"})
    assert ask("GET", "/app/x")[0] == 200
    status, _, body = ask("GET", "/nginx_status")
    assert status == 200 and b"server accepts handled requests" in body
    status, _, body = ask("GET", "/metrics")
    assert status == 200 and b"fastgate_requests_total" in body


def test_https_upstream(serve, backends, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    crt, key = self_signed(tmp_path, "api.internal.example.com", stem="be-")
    (tmp_path / "internal-ca.pem").write_bytes(crt.read_bytes())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    names: list[str] = []
    ctx.sni_callback = lambda obj, name, c: names.append(name or "")  # type: ignore[misc,func-returns-value]
    be = backends(tls=ctx)
    ask, g = serve("https-upstream.conf", {"127.0.0.1:9443": f"127.0.0.1:{be.port}"})
    assert ask("GET", "/x")[0] == 401
    assert ask("GET", "/x", bearer("https-upstream-secret-0123456789abcdef"))[0] == 200
    assert names == ["api.internal.example.com"]
    assert [r.target for r in be.requests()] == [b"/x"]
    assert g.stderr.count('"proxy_ssl_verify_depth" directive is ignored') == 1


def test_every_wild_configuration_is_exercised() -> None:
    names = {p.name for p in WILD.glob("*.conf")}
    assert len(names) >= 15
    tested = {n for n in names
              if f"test_{n.removesuffix('.conf').replace('-', '_')}" in globals()}
    assert tested == names


def test_webdav_uploads(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = tmp_path / "files"
    (files / "artifacts").mkdir(parents=True)
    (files / "banners").mkdir()
    (files / "banners" / "one.html").write_bytes(b"<b>banner</b>")
    (files / "talk.flv").write_bytes(b"FLV\x01\x05" + b"v" * 100)
    (tmp_path / "mime.types").write_text("types { video/x-flv flv; text/plain txt; }\n")
    ask, _ = serve("webdav-uploads.conf", {"/srv/files": str(files),
                                           "/var/lib/nginx/body": str(tmp_path / "body")})
    secret = "webdav-ci-secret-0123456789abcdef-01"
    ci = bearer(secret, role="ci")
    path = "/artifacts/app/1.0/app.txt"
    assert ask("PUT", path, body=b"build")[0] == 401
    assert ask("PUT", path, bearer(secret), b"build")[0] == 401  # no role claim
    assert not (files / "artifacts" / "app").exists()
    status, headers, _ = ask("PUT", path, ci, b"build 1")
    assert status == 201 and headers["location"].endswith(path)
    assert ask("GET", path) == (200, ask("GET", path)[1], b"build 1")
    assert ask("GET", path)[1]["content-type"] == "text/plain"
    assert ask("PUT", path, ci, b"build 2")[0] == 204
    assert ask("COPY", path, {**ci, "Destination": "/artifacts/app/latest.txt"})[0] == 204
    assert ask("GET", "/artifacts/app/latest.txt")[2] == b"build 2"
    assert ask("DELETE", "/artifacts/app/latest.txt")[0] == 401
    assert ask("DELETE", "/artifacts/app/latest.txt", ci)[0] == 204
    assert ask("DELETE", "/artifacts/", ci)[0] == 409  # min_delete_depth 2
    assert ask("GET", "/banners/")[2] == b"<b>banner</b>"
    status, headers, body = ask("GET", "/talk.flv?start=10")
    assert (status, headers["content-type"]) == (200, "video/x-flv")
    assert body == b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00" + b"v" * 95
    assert b"app/" in ask("GET", "/artifacts/")[2]  # the listing


def test_mirror_on_demand(serve, backends, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    origin = backends()
    cache = tmp_path / "mirror"
    cache.mkdir()
    ask, g = serve("mirror-on-demand.conf", {"127.0.0.1:3010": f"127.0.0.1:{origin.port}",
                                             "/var/cache/mirror-tmp": str(tmp_path / "t"),
                                             "/var/cache/mirror": str(cache)})
    secret = "mirror-subscribers-secret-0123456789ab"
    path = "/packages/pool/f/foo_1.0.deb"
    assert ask("GET", path)[0] == 401
    assert ask("GET", path, bearer(secret))[0] == 401  # no plan claim
    assert origin.requests() == []  # nobody without a plan reached the origin
    status, _, body = ask("GET", path, bearer(secret, plan="pro"))
    assert status == 200
    stored = cache / "packages" / "pool" / "f" / "foo_1.0.deb"
    assert stored.read_bytes() == body
    assert stored.stat().st_mode & 0o777 == 0o664
    assert [r.header(b"host") for r in origin.requests()] == [[b"origin.example.net"]]
    assert ask("GET", path, bearer(secret, plan="pro"))[2] == body  # from the disk now
    assert len(origin.requests()) == 1
    assert ask("GET", path)[0] == 401  # the copy on disk is as protected
    assert '"proxy_temp_path" directive is ignored' in g.stderr


def _cp1251_page(req: Received) -> bytes:
    body = "Привет, сотрудник".encode("cp1251")
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
            % len(body) + body)


def test_legacy_portal(serve, backends, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    be = backends(answer=_cp1251_page)
    site = tmp_path / "portal"
    (site / "inc").mkdir(parents=True)
    (site / "index.html").write_bytes("<p>Главная</p>".encode("cp1251"))
    (site / "inc" / "header.html").write_bytes("<h1>Портал</h1>".encode("cp1251"))
    (site / "inc" / "footer.html").write_bytes(b"<hr>")
    (tmp_path / "mime.types").write_text("types { text/html html; }\n")
    # nginx's win-utf, in its format (windows-1251 byte: its character in UTF-8 hex)
    lines = []
    for byte in range(0x80, 0x100):
        char = bytes([byte]).decode("cp1251", errors="ignore")
        if char:
            lines.append(f"    {byte:02X} {char.encode().hex().upper()} ;")
    (tmp_path / "win-utf").write_text("charset_map windows-1251 utf-8 {\n"
                                      + "\n".join(lines) + "\n}\n")
    ask, _ = serve("legacy-portal.conf", {"/srv/portal": str(site),
                                          "127.0.0.1:3011": f"127.0.0.1:{be.port}"})
    status, headers, body = ask("GET", "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert body.decode("utf-8") == "<h1>Портал</h1><p>Главная</p><hr>"
    assert ask("GET", "/inc/header.html")[0] == 404  # internal
    assert ask("GET", "/staff/list")[0] == 401
    assert be.requests() == []  # nothing without a token reached the backend
    status, headers, body = ask("GET", "/staff/list",
                                bearer("legacy-portal-secret-0123456789abcdef"))
    assert status == 200
    assert body.decode("utf-8") == "<h1>Портал</h1>Привет, сотрудник"
    assert [r.header(b"x-staff") for r in be.requests()] == [[b'"alice"']]  # (JSON, as the module's)


def _widget(req: Received) -> bytes:
    body = b"<widget>3 new messages</widget>"
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def test_ssi_intranet(serve, backends, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    be = backends(answer=_widget)
    site = tmp_path / "intranet"
    (site / "includes").mkdir(parents=True)
    (site / "members").mkdir()
    (tmp_path / "mime.types").write_text("types { text/html html shtml; }\n")
    (site / "includes" / "header.html").write_bytes(
        b'<h1>Intranet</h1><!--#if expr="$jwt_claim_sub"-->hello <!--#echo '
        b'var="jwt_claim_sub"--><!--#else-->hello guest<!--#endif-->')
    (site / "includes" / "footer.html").write_bytes(b"<hr>")
    (site / "index.shtml").write_bytes(
        b'<!--#include virtual="/includes/header.html"--><p>news</p>'
        b'<!--#include virtual="/includes/footer.html"-->')
    (site / "members" / "index.shtml").write_bytes(
        b'<!--#include virtual="/includes/header.html"-->'
        b'<!--#include virtual="/widgets/inbox" -->'
        b'<!--#include virtual="/includes/footer.html"-->')
    ask, _ = serve("ssi-intranet.conf", {"/srv/intranet": str(site),
                                         "127.0.0.1:3012": f"127.0.0.1:{be.port}"})
    status, headers, body = ask("GET", "/")
    assert status == 200 and "content-length" not in headers
    assert body == b"<h1>Intranet</h1>hello guest<p>news</p><hr>"
    assert ask("GET", "/includes/header.html")[0] == 404  # internal
    assert ask("GET", "/widgets/inbox")[0] == 404
    assert ask("GET", "/members/")[0] == 401
    assert be.requests() == []  # nothing without a token reached the widget backend
    secret = "ssi-intranet-secret-0123456789abcdef"
    status, _, body = ask("GET", "/members/", bearer(secret))
    assert status == 200
    assert body == (b'<h1>Intranet</h1>hello &quot;alice&quot;'
                    b"<widget>3 new messages</widget><hr>")
    assert [(r.target, r.header(b"x-user")) for r in be.requests()] == [
        (b"/widgets/inbox", [b'"alice"'])]


def test_video_portal(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    site = tmp_path / "videos"
    (site / "videos").mkdir(parents=True)
    (site / "thumbs").mkdir()
    whole = sample_mp4()
    (site / "videos" / "intro.mp4").write_bytes(whole)
    (site / "thumbs" / "intro.jpg").write_bytes(b"\xff\xd8jpeg")
    (tmp_path / "mime.types").write_text("types { video/mp4 mp4; image/jpeg jpg; }\n")
    ask, _ = serve("video-portal.conf", {"/srv/videos": str(site)})
    assert ask("GET", "/thumbs/intro.jpg")[0] == 200
    assert ask("GET", "/videos/intro.mp4?start=3")[0] == 401
    token = bearer("video-portal-secret-0123456789abcdef")
    status, headers, body = ask("GET", "/videos/intro.mp4", token)
    assert (status, body) == (200, whole)
    status, headers, body = ask("GET", "/videos/intro.mp4?start=3", token)
    assert status == 200 and headers["content-type"] == "video/mp4"
    assert body[4:8] == b"ftyp" and len(body) < len(whole) // 2 + len(whole) // 3
    status, headers, part = ask("GET", "/videos/intro.mp4?start=3",
                                {**token, "Range": "bytes=0-99"})
    assert (status, part) == (206, body[:100])


def test_grpc_gateway(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from grpc_backend import GrpcBackend

    route, hello = GrpcBackend(), GrpcBackend()
    try:
        ask, _ = serve("grpc-gateway.conf", {"127.0.0.1:10001": f"127.0.0.1:{route.port}",
                                             "127.0.0.1:10002": f"127.0.0.1:{hello.port}"})
        secret = "grpc-gateway-secret-0123456789abcdef"
        call = {"Content-Type": "application/grpc", "TE": "trailers"}
        message = b"\x00\x00\x00\x00\x03abc"  # one gRPC message: uncompressed, 3 bytes
        assert ask("POST", "/helloworld.Greeter/SayHello", call, message)[0] == 401
        assert route.raw() == hello.raw() == b""
        status, headers, body = ask("POST", "/helloworld.Greeter/SayHello",
                                    {**call, **bearer(secret)}, message)
        assert status == 200 and headers["content-type"] == "application/grpc"
        [got] = hello.requests()
        assert (got.path, got.body, got.get(b"x-caller"), got.get(b"te")) == (
            "/helloworld.Greeter/SayHello", message, b'"alice"', b"trailers")
        assert ask("GET", "/other", bearer(secret))[0] == 404
        # the way gRPC clients come: HTTP/2 on the same address, trailers as trailers
        with H2Client(ask.port) as h2c:
            fields = {k.lower(): v for k, v in {**call, **bearer(secret)}.items()}
            a = h2c.get("/helloworld.Greeter/SayAgain", method="POST", headers=fields,
                        body=message)
            refused = h2c.get("/helloworld.Greeter/SayAgain", method="POST",
                              headers={k.lower(): v for k, v in call.items()}, body=message)
        assert (a.status, a.header(b"content-type")) == (200, b"application/grpc")
        assert a.trailers[0] == (b"grpc-status", b"0")
        assert refused.status == 401
        assert [r.path for r in hello.requests()] == ["/helloworld.Greeter/SayHello",
                                                      "/helloworld.Greeter/SayAgain"]
        route.stop()  # the service is down: a gRPC-shaped error, not an HTML page
        status, headers, body = ask("POST", "/routeguide.RouteGuide/GetFeature",
                                    {**call, **bearer(secret)}, message)
        assert (status, headers["grpc-status"], headers["grpc-message"], body) == (
            204, "14", "unavailable", b"")
        assert "content-type" not in headers  # (nginx's header filter drops it on a 204)
        log = tmp_path / "grpc_log.json"
        assert wait_for_text(log, '"http-status":204')
        lines = log.read_text().splitlines()
        assert '"http-status":200,"grpc-status":0,' in lines[1]  # the trailer's
        assert '"http-status":200,"grpc-status":0,' in lines[3]  # over HTTP/2 too
        assert '"http-status":204,"grpc-status":14,' in lines[5]  # the header's
    finally:
        route.stop()
        hello.stop()


def test_geo_blocking(serve, backends, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if not Path("/usr/share/GeoIP/GeoIP.dat").exists():
        pytest.skip("geoip-database is installed by make test (test-deps)")
    be = backends()
    ask, _ = serve("geo-blocking.conf", {"127.0.0.1:3100": f"127.0.0.1:{be.port}",
                                         "10.0.0.0/8": "127.0.0.1"})
    secret = "geo-blocking-secret-0123456789abcdef"
    assert ask("GET", "/api/x", bearer(secret))[0] == 451  # loopback: no country
    assert ask("GET", "/api/x", {**bearer(secret), "X-Forwarded-For": "1.2.3.4"})[0] == 451
    us = {"X-Forwarded-For": "203.0.113.9, 8.8.8.8"}  # (the last address is the client's)
    assert ask("GET", "/api/x", us)[0] == 401
    assert be.requests() == []
    assert ask("GET", "/api/x", {**us, **bearer(secret), "X-Country": "CH"})[0] == 200
    [got] = be.requests()
    assert got.header(b"x-country") == [b"US"] and got.header(b"x-user") == [b'"alice"']
    log = tmp_path / "geo.log"
    assert wait_for_text(log, "[US]")


LISTING_XSL = """<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="html"/><xsl:param name="path"/>
<xsl:template match="/"><html><body><h1>Index of <xsl:value-of select="$path"/></h1>
<xsl:for-each select="list/file"><a href="{.}"><xsl:value-of select="."/></a>
(<xsl:value-of select="@size"/>)</xsl:for-each></body></html></xsl:template>
</xsl:stylesheet>"""
CATALOGUE_XSL = """<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="html" encoding="utf-8"/><xsl:param name="user"/>
<xsl:template match="/"><html><body><p>for <xsl:value-of select="$user"/></p>
<xsl:for-each select="//product"><li><xsl:value-of select="@name"/></li></xsl:for-each>
</body></html></xsl:template></xsl:stylesheet>"""


def test_xml_pages(serve, backends, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "xslt").mkdir()
    (tmp_path / "xslt" / "listing.xsl").write_text(LISTING_XSL)
    (tmp_path / "xslt" / "catalogue.xsl").write_text(CATALOGUE_XSL)
    (tmp_path / "www" / "releases").mkdir(parents=True)
    (tmp_path / "www" / "releases" / "app-1.2.tar.gz").write_bytes(b"x" * 1234)
    xml = (b'<?xml version="1.0"?><catalogue><product name="Lamp"/>'
           b'<product name="Desk"/></catalogue>')
    be = backends(answer=lambda r: b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(xml) + xml)
    ask, _ = serve("xml-pages.conf", {"127.0.0.1:3200": f"127.0.0.1:{be.port}",
                                      "/srv/www": str(tmp_path / "www")})
    status, headers, body = ask("GET", "/releases/")
    assert status == 200 and headers["content-type"] == "text/html"
    assert b"<h1>Index of /releases/</h1>" in body
    assert b'<a href="app-1.2.tar.gz">app-1.2.tar.gz</a>\n(1234)' in body
    assert ask("GET", "/catalogue/all")[0] == 401 and be.requests() == []
    status, headers, body = ask("GET", "/catalogue/all",
                                bearer("xml-pages-secret-0123456789abcdef"))
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert b'<p>for "alice"</p>' in body and b"<li>Lamp</li>" in body


def test_thumbnails(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from image_sample import gradient

    from fastgate.proxy.image_filter import kind_of, size_of

    (tmp_path / "mime.types").write_text(
        "types { image/jpeg jpg; image/png png; text/plain txt; }\n")
    images = tmp_path / "catalogue" / "images"
    images.mkdir(parents=True)
    (images / "shoe.jpg").write_bytes(gradient("jpeg", 200, 100))
    (images / "notes.txt").write_text("not an image\n")
    ask, _ = serve("thumbnails.conf", {"/srv/catalogue": str(tmp_path / "catalogue")})
    status, headers, body = ask("GET", "/thumbs/50x50/shoe.jpg")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert size_of(body, kind_of(body)) == (50, 25, False)
    status, headers, body = ask("GET", "/thumbs/50x50/notes.txt")
    assert (status, headers["content-type"], len(body)) == (200, "image/gif", 43)
    assert ask("GET", "/images/shoe.jpg")[0] == 401
    status, _, body = ask("GET", "/images/shoe.jpg", bearer("thumbnails-secret-0123456789abcdef"))
    assert status == 200 and size_of(body, kind_of(body)) == (200, 100, False)


def _stream_echo(tag: bytes) -> tuple[socket.socket, list[bytes]]:
    """A TCP server that answers each connection's first read with ``tag`` + it."""
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    got: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    data = conn.recv(65536)
                    got.append(data)
                    conn.sendall(tag + data[:8])
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    return sock, got


def test_tcp_edge(serve, backends, tmp_path: Path, free) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    git, git_got = _stream_echo(b"git:")
    vault, vault_got = _stream_echo(b"vault:")
    pg, pg_got = _stream_echo(b"pg:")
    tls_port, pg_port = free(), free()
    dead = free()
    try:
        ask, g = serve("tcp-edge.conf", {
            "listen 8443": f"listen 127.0.0.1:{tls_port}",
            "listen 5432": f"listen 127.0.0.1:{pg_port}",
            "10.0.0.11:443": f"127.0.0.1:{git.getsockname()[1]}",
            "10.0.0.12:8200": f"127.0.0.1:{vault.getsockname()[1]}",
            "10.0.0.21:5432": f"127.0.0.1:{dead}",
            "10.0.0.22:5432": f"127.0.0.1:{pg.getsockname()[1]}",
            "127.0.0.1:5000": f"127.0.0.1:{be.port}"})
        ctx = ssl.create_default_context()
        for name, want in (("vault.example.com", b"vault:"), ("git.example.com", b"git:"),
                           ("other.example.com", b"git:")):
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            try:
                ctx.wrap_bio(incoming, outgoing, server_hostname=name).do_handshake()
            except ssl.SSLWantReadError:
                pass
            hello = outgoing.read()
            with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as s:
                s.sendall(hello)
                assert s.recv(100) == want + hello[:8]  # passed through as it came
        # the primary database is down: the backup answers
        with socket.create_connection(("127.0.0.1", pg_port), timeout=5) as s:
            s.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")  # an SSLRequest
            assert s.recv(100) == b"pg:\x00\x00\x00\x08\x04\xd2\x16\x2f"
        # the HTTP API beside them still checks its tokens
        assert ask("GET", "/api/x")[0] == 401
        assert be.requests() == []
        assert ask("GET", "/api/x", bearer("tcp-edge-secret-0123456789abcdef-0123"))[0] == 200
        log = tmp_path / "stream.log"
        for seen in ('"vault.example.com"', '"other.example.com"',
                     f'"127.0.0.1:{dead}, 127.0.0.1:{pg.getsockname()[1]}"'):
            assert wait_for_text(log, seen), seen
        assert "Traceback" not in g.stderr
    finally:
        for s in (git, vault, pg):
            s.close()


def test_mail_proxy(gateway, tmp_path: Path, free) -> None:  # type: ignore[no-untyped-def]
    """IMAP, IMAPS, POP3 and submission through an authoriser written in the same
    configuration (if/add_header/return 204, a map by Auth-Protocol): the right
    password reaches the mail host, a wrong one waits and is refused, and nothing of
    it reaches any mail host."""
    from test_mail_e2e import Client as MailClient
    from test_mail_e2e import _b64, _client_tls, imap_backend, pop3_backend, smtp_backend

    self_signed(tmp_path, "mail.example.com", stem="mail.example.com.")
    (tmp_path / "mail.example.com.pem").write_bytes(
        (tmp_path / "mail.example.com.cert.pem").read_bytes())
    (tmp_path / "mail.example.com.key").write_bytes(
        (tmp_path / "mail.example.com.key.pem").read_bytes())
    imap, pop3, smtp = imap_backend(), pop3_backend(), smtp_backend()
    auth, p143, p993, p110, p587 = free(), free(), free(), free(), free()
    text = _fit("mail-proxy.conf", tmp_path, {
        "127.0.0.1:9000": f"127.0.0.1:{auth}", "Auth-Server 10.0.0.25": "Auth-Server 127.0.0.1",
        "imap 143;": f"imap {imap.port};", "pop3 110;": f"pop3 {pop3.port};",
        "smtp 25;": f"smtp {smtp.port};", "listen 143;": f"listen 127.0.0.1:{p143};",
        "listen 993 ssl;": f"listen 127.0.0.1:{p993} ssl;",
        "listen 110;": f"listen 127.0.0.1:{p110};", "listen 587;": f"listen 127.0.0.1:{p587};"})
    conf = tmp_path / "mail-proxy.conf"
    conf.write_text(text)
    _check(conf)
    g = gateway(text, auth)
    c = MailClient(p143)
    assert c.read() == b"* OK IMAP4 ready\r\n"
    assert c.say(b"a CAPABILITY\r\n") == (b"* CAPABILITY IMAP4rev1 IDLE LITERAL+ SASL-IR "
                                          b"AUTH=PLAIN AUTH=LOGIN STARTTLS\r\na OK completed\r\n")
    assert c.say(b"b LOGIN alice wrong\r\n", quiet=1.5) == b"b NO Invalid login or password\r\n"
    assert c.say(b"c LOGIN alice letmein\r\n") == b"c OK [CAPABILITY IMAP4rev1] Logged in\r\n"
    c.close()
    c = MailClient(p993, _client_tls())
    c.read()
    assert c.say(b"d LOGIN bob letmein\r\n") == b"d OK [CAPABILITY IMAP4rev1] Logged in\r\n"
    c.close()
    c = MailClient(p110)
    c.read()
    c.say(b"USER carol\r\n")
    assert c.say(b"PASS letmein\r\n") == b"+OK logged in\r\n"
    c.close()
    c = MailClient(p587)
    assert c.read() == b"220 mail.example.com ESMTP ready\r\n"
    assert c.say(b"EHLO me\r\n").endswith(b"250 STARTTLS\r\n")
    assert c.say(b"AUTH PLAIN " + _b64(b"\0dave\0letmein") + b"\r\n") == (
        b"500 5.5.1 Invalid command\r\n")  # (starttls only)
    assert c.say(b"STARTTLS\r\n") == b"220 2.0.0 Start TLS\r\n"
    c.starttls(_client_tls())
    c.say(b"EHLO me\r\n")
    assert c.say(b"AUTH PLAIN " + _b64(b"\0dave\0letmein") + b"\r\n") == b"235 2.0.0 OK\r\n"
    c.close()
    time.sleep(0.2)
    got = imap.take() + pop3.take() + smtp.take()
    assert not any(b"wrong" in x for x in got)
    assert [x.split(b"\r\n")[0] for x in got] == [b"c LOGIN {5}", b"d LOGIN {3}",
                                                 b"USER carol", b"EHLO mail.example.com"]
    assert b"AUTH PLAIN " + _b64(b"\0dave\0letmein") in got[3]
    assert "Traceback" not in g.stderr


def _site(root: Path) -> None:
    for name, text in {"index.html": "<h1>home</h1>", "404.html": "<h1>not here</h1>",
                       "css/main.css": "body{}", "img/logo.gif": "GIF89a",
                       "img/icon.svg": "<svg/>", "data.json": "{}",
                       "site.webmanifest": "{}", "robots.txt": "User-agent: *",
                       ".env": "SECRET=1", "backup.sql": "drop", ".well-known/a.txt": "ok",
                       "fonts/a.woff2": "wOF2", "favicon.ico": "ico"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _answer(port: int, tls: bool, host: str, method: str, path: str) -> object:
    """What a client sees, without what differs by design: the time, the server's
    name in its own pages (and their length), the port in a redirect."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = (http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx) if tls
         else http.client.HTTPConnection("127.0.0.1", port, timeout=10))
    try:
        c.request(method, path, headers={"Host": host})
        r = c.getresponse()
        body = r.read().replace(b"nginx", b"fastgate")
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return "closed"
    finally:
        c.close()
    epoch = "Thu, 01 Jan 1970 00:00:01 GMT"
    headers = sorted(
        (k.lower(), v if k.lower() != "expires" or v == epoch else "(a date)")
        for k, v in r.getheaders()
        if k.lower() not in ("date", "server", "etag", "last-modified", "location")
        and not (k.lower() == "content-length" and r.status >= 300))
    location = re.sub(r":\d+/", ":PORT/", r.getheader("Location") or "")
    return r.status, headers, location, body


def test_static_site(serve, tmp_path: Path, free) -> None:  # type: ignore[no-untyped-def]
    """nginx and fastgate on the same files, the same configuration: every answer the
    same, but for what each calls itself."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    root = tmp_path / "public"
    _site(root)
    self_signed(tmp_path, "example.com", stem="example.com.")
    (tmp_path / "example.com.pem").write_bytes((tmp_path / "example.com.cert.pem").read_bytes())
    (tmp_path / "example.com.key").write_bytes((tmp_path / "example.com.key.pem").read_bytes())
    ports = {kind: (free(), free()) for kind in ("nginx", "fastgate")}
    places = {"/var/www/example.com/public": str(root)}
    nginx_port, nginx_tls = ports["nginx"]
    proc = _under_nginx("static-site.conf", tmp_path, {
        **places, "listen 8080": f"listen 127.0.0.1:{nginx_port}",
        "listen 8443": f"listen 127.0.0.1:{nginx_tls}"})
    try:
        for port in ports["nginx"]:
            wait_port(port, proc)
        port, tls = ports["fastgate"]
        serve("static-site.conf", {**places, "listen 8443": f"listen 127.0.0.1:{tls}"},
              port=port)
        wait_port(tls, proc)
        paths = ["/", "/index.html", "/css/main.css", "/css/main.1a2b3c.css",
                 "/css/other.1a2b3c.css", "/img/logo.gif", "/img/logo.99.gif",
                 "/img/icon.svg", "/data.json", "/site.webmanifest", "/robots.txt",
                 "/favicon.ico", "/fonts/a.woff2", "/.env", "/backup.sql", "/x.conf",
                 "/a~", "/.well-known/a.txt", "/.well-known/none", "/nope", "/css",
                 "/css/", "/index.html?v=2"]
        # (the port: 0 HTTP, 1 HTTPS; then whether the client speaks TLS)
        asked = [(secure, secure, "example.com", method, path) for secure in (0, 1)
                 for method in ("GET", "HEAD") for path in paths]
        # the redirecting server and the one that drops unknown hosts
        asked += [(0, 0, host, method, path) for host in ("www.example.com", "elsewhere.test")
                  for method in ("GET", "HEAD") for path in ("/", "/css/main.css", "/.env")]
        # plain HTTP to the HTTPS port: error_page 497's redirect
        asked += [(1, 0, "example.com", method, path) for method in ("GET", "POST", "HEAD")
                  for path in ("/", "/css/main.css?v=1", "/.env")]
        for at, secure, host, method, path in asked:
            ours = _answer(ports["fastgate"][at], bool(secure), host, method, path)
            theirs = _answer(ports["nginx"][at], bool(secure), host, method, path)
            assert ours == theirs, (at, secure, host, method, path)
        # what the maps chose, to be sure the comparison compared something
        status, headers, _, _ = _answer(port, False, "example.com", "GET", "/")
        assert ("x-frame-options", "DENY") in headers and ("cache-control", "no-cache") in headers
        _, headers, _, _ = _answer(port, False, "example.com", "GET", "/img/logo.gif")
        assert ("access-control-allow-origin", "*") in headers
        assert ("cache-control", "max-age=31536000") in headers
        assert _answer(tls, False, "example.com", "GET", "/a?b=1")[:1] == (302,)
        assert _answer(tls, False, "example.com", "GET", "/a?b=1")[2] \
            == "https://example.com:PORT/a?b=1"
    finally:
        stop_process(proc)


MIME_TYPES = """types {
    text/html html; text/css css; application/javascript js; image/svg+xml svg;
    image/png png; font/woff2 woff2; application/wasm wasm; text/plain txt;
}
"""
# what differs by design between two servers on two ports: the ports, nginx's version
_VARYING = ("REMOTE_PORT", "SERVER_PORT", "SERVER_SOFTWARE")


def _php_answer(port: int, method: str, path: str, headers: dict[str, str],
                body: bytes | None) -> object:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers={"Host": "cloud.example.com", **headers})
        r = c.getresponse()
        raw = r.read()
    finally:
        c.close()
    try:
        shown: object = {k: v for k, v in json.loads(raw).items() if k not in _VARYING}
    except ValueError:
        shown = raw.replace(b"nginx", b"fastgate")
    fields = sorted((k.lower(), v.replace(f":{port}/", ":PORT/")) for k, v in r.getheaders()
                    if k.lower() not in ("date", "server", "etag", "last-modified", "expires",
                                         "connection", "content-length"))
    return r.status, fields, shown


def test_php_cloud(beside, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A Nextcloud-shaped PHP application beside nginx: what PHP-FPM receives for each
    request (the CGI parameters, the body), and what the client gets, the same. A
    script that does not exist is a 404 that never reaches PHP."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    php = FastcgiBackend()
    root = tmp_path / "cloud"
    for name in ("index.php", "remote.php", "public.php", "ocs/v2.php", "core/img/logo.svg",
                 "core/css/app.css", "fonts/a.woff2", "robots.txt", "docs/index.html",
                 ".well-known/acme-challenge/token", "config/config.php", "data/u/f.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    params = (Path(__file__).resolve().parents[1] / "configs" / "fastcgi_params").read_text()
    home = tmp_path / "nginx"
    home.mkdir()
    for where in (tmp_path, home):
        (where / "mime.types").write_text(MIME_TYPES)
        (where / "fastcgi_params").write_text(params)
    places = {"/var/www/cloud": str(root), "127.0.0.1:9000": f"127.0.0.1:{php.port}"}
    try:
        sides = beside("php-cloud.conf", places)
        nginx_port, port = sides["nginx"], sides["fastgate"]
        asked = [("GET", path, {}, None) for path in (
            "/", "/index.php", "/index.php/apps/files/?dir=/", "/apps/files/", "/login",
            "/remote.php/dav/files/alice/a.txt", "/ocs/v2.php/cloud/capabilities?format=json",
            "/public.php?service=x", "/status.php", "/cron.php", "/uploads/a.jpg/evil.php",
            "/core/img/logo.svg", "/core/img/missing.svg", "/core/css/app.css",
            "/fonts/a.woff2", "/fonts/b.woff2", "/robots.txt", "/docs/", "/docs",
            "/.well-known/carddav", "/.well-known/caldav", "/.well-known/acme-challenge/token",
            "/.well-known/acme-challenge/none", "/.well-known/webfinger?resource=acct:a",
            "/config/config.php", "/data/u/f.txt", "/.htaccess", "/occ", "/remote",
            "/remote/dav", "/s/AbCdEf?x=1")]
        asked += [("GET", "/", {"User-Agent": "DavClnt"}, None),
                  ("GET", "/?a=1", {"User-Agent": "DavClnt"}, None),
                  ("PUT", "/remote.php/dav/files/alice/new.txt", {}, b"hello"),
                  ("PROPFIND", "/remote.php/dav/", {"Depth": "1"}, b"<propfind/>"),
                  ("HEAD", "/core/img/logo.svg", {}, None)]
        before = len(php.requests())
        for method, path, headers, body in asked:
            ours = _php_answer(port, method, path, headers, body)
            theirs = _php_answer(nginx_port, method, path, headers, body)
            assert ours == theirs, (method, path)
        # the front controller got the path as PATH_INFO, from the saved split
        _, _, shown = _php_answer(port, "GET", "/apps/files/", {}, None)
        assert isinstance(shown, dict) and shown["SCRIPT_NAME"] == "/index.php"
        assert shown["PATH_INFO"] == "/apps/files/" and shown["DOCUMENT_URI"] == "/index.php"
        # /status.php and /cron.php are not there: 404 before PHP, from both
        status, _, _ = _php_answer(port, "GET", "/status.php", {}, None)
        assert status == 404
        scripts = [r.param(b"SCRIPT_FILENAME") for r in php.requests()[before:]]
        assert not any(s and s.endswith((b"/status.php", b"/cron.php")) for s in scripts)
    finally:
        php.stop()


def _authorizer(req: Received) -> bytes:
    """Authelia's auth-request endpoint, in short: a good session names its user, a
    bad one is sent to the portal, with where it wanted to go."""
    cookie = b";".join(req.header(b"cookie"))
    if b"session=good" in cookie:
        return (b"HTTP/1.1 200 OK\r\nRemote-User: alice\r\nRemote-Groups: admins,dev\r\n"
                b"Remote-Email: alice@example.com\r\nContent-Length: 0\r\n\r\n")
    if b"session=forbidden" in cookie:
        return b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    if b"session=broken" in cookie:
        return b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"
    wanted = b"".join(req.header(b"x-original-url"))
    return (b"HTTP/1.1 401 Unauthorized\r\nLocation: https://auth.example.com/?rd=" + wanted
            + b"\r\nContent-Length: 0\r\n\r\n")


def _sso_answer(port: int, method: str, path: str, headers: dict[str, str],
                body: bytes | None) -> object:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers={"Host": "apps.example.com", **headers})
        r = c.getresponse()
        raw = r.read().replace(b"nginx/1.22.1", b"fastgate").replace(b"nginx", b"fastgate")
    finally:
        c.close()
    return r.status, sorted((k.lower(), v) for k, v in r.getheaders() if k.lower()
                            not in ("date", "server", "connection", "content-length")), raw


def _access_lines(log: Path, count: int) -> list[str]:
    """An access log's lines once it holds ``count`` (fastgate writes its log in
    batches: within 5 s), their times blanked."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
            not log.exists() or log.read_text().count("\n") < count):
        time.sleep(0.05)
    return [re.sub(r"\[\d\d/\w+/\d{4}:[^\]]+\]", "[T]", line)
            for line in log.read_text().splitlines()]


def _seen(requests: list[Received]) -> list[object]:
    """What a backend received, but for what differs by design (the Host of an
    upstream on another port; Connection: nginx speaks HTTP/1.0 upstream, with close)."""
    return [(r.method, r.target, sorted((n.lower(), v) for n, v in r.headers
                                        if n.lower() not in (b"host", b"connection")), r.body)
            for r in requests]


def test_forward_auth_sso(beside, backends, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Beside nginx: the authorizer's address from a server-level ``set`` reaches the
    auth subrequest (nginx's subrequests share the request's variables; fastgate's
    answered every request 500 with "invalid URL prefix"), the user it names reaches
    the app and a forged Remote-User does not, 401 is the portal's redirect, 403 and
    a broken authorizer as nginx's."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    made = {kind: (backends(answer=_authorizer), backends()) for kind in ("nginx", "fastgate")}
    ports = beside("forward-auth-sso.conf", {}, {
        kind: {"127.0.0.1:9091": f"127.0.0.1:{authz.port}",
               "127.0.0.1:8096": f"127.0.0.1:{app.port}"}
        for kind, (authz, app) in made.items()})
    nginx_port, port = ports["nginx"], ports["fastgate"]
    asked = [(method, path, cookie, body)
             for cookie in ({}, {"Cookie": "session=good"}, {"Cookie": "session=bad"},
                            {"Cookie": "session=forbidden"}, {"Cookie": "session=broken"},
                            {"Cookie": "session=good", "Remote-User": "mallory"})
             for method, path, body in (("GET", "/", None), ("GET", "/library?x=1", None),
                                        ("POST", "/api/items", b"name=x"))]
    asked += [("GET", "/internal/authz", {"Cookie": "session=good"}, None)]
    for method, path, headers, body in asked:
        ours = _sso_answer(port, method, path, headers, body)
        assert ours == _sso_answer(nginx_port, method, path, headers, body), \
            (method, path, headers)
    for i in (0, 1):  # the authorizer, then the app: the same requests, in order
        assert _seen(made["fastgate"][i].requests()) == _seen(made["nginx"][i].requests())
    status, headers, _ = _sso_answer(port, "GET", "/library?x=1", {}, None)
    assert status == 302 and ("location", "https://auth.example.com/?rd="
                              "http://apps.example.com/library?x=1") in headers
    app = made["fastgate"][1].requests()
    assert app and all(r.header(b"remote-user") == [b"alice"] for r in app)


def _site_answer(port: int, method: str, path: str, headers: dict[str, str]) -> object:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers={"Host": "example.com", "User-Agent": "curl/8.0",
                                         **headers})
        r = c.getresponse()
        body = r.read().replace(b"nginx/1.22.1", b"fastgate").replace(b"nginx", b"fastgate")
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return "closed"
    finally:
        c.close()
    body = re.sub(rb"\d{2}-\w{3}-\d{4} \d{2}:\d{2}", b"(a date)", body)  # (the listing's)
    return r.status, sorted(
        (k.lower(), re.sub(r":\d+/", ":PORT/", v)) for k, v in r.getheaders()
        if k.lower() not in ("date", "server", "connection", "etag", "last-modified",
                             "expires") and not (k.lower() == "content-length"
                                                 and r.status >= 300)), body


def test_clean_urls(beside, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Beside nginx, every answer the same: among them nginx's own surprise, "/" going
    to "/index" (its index redirect runs the server's rewrites again, which fastgate
    did not), and the referer, bot, host and method checks of the server level."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    root = tmp_path / "site"
    for name, text in {"index.html": "<h1>home</h1>", "about.html": "<h1>about</h1>",
                       "blog/index.html": "<h1>blog</h1>", "blog/post.html": "post",
                       "img/a.png": "PNG", "downloads/a.txt": "a", "downloads/sub/b.txt": "b",
                       ".htpasswd": "u:x"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    home = tmp_path / "nginx"
    home.mkdir()
    for where in (tmp_path, home):
        (where / "mime.types").write_text(MIME_TYPES)
    places = {"/var/www/site": str(root)}
    sides = beside("clean-urls.conf", places)
    nginx_port, port = sides["nginx"], sides["fastgate"]
    asked = [(method, path, headers) for method in ("GET", "HEAD", "POST", "DELETE")
             for path, headers in (
                 ("/", {}), ("/about", {}), ("/about.html", {}), ("/about/", {}),
                 ("/blog/", {}), ("/blog", {}), ("/blog/post", {}), ("/nope", {}),
                 ("/img/a.png", {}), ("/img/a.png", {"Referer": "http://evil.test/"}),
                 ("/img/a.png", {"Referer": "https://cdn.example.com/x"}),
                 ("/downloads/", {}), ("/downloads/sub/", {}), ("/.htpasswd", {}),
                 ("/health", {}), ("/old-blog/post?x=1", {}), ("/", {"Host": "evil.test"}),
                 ("/", {"User-Agent": "sqlmap/1.7"}), ("/", {"User-Agent": ""}),
                 ("/about?x=1", {}))]
    for method, path, headers in asked:
        ours = _site_answer(port, method, path, headers)
        assert ours == _site_answer(nginx_port, method, path, headers), (method, path, headers)
    status, fields, _ = _site_answer(port, "GET", "/", {})
    assert status == 301 and ("location", "http://example.com:PORT/index") in fields
    assert _site_answer(port, "GET", "/", {"Host": "evil.test"}) == "closed"


def _discourse_app(req: Received) -> bytes:
    """Discourse's application, in short: JSON with the headers nginx's log and hiding
    name, the uploads' and backups' files handed back to nginx (X-Accel-Redirect)."""
    target = req.target
    extra = b""
    if target.startswith(b"/admin/backups/"):
        extra = b"X-Accel-Redirect: /downloads/backups/b.tar.gz\r\n"
    elif target.startswith(b"/uploads/default/original/"):
        extra = (b"X-Accel-Redirect: /downloads/uploads/default/doc.pdf\r\n"
                 b"Content-Disposition: attachment; filename=doc.pdf\r\n")
    body = b'{"path": "' + target + b'"}' + (b" " * 1200 if b"big" in target else b"")
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: s=1; path=/\r\n"
            b"X-Discourse-Username: bob\r\nX-Runtime: 0.1\r\nX-Discourse-Route: t/show\r\n"
            + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def _discourse_answer(port: int, method: str, path: str, headers: dict[str, str]) -> object:
    return compared_answer(port, method, path, headers, "forum.example.com", ("expires",))


def test_discourse(beside, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Beside nginx, every answer and every request the application got the same:
    several types blocks at one level (fastgate refused the second), gzip and
    gzip_static (fastgate compressed nothing), X-Accel-Redirect into an alias made of a
    variable, files tried before the named location. (HEAD is not asked of the cached
    locations: nginx's cache turns it into a GET upstream, and fastgate caches
    nothing.)"""
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    public = tmp_path / "public"
    files = {"robots.txt": b"User-agent: *", "assets/app.js": b"var a=1;" * 300,
             "assets/small.css": b"a{}", "uploads/default/a.png": b"PNG",
             "uploads/stylesheet-cache/x.css": b"b{}" * 400, "javascripts/x.js": b"x()",
             "uploads/default/optimized/1X/b_100.png": b"PNG2", "plugins/p.js": b"p()",
             "images/emoji/e.png": b"E", "fonts/f.woff2": b"W", "backups/b.tar.gz": b"TAR",
             "uploads/default/doc.pdf": b"PDF", "data.csv": b"a,b", "m.wasm": b"W" * 2000}
    for name, data in files.items():
        (public / name).parent.mkdir(parents=True, exist_ok=True)
        (public / name).write_bytes(data)
    (public / "assets/app.js.gz").write_bytes(gzip.compress(b"precompressed", mtime=0))
    for path in public.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    home = tmp_path / "nginx"
    home.mkdir()
    (tmp_path / "mime.types").write_text(MIME_TYPES)
    (tmp_path / "cache").mkdir()
    apps, sides = {}, {}
    for kind in ("nginx", "fastgate"):
        sockets = tmp_path / f"{kind}-sockets"
        sockets.mkdir()
        apps[kind] = [RawBackend(answer=_discourse_app, unix=str(sockets / name))
                      for name in ("nginx.http.sock", "nginx.https.sock")]
        sides[kind] = {"/var/www/discourse/tmp/sockets/": f"{sockets}/"}
    try:
        ports = beside("discourse.conf", {"/var/www/discourse/public": str(public),
                                          "/var/nginx/cache": str(tmp_path / "cache")}, sides)
        cached = ("/letter_avatar/", "/user_avatar/", "/stylesheets/")
        asked = [(method, path, headers)
                 for path in ("/", "/t/topic/1?page=2", "/robots.txt", "/favicon.ico",
                              "/backups/b.tar.gz", "/assets/app.js", "/assets/small.css",
                              "/assets/missing.js", "/uploads/default/a.png",
                              "/uploads/default/missing.png", "/uploads/stylesheet-cache/x.css",
                              "/uploads/default/optimized/1X/b_100.png",
                              "/uploads/default/original/1X/doc.pdf", "/uploads/short-url/a",
                              "/secure-uploads/x", "/javascripts/x.js", "/plugins/p.js",
                              "/images/emoji/e.png", "/fonts/f.woff2", "/srv/status",
                              "/admin/backups/b.tar.gz", "/letter_avatar/bob/45/1.png",
                              "/user_avatar/x/big", "/stylesheets/s.css", "/message-bus/a/poll",
                              "/downloads/backups/b.tar.gz", "/data.csv", "/m.wasm", "/big")
                 for method in ("GET", "HEAD", "POST") if not (method == "HEAD" and
                                                            path.startswith(cached))
                 for headers in ({}, {"Accept-Encoding": "gzip", "X-Forwarded-Proto": "https"})]
        for method, path, headers in asked:
            ours = _discourse_answer(ports["fastgate"], method, path, headers)
            assert ours == _discourse_answer(ports["nginx"], method, path, headers), \
                (method, path, headers)

        def seen(kind: str) -> list[object]:
            return sorted(
                (r.method, r.target, sorted(
                    (n.lower(), re.sub(rb"t=[\d.]+", b"t=T", v)) for n, v in r.headers
                    if n.lower() != b"connection"), r.body)
                for be in apps[kind] for r in be.requests())

        assert seen("fastgate") == seen("nginx")
        status, fields, body = _discourse_answer(ports["fastgate"], "GET", "/assets/app.js",
                                                 {"Accept-Encoding": "gzip"})  # type: ignore[misc]
        assert ("content-encoding", "gzip") in fields and gzip.decompress(body) == b"precompressed"
    finally:
        for group in apps.values():
            for be in group:
                be.stop()


def _workhorse(req: Received) -> bytes:
    """GitLab's Workhorse, in short: JSON, an error where the path asks for one, a
    Last-Modified on some (nginx keeps it on a 200 only), a 204 with a type."""
    target = req.target
    status = next((line for key, line in ((b"/missing", b"404 Not Found"),
                                          (b"/boom", b"500 Internal Server Error"),
                                          (b"/unproc", b"422 Unprocessable Entity"),
                                          (b"/empty", b"204 No Content"))
                   if key in target), b"200 OK")
    body = b"" if status.startswith(b"204") else b'{"path": "' + target + b'"}'
    dated = b"Last-Modified: Thu, 01 Jan 2015 00:00:00 GMT\r\n" if b"dated" in target else b""
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n" + dated
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def test_gitlab(beside, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Beside nginx: every answer, every request Workhorse got, and every access-log
    line the same — tokens filtered out of URIs and referers by the maps' named
    captures, GitLab's pages for its errors from an internal location (without the
    file's Last-Modified: nginx sends it on 200, 206 and 304 only, which fastgate did
    not heed; an upstream's passes, a 204's Content-Type too)."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    public = tmp_path / "public"
    public.mkdir()
    for code in (404, 422, 500, 502, 503):
        (public / f"{code}.html").write_text(f"<h1>gitlab {code}</h1>")
    (tmp_path / "mime.types").write_text(MIME_TYPES)
    (tmp_path / "nginx").mkdir()
    apps, sides = {}, {}
    for kind in ("nginx", "fastgate"):
        sockets = tmp_path / f"{kind}-sockets"
        sockets.mkdir()
        apps[kind] = RawBackend(answer=_workhorse, unix=str(sockets / "workhorse"))
        sides[kind] = {"/home/git/gitlab/tmp/sockets/gitlab-workhorse.socket":
                       str(sockets / "workhorse"),
                       # (after /var/log/nginx/ is the test's directory: one log each)
                       "gitlab_access.log gitlab_access": f"{kind}.log gitlab_access"}
    try:
        ports = beside("gitlab.conf", {"/home/git/gitlab/public": str(public)}, sides)
        paths = ("/", "/api/v4/projects?private_token=SECRET&x=1",
                 "/foo?private_token=a&authenticity_token=b&feed_token=c", "/x?PRIVATE-TOKEN=z",
                 "/missing", "/boom", "/unproc", "/404.html", "/dated", "/missing/dated",
                 "/empty/dated", "/g/p.git/info/refs?service=git-upload-pack")
        asked = [(method, path, headers, body) for path in paths
                 for method, headers, body in (
                     ("GET", {}, None), ("HEAD", {}, None),
                     ("POST", {"Referer": "https://x.example/y?token=1"}, b"a=1"),
                     ("GET", {"Upgrade": "websocket", "X-Real-IP": "10.9.9.9"}, None))]
        for method, path, headers, body in asked:
            ours = _sso_answer(ports["fastgate"], method, path, headers, body)
            assert ours == _sso_answer(ports["nginx"], method, path, headers, body), \
                (method, path, headers)
        assert _seen(apps["fastgate"].requests()) == _seen(apps["nginx"].requests())
        # (fastgate's two workers write their lines in batches: in another order)
        logs = {kind: sorted(_access_lines(tmp_path / f"{kind}.log", len(asked)))
                for kind in ("nginx", "fastgate")}
        assert len(logs["fastgate"]) == len(asked) and logs["fastgate"] == logs["nginx"]
        assert any("private_token=[FILTERED]&authenticity_token=[FILTERED]&feed_token="
                   "[FILTERED]" in line for line in logs["fastgate"])
    finally:
        for be in apps.values():
            be.stop()


def _mastodon(req: Received) -> bytes:
    """Mastodon, in short: JSON large enough to compress, errors where the path asks,
    a redirect to itself, the streaming API's chunked event stream."""
    target = req.target
    if target.startswith(b"/api/v1/streaming"):
        return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    if target.startswith(b"/api/404"):
        return b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nnot here"
    if target.startswith(b"/api/500"):
        return b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"
    if target.startswith(b"/api/redir"):
        return b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:3000/x\r\nContent-Length: 0\r\n\r\n"
    body = json.dumps({"path": target.decode("latin-1"), "pad": "y" * 1500}).encode()
    return (b"HTTP/1.1 200 OK\r\nServer: Mastodon\r\nContent-Type: application/json; "
            b"charset=utf-8\r\nSet-Cookie: _session=abc; path=/\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def test_mastodon(beside, tmp_path: Path, free) -> None:  # type: ignore[no-untyped-def]
    """Beside nginx: Mastodon's configuration with Soapbox's front end — every answer
    (byte for byte where compressed: fastgate sent zlib's gzip header as a chunk of its
    own), every request the application got (in nginx's order: the location's headers,
    then the client's; fastgate put the client's first, and named the framing in
    lower case) and every access-log line (a chunked answer's $body_bytes_sent counts
    its chunk framing, as nginx's)."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    public, soapbox = tmp_path / "public", tmp_path / "soapbox"
    for d in (public / "assets", public / "system", soapbox / "packs"):
        d.mkdir(parents=True)
    (public / "assets" / "app.css").write_text("body { color: #333; }\n" * 20)
    (public / "system" / "a.png").write_bytes(b"\x89PNG" + b"\0" * 50)
    (public / "500.html").write_text("<h1>We're sorry, but something went wrong</h1>\n")
    (public / "sw.js").write_text("self.addEventListener('fetch', () => {});\n")
    (soapbox / "index.html").write_text("<html><body>soapbox</body></html>\n" * 10)
    (soapbox / "packs" / "p.js").write_text("console.log('pack');\n" * 30)
    (tmp_path / "mime.types").write_text(MIME_TYPES)
    apps, sides = {}, {}
    for kind in ("nginx", "fastgate"):
        apps[kind] = RawBackend(answer=_mastodon)
        sides[kind] = {"127.0.0.1:3000": f"127.0.0.1:{apps[kind].port}",
                       "127.0.0.1:4000": f"127.0.0.1:{apps[kind].port}",
                       "listen 8081": f"listen 127.0.0.1:{free()}",
                       "access.log;": f"{kind}-access.log;"}
    try:
        ports = beside("mastodon.conf", {"/home/mastodon/live/public": str(public),
                                         "/opt/soapbox/static": str(soapbox)}, sides)
        gz = {"Accept-Encoding": "gzip, deflate, br"}
        activity = {"Accept": "application/activity+json"}
        asked = [(method, path, headers) for path in (
            "/", "/about", "/sw.js", "/assets/app.css", "/assets/missing.css", "/system/a.png",
            "/system/missing", "/packs/p.js", "/packs/nope.js", "/api/v1/timelines",
            "/api/404", "/api/500", "/api/redir", "/oauth/authorize?x=1", "/users/alice",
            "/@alice", "/@alice/embed", "/inbox", "/.well-known/webfinger?resource=acct:a",
            "/api/v1/streaming/public", "/500.html", "/dev/null")
            for method, headers in (("GET", {}), ("GET", gz), ("HEAD", gz))]
        asked += [("GET", "/users/alice", activity), ("GET", "/@alice", {**activity, **gz}),
                  ("GET", "/users/alice", {"Accept": 'application/ld+json; profile="https://'
                                                    'www.w3.org/ns/activitystreams"'}),
                  ("POST", "/api/v1/statuses", {"Content-Length": "0"}),
                  ("DELETE", "/assets/app.css", {}),
                  ("GET", "/", {"User-Agent": "Mozilla/4.0 (compatible; MSIE 6.0; Windows "
                                              "NT 5.1)", **gz})]
        for method, path, headers in asked:
            raw = {kind: _raw_answer(ports[kind], method, path, headers) for kind in ports}
            assert raw["fastgate"] == raw["nginx"], (method, path, headers)
        assert len(apps["fastgate"].requests()) == len(apps["nginx"].requests()) > 20
        for ours, theirs in zip(apps["fastgate"].requests(), apps["nginx"].requests(),
                                strict=True):
            # (nginx's own differences: HTTP/1.0 upstream, with Connection: close)
            assert [h for h in ours.headers if h[0] != b"Connection"] == \
                [h for h in theirs.headers if h[0] != b"Connection"], ours.target
        logs = {kind: sorted(_access_lines(tmp_path / f"{kind}-access.log", len(asked)))
                for kind in ("nginx", "fastgate")}
        # (the one page of the server's own, DELETE's 405, names it: "nginx/1.22.1"
        # is 4 bytes longer than "fastgate"; every other size is the same, chunk
        # framing included: fastgate's $body_bytes_sent left it out)
        theirs = [re.sub(r'" 405 (\d+) ', lambda m: f'" 405 {int(m[1]) - 4} ', line)
                  for line in logs["nginx"]]
        assert len(logs["fastgate"]) == len(asked) and logs["fastgate"] == theirs
    finally:
        for be in apps.values():
            be.stop()


def _raw_answer(port: int, method: str, path: str, headers: dict[str, str]) -> object:
    """An answer's bytes, chunks and all, but for what each server names itself by."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n"
                  f"{head}\r\n".encode())
        while chunk := s.recv(65536):
            out += chunk
    top, _, body = out.partition(b"\r\n\r\n")
    lines = top.split(b"\r\n")
    body = body.replace(b"nginx/1.22.1", b"fastgate").replace(b"nginx", b"fastgate")
    fields = sorted(line.lower() for line in lines[1:] if not line.lower().startswith(
        (b"date:", b"server: nginx", b"server: fastgate", b"connection:"))
        and not (b"fastgate" in body and line.lower().startswith(b"content-length")))
    return lines[0], fields, body


def _jenkins(req: Received) -> bytes:
    """Jenkins, in short: its login redirect, else the path and how much body came."""
    if req.target.startswith(b"/login"):
        return (b"HTTP/1.1 302 Found\r\nLocation: http://jenkins.example.com/securityRealm/"
                b"commenceLogin?from=%2F\r\nContent-Length: 0\r\n\r\n")
    body = b"jenkins:" + req.target + b":" + str(len(req.body)).encode()
    return (b"HTTP/1.1 200 OK\r\nX-Jenkins: 2.4\r\nContent-Type: text/html;charset=utf-8\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def test_jenkins(beside, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Beside nginx: static resources through the hashed prefix, userContent from disk
    or (missing, a directory) from Jenkins through the if's rewrite, bodies streamed,
    the login redirect, header names only nginx reads passed on (fastgate's parsers
    refused them: a 400); every answer, every request Jenkins got, every log line."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    war, home = tmp_path / "war", tmp_path / "jenkins"
    war.mkdir()
    (home / "userContent" / "dir").mkdir(parents=True)
    (war / "app.css").write_text("body { margin: 0; }\n")
    (home / "userContent" / "readme.txt").write_text("shared with every job\n")
    (tmp_path / "mime.types").write_text(MIME_TYPES)
    apps, sides = {}, {}
    for kind in ("nginx", "fastgate"):
        apps[kind] = RawBackend(answer=_jenkins)
        sides[kind] = {"127.0.0.1:8081": f"127.0.0.1:{apps[kind].port}",
                       "jenkins.access.log": f"{kind}-access.log"}
    try:
        ports = beside("jenkins.conf", {"/var/run/jenkins/war/": f"{war}/",
                                        "/var/lib/jenkins/": f"{home}/"}, sides)
        asked: list[tuple[str, str, dict[str, str], bytes | None]] = [
            (method, path, {}, None) for path in (
                "/", "/job/x/", "/static/0123abcd/app.css", "/static/0123abcd/css/gone.css",
                "/static/zzz/app.css", "/userContent/readme.txt", "/userContent/gone.txt",
                "/userContent/dir", "/userContent/dir/", "/userContent", "/login",
                "/app.css", "/x%20y?a=b", "/userContentX")
            for method in ("GET", "HEAD")]
        asked += [("POST", "/job/x/build", {}, b"delay=0sec"),
                  ("POST", "/job/x/artifact", {}, b"a" * 300_000),
                  ("GET", "/", {"X_Agent": "1"}, None),
                  # names no parser takes as tokens, which nginx reads and (off) passes
                  ("GET", "/", {"X@Agent": "1", "{Build}": "2", "X-Ok": "3"}, None),
                  ("GET", "/", {"Host": "other.example.com:99"}, None)]
        for method, path, headers, body in asked:
            answers = {kind: _sso_answer(port, method, path, headers, body)
                       for kind, port in ports.items()}
            assert answers["fastgate"] == answers["nginx"], (method, path, headers)
        assert _seen(apps["fastgate"].requests()) == _seen(apps["nginx"].requests())
        assert len(apps["nginx"].requests()) > 15
        assert [v for r in apps["fastgate"].requests() for n, v in r.headers
                if n in (b"X@Agent", b"{Build}")] == [b"1", b"2"]
        logs = {kind: _access_lines(tmp_path / f"{kind}-access.log", len(asked))
                for kind in ("nginx", "fastgate")}
        assert len(logs["fastgate"]) == len(asked) and logs["fastgate"] == logs["nginx"]
    finally:
        for be in apps.values():
            be.stop()


def _npm_app(req: Received) -> bytes:
    """An application behind Nginx Proxy Manager: assets with the caching headers
    assets.conf hides, pages that say what they were asked."""
    body = b"asked " + req.target
    extra = (b"Cache-Control: private\r\nLast-Modified: Sun, 06 Dec 2026 00:00:00 GMT\r\n"
             b"Vary: Cookie\r\nSet-Cookie: s=1\r\n" if req.target.startswith(b"/static")
             else b"Content-Type: text/plain\r\n")
    return b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (extra, len(body), body)


def _status_line_of(port: int, raw: bytes) -> bytes:
    """The status line of what ``raw``, sent as it is, gets."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        got = b""
        while b"\r\n" not in got:
            more = s.recv(4096)
            if not more:
                break
            got += more
    return got.split(b"\r\n", 1)[0]


def test_npm_proxy_host(beside, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Nginx Proxy Manager's proxy host beside nginx: its server-level `set` of the
    variable a map defines (fastgate refused the configuration: "the duplicate
    forward_scheme variable"), the exploit filters' ifs, a forged X-Real-IP from an
    address not trusted, assets without the headers hidden, expires at a time of day;
    every answer, every request the application got, every access-log line (the $host of
    a request refused before any phase is the server's name, its unreadable target's
    $request_uri empty, as nginx's)."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    (tmp_path / "mime.types").write_text(MIME_TYPES)
    (tmp_path / "cache").mkdir()  # (nginx makes the cache's directory, not its parent)
    apps, sides = {}, {}
    for kind in ("nginx", "fastgate"):
        apps[kind] = RawBackend(answer=_npm_app)
        sides[kind] = {"set $port           3000;": f"set $port {apps[kind].port};",
                       "proxy-host-1_access.log proxy": f"{kind}-access.log proxy"}
    try:
        ports = beside("npm-proxy-host.conf", {
            "/var/lib/nginx/cache/": f"{tmp_path}/cache/",
            "/tmp/nginx/body": f"{tmp_path}/body"}, sides)
        host = {"Host": "app.example.com"}
        asked: list[tuple[str, str, dict[str, str], bytes | None]] = [
            (method, path, host, None) for method in ("GET", "HEAD") for path in (
                "/", "/hello?x=1", "/a?q=union%20select%20(1)", "/a?q=UNION+ALL+SELECT",
                "/a?page=http://evil", "/a?f=../../etc", "/a?f=/etc/passwd",
                "/a?x=%3Cscript%3E", "/a?GLOBALS%5B", "/a?mosConfig_absolute_path%3D",
                "/a?x=base64_decode(abc)", "/a?buy=viagra", "/a?buy=blue%20pill")]
        asked += [("GET", "/", {**host, "User-Agent": agent}, None)
                  for agent in ("libwww-perl/6", "Go!Zilla", "curl/8")]
        asked += [("GET", "/who", {**host, "X-Real-IP": "10.1.2.3"}, None),
                  ("POST", "/form", host, b"a=1"), ("GET", "/x", {"Host": "other.test"}, None)]
        for method, path, headers, body in asked:
            answers = {kind: _sso_answer(port, method, path, headers, body)
                       for kind, port in ports.items()}
            assert answers["fastgate"] == answers["nginx"], (method, path, headers)
        # assets: asked once each (nginx caches them), max-age counted to a time of day
        for path in ("/static/app.css", "/static/logo.PNG?v=2"):
            seen = {}
            for kind, port in ports.items():
                status, fields, raw = _sso_answer(port, "GET", path, host, None)  # type: ignore[misc]
                got = dict(fields)
                age = int(got.pop("cache-control").removeprefix("max-age="))
                seen[kind] = (status, sorted(got.items()), raw, age)
            assert seen["fastgate"][:3] == seen["nginx"][:3], path
            assert abs(seen["fastgate"][3] - seen["nginx"][3]) <= 2
            assert not {"last-modified", "vary"} & dict(seen["fastgate"][1]).keys()
            assert dict(seen["fastgate"][1])["x-served-by"] == "app.example.com"
        refused = (b"GET /x HTTP/1.1\r\n\r\n", b"GET /%2e%2e/x HTTP/1.1\r\nHost: a\r\n\r\n",
                   b"GET /a%00 HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
                   b"GET /x HTTP/1.1\r\nHost: bad/host\r\n\r\n")
        for raw in refused:
            assert _status_line_of(ports["fastgate"], raw) == _status_line_of(ports["nginx"], raw) \
                == b"HTTP/1.1 400 Bad Request"
        assert _seen(apps["fastgate"].requests()) == _seen(apps["nginx"].requests())
        who = [r for r in apps["fastgate"].requests() if r.target == b"/who"]
        assert who[0].header(b"X-Real-IP") == [b"127.0.0.1"]  # (10.1.2.3 is not trusted)
        # the pages' lengths differ by the name at their foot: compared where a backend
        # answered
        count = sum(1 for _ in asked) + len(refused)
        logs = {kind: [re.sub(r"\] (- - [45]\d\d .*)\[Length \d+\]", r"] \1[Length N]", line)
                       for line in _access_lines(tmp_path / f"{kind}-access.log", count)]
                for kind in ("nginx", "fastgate")}
        assert len(logs["fastgate"]) == count and sorted(logs["fastgate"]) == sorted(logs["nginx"])
        assert any('"/a?buy=viagra" [Client 127.0.0.1] [Length N] [Gzip -] [Sent-to 127.0.0.1]'
                   in line for line in logs["fastgate"])
        assert sum("400 - GET http app.example.com " in line for line in logs["fastgate"]) == 4
        assert sum('400 - GET http app.example.com "-"' in line
                   for line in logs["fastgate"]) == 2
    finally:
        for be in apps.values():
            be.stop()
