"""Every seed configuration of SPEC.md section 4, run by the real fastgate process in front
of real backend processes, changed only in addresses, ports and key paths. A bad or
missing token never reaches a backend: each test checks the backend's own request log."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from e2e_util import seed

SECRET = "your-256-bit-secret-key-here"


def tok(claims: dict[str, Any] | None = None, secret: str = SECRET, alg: str = "HS256",
        exp: int = 3600) -> str:
    body = {"sub": "user123", "exp": int(time.time()) + exp, **(claims or {})}
    return pyjwt.encode(body, secret, algorithm=alg)


def get(port: int, path: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_basic(tmp_path: Path, backends, gateway, free) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    port = free()
    gateway(seed("basic.conf", port, {"http://backend": f"http://127.0.0.1:{be.port}"}), port)
    status, headers, body = get(port, "/api/items")
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="fastgate"'
    status, headers, _ = get(port, "/api/items", bearer(tok(secret="wrong-secret-wrong-secret")))
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="fastgate", error="invalid_token"'
    assert get(port, "/api/items", bearer(tok(exp=-10)))[0] == 401
    assert get(port, "/api/items", {"Authorization": "Basic dXNlcjpwYXNz"})[0] == 401
    assert get(port, "/api/items", {"Authorization": "Bearer"})[0] == 401
    assert be.requests() == []  # nothing without a good token got through
    good = tok()
    status, _, body = get(port, "/api/items", bearer(good))
    assert status == 200 and json.loads(body)["target"] == "/api/items"
    assert get(port, "/api/items", {"Authorization": f"bEaReR    {good}"})[0] == 200
    status, _, body = get(port, "/health")
    assert (status, body) == (200, b"OK\n")
    assert get(port, "/public/page")[0] == 200
    assert get(port, "/elsewhere")[0] == 404
    # CORS preflight passes without a token, as in the module
    assert get(port, "/api/items", method="OPTIONS")[0] == 200
    targets = [r["target"] for r in be.requests()]
    assert targets == ["/api/items", "/api/items", "/public/page", "/api/items"]
    for r in be.requests()[:2]:  # the token is passed on: nothing said to remove it
        assert "authorization" in {k.lower() for k, _ in r["headers"]}


def test_gateway_claim_forwarding(tmp_path: Path, backends, gateway, free) -> None:  # type: ignore[no-untyped-def]
    users, orders = backends("users"), backends("orders")
    port = free()
    conf = seed("gateway.conf", port, {"127.0.0.1:8001": f"127.0.0.1:{users.port}",
                                       "127.0.0.1:8002": f"127.0.0.1:{orders.port}"})
    gateway(conf, port)
    token = tok({"role": "admin"})
    assert get(port, "/users/42")[0] == 401
    status, _, _ = get(port, "/users/42?fields=a%20b", bearer(token))
    assert status == 200
    status, _, _ = get(port, "/orders/7", bearer(token))
    assert status == 200
    (u,) = users.requests()
    (o,) = orders.requests()
    assert u["target"] == "/42?fields=a%20b"  # the /users/ prefix replaced by "/"
    assert o["target"] == "/7"
    h = {k.lower(): v for k, v in u["headers"]}
    assert h["x-user-id"] == '"user123"'  # JSON-encoded, as the module does
    assert h["x-user-role"] == '"admin"'
    assert "authorization" not in h  # proxy_set_header Authorization "" removes it
    assert h["host"] == "user_service"


@pytest.mark.parametrize(
    "path,role,expected",
    [("/edit/a", "editor", 200), ("/edit/a", "admin", 200), ("/edit/a", "viewer", 403),
     ("/admin/a", "admin", 200), ("/admin/a", "superuser", 200), ("/admin/a", "editor", 403),
     ("/admin/a", None, 403), ("/content/a", None, 200)],
)
def test_rbac(tmp_path: Path, backends, gateway, free, path: str, role: str | None,  # type: ignore[no-untyped-def]
              expected: int) -> None:
    be = backends()
    port = free()
    gateway(seed("rbac.conf", port, {"http://cms_backend": f"http://127.0.0.1:{be.port}"}), port)
    headers = bearer(tok({"role": role} if role else {})) if role or path != "/content/a" else {}
    if role is None and path == "/admin/a":
        headers = bearer(tok({}))
    status, _, _ = get(port, path, headers)
    assert status == expected
    assert len(be.requests()) == (1 if expected == 200 else 0)


def test_rbac_without_token_is_401(tmp_path: Path, backends, gateway, free) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    port = free()
    gateway(seed("rbac.conf", port, {"http://cms_backend": f"http://127.0.0.1:{be.port}"}), port)
    assert get(port, "/admin/x")[0] == 401
    assert be.requests() == []


def test_cookie_rs256_and_login_redirect(tmp_path: Path, backends, gateway, free,  # type: ignore[no-untyped-def]
                                         keypairs: dict) -> None:
    be = backends()
    port = free()
    key = tmp_path / "public.pem"
    key.write_bytes(keypairs["RSA"].public_pem)
    conf = seed("cookie.conf", port, {"http://app_backend": f"http://127.0.0.1:{be.port}",
                                      "/etc/fastgate/jwt-keys/public.pem": str(key)})
    gateway(conf, port)
    good = tok(alg="RS256", secret=keypairs["RSA"].private)
    host = {"Host": "app.example.com"}
    assert get(port, "/dashboard/", host)[0] == 401
    assert get(port, "/dashboard/", {**host, "Cookie": f"other=1; session_token={good}"})[0] == 200
    # an HS256 token signed with the public key as secret: algorithm confusion refused
    confused = pyjwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256")
    assert get(port, "/dashboard/", {**host, "Cookie": f"session_token={confused}"})[0] == 401
    status, headers, _ = get(port, "/app/page?x=1", host)
    assert status == 302
    assert headers["location"] == "http://app.example.com/login?redirect=/app/page?x=1"
    assert get(port, "/app/page", {**host, "Cookie": f"auth_token={good}"})[0] == 200
    assert get(port, "/login", host)[0] == 200
    assert [r["target"] for r in be.requests()] == ["/dashboard/", "/app/page", "/login"]


def test_key_encodings(tmp_path: Path, backends, gateway, free, keypairs: dict) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    port = free()
    key = tmp_path / "public.pem"
    key.write_bytes(keypairs["P-256"].public_pem)
    conf = seed("keys.conf", port, {"http://backend": f"http://127.0.0.1:{be.port}",
                                    "/etc/fastgate/jwt-keys/public.pem": str(key)})
    gateway(conf, port)
    hex_secret = bytes.fromhex("0123456789abcdef0123456789abcdef")
    assert get(port, "/hex/", bearer(tok(secret=hex_secret)))[0] == 200
    assert get(port, "/hex/", bearer(tok(secret="0123456789abcdef0123456789abcdef")))[0] == 401
    assert get(port, "/b64/", bearer(tok(secret=b"your-secret-key")))[0] == 200
    assert get(port, "/pem/", bearer(tok(alg="ES256", secret=keypairs["P-256"].private)))[0] == 200
    assert get(port, "/pem/", bearer(tok(secret=b"your-secret-key")))[0] == 401
    assert len(be.requests()) == 3
