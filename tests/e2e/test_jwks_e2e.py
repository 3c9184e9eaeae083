"""Keys in the real world: a local JWKS provider process, rotation, provider outages, a
flood of unknown kids; issuer, audience, leeway and nested claims."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

HERE = Path(__file__).parent


def jwk(private: Any, kid: str) -> dict:
    d = json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    d.update(kid=kid, alg="ES256", use="sig")
    return d


class Provider:
    def __init__(self, tmp: Path, port: int, max_age: int | None = None) -> None:
        self.port = port
        self.file = tmp / "jwks.json"
        self.log = tmp / "fetches.log"
        self.log.touch()
        self.max_age = max_age
        self.proc: subprocess.Popen | None = None

    def publish(self, keys: dict[str, Any]) -> None:
        self.file.write_text(json.dumps({"keys": [jwk(k, kid) for kid, k in keys.items()]}))

    def start(self) -> None:
        args = [sys.executable, str(HERE / "jwks_server.py"), "--port", str(self.port),
                "--file", str(self.file), "--log", str(self.log)]
        if self.max_age is not None:
            args += ["--max-age", str(self.max_age)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)

    @property
    def fetches(self) -> int:
        return len(self.log.read_text().splitlines())


@pytest.fixture
def provider(tmp_path: Path, free) -> Iterator[Provider]:  # type: ignore[no-untyped-def]
    p = Provider(tmp_path, free())
    yield p
    p.stop()


KEYS = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("k1", "k2", "k3")}


def token(kid: str, claims: dict | None = None, key: Any = None) -> str:
    body = {"sub": "u1", "exp": int(time.time()) + 600, **(claims or {})}
    return pyjwt.encode(body, key or KEYS[kid], algorithm="ES256", headers={"kid": kid})


def status(port: int, tok: str, path: str = "/api/x") -> int:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Authorization": f"Bearer {tok}"})
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def eventually(fn: Any, expected: Any, timeout: float = 8.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn() == expected:
            return True
        time.sleep(0.1)
    return False


def remote_config(port: int, provider: Provider, interval: str = "") -> str:
    # try_files answers 200 itself after the access phase: no backend needed
    return f"""http {{ server {{ listen 127.0.0.1:{port};
      auth_jwt_key_request http://127.0.0.1:{provider.port}/.well-known/jwks.json;
      {interval}
      location /api/ {{ auth_jwt on; auth_jwt_alg ES256; try_files $uri =200; }}
      location = /status {{ fastgate_status; }}
    }} }}"""


def test_rotation(provider: Provider, gateway, free) -> None:  # type: ignore[no-untyped-def]
    provider.publish({"k1": KEYS["k1"]})
    provider.start()
    port = free()
    gateway(remote_config(port, provider, "auth_jwt_key_request_interval 1s;"), port)
    assert status(port, token("k1")) == 200
    assert status(port, token("k2")) == 401  # not published yet
    provider.publish({"k1": KEYS["k1"], "k2": KEYS["k2"]})
    assert eventually(lambda: status(port, token("k2")), 200)
    assert status(port, token("k1")) == 200  # the old kid works until removed
    provider.publish({"k2": KEYS["k2"]})
    assert eventually(lambda: status(port, token("k1")), 401)
    assert status(port, token("k2")) == 200


def test_early_refresh_on_unknown_kid(provider: Provider, gateway, free) -> None:  # type: ignore[no-untyped-def]
    provider.publish({"k1": KEYS["k1"]})
    provider.start()
    port = free()
    gateway(remote_config(port, provider), port)  # default interval: 5 minutes
    assert status(port, token("k1")) == 200
    provider.publish({"k1": KEYS["k1"], "k3": KEYS["k3"]})
    assert status(port, token("k3")) == 401  # unknown: triggers one early refresh
    assert eventually(lambda: status(port, token("k3")), 200, timeout=3)
    assert provider.fetches == 2


def test_provider_down_at_start(provider: Provider, gateway, free) -> None:  # type: ignore[no-untyped-def]
    provider.publish({"k1": KEYS["k1"]})
    port = free()
    gw = gateway(remote_config(port, provider), port)
    assert status(port, token("k1")) == 401  # not 500: the keys are just not there yet
    provider.start()
    assert eventually(lambda: status(port, token("k1")), 200, timeout=10)
    assert "fetching keys from" in gw.stderr and "failed" in gw.stderr
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/status")
    text = c.getresponse().read().decode()
    failed = int(re.search(r'fastgate_jwks_fetches_total\{result="failed"\} (\d+)', text).group(1))
    assert failed >= 1
    assert 'fastgate_jwks_fetches_total{result="ok"} 1' in text
    unavailable = re.search(r'fastgate_jwt_total\{outcome="keys_unavailable"\} (\d+)',
                            text)
    assert unavailable is not None and int(unavailable.group(1)) >= 1


def test_provider_down_later_keeps_keys(provider: Provider, gateway, free) -> None:  # type: ignore[no-untyped-def]
    provider.publish({"k1": KEYS["k1"]})
    provider.start()
    port = free()
    gw = gateway(remote_config(port, provider, "auth_jwt_key_request_interval 1s;"), port)
    assert status(port, token("k1")) == 200
    provider.stop()
    time.sleep(2.5)  # two refreshes fail
    assert status(port, token("k1")) == 200
    assert "the keys fetched before stay" in gw.stderr


def test_flood_of_random_kids(provider: Provider, gateway, free) -> None:  # type: ignore[no-untyped-def]
    provider.publish({"k1": KEYS["k1"]})
    provider.start()
    port = free()
    gateway(remote_config(port, provider), port)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(1000):
        t = token(uuid.uuid4().hex, key=KEYS["k1"])  # a random kid no key has
        c.request("GET", "/api/x", headers={"Authorization": f"Bearer {t}"})
        r = c.getresponse()
        r.read()
        assert r.status == 401
    c.close()
    time.sleep(0.5)
    assert provider.fetches <= 2  # the first fetch and at most one early refresh


def test_issuer_audience_leeway_nested_claims(backends, gateway, free) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    port = free()
    secret = "claims-secret-0123456789abcdef-0123456789"
    gateway(f"""http {{
      auth_jwt_claim_set $roles realm_access roles;
      auth_jwt_claim_set $tenant org tenant;
      map $roles $is_admin {{ ~"admin" 1; default 0; }}
      server {{ listen 127.0.0.1:{port};
        auth_jwt_key "{secret}";
        location /iss/ {{ auth_jwt on; auth_jwt_issuer https://id.example.com https://id2.example.com;
                         proxy_pass http://127.0.0.1:{be.port}; }}
        location /aud/ {{ auth_jwt on; auth_jwt_audience api other; proxy_pass http://127.0.0.1:{be.port}; }}
        location /leeway/ {{ auth_jwt on; auth_jwt_leeway 30s; proxy_pass http://127.0.0.1:{be.port}; }}
        location /admin/ {{ auth_jwt on; auth_jwt_require $is_admin error=403;
                           proxy_set_header X-Roles $roles; proxy_set_header X-Tenant $tenant;
                           proxy_pass http://127.0.0.1:{be.port}; }}
      }} }}""", port)

    def hs(claims: dict) -> str:
        return pyjwt.encode({"sub": "u", **claims}, secret, algorithm="HS256")

    assert status(port, hs({"iss": "https://id.example.com"}), "/iss/x") == 200
    assert status(port, hs({"iss": "https://id2.example.com"}), "/iss/x") == 200
    assert status(port, hs({"iss": "https://evil.example.com"}), "/iss/x") == 401
    assert status(port, hs({}), "/iss/x") == 401
    assert status(port, hs({"aud": "api"}), "/aud/x") == 200
    assert status(port, hs({"aud": ["x", "other"]}), "/aud/x") == 200
    assert status(port, hs({"aud": ["x", "y"]}), "/aud/x") == 401
    assert status(port, hs({"aud": 5}), "/aud/x") == 401
    assert status(port, hs({}), "/aud/x") == 401
    now = int(time.time())
    assert status(port, hs({"exp": now - 10}), "/leeway/x") == 200
    assert status(port, hs({"exp": now - 100}), "/leeway/x") == 401
    assert status(port, hs({"nbf": now + 10}), "/leeway/x") == 200
    admin = hs({"realm_access": {"roles": ["user", "admin"]}, "org": {"tenant": "acme"}})
    assert status(port, admin, "/admin/x") == 200
    assert status(port, hs({"realm_access": {"roles": ["user"]}}), "/admin/x") == 403
    assert status(port, hs({"realm_access": "admin-string-not-object"}), "/admin/x") == 403
    sent = {k.lower(): v for k, v in be.requests()[-1]["headers"]}
    assert sent["x-roles"] == '["user","admin"]' and sent["x-tenant"] == '"acme"'
    assert len(be.requests()) == 7  # the seven 200s above, nothing refused


def plus_local_config(port: int, provider: Provider, cache: str = "") -> str:
    """NGINX Plus's documented pattern: the keys come from a local URI, an internal
    location that proxies to the identity provider."""
    return f"""http {{ server {{ listen 127.0.0.1:{port};
      location /api/ {{ auth_jwt "api"; auth_jwt_key_request /_jwks_uri; {cache}
                       auth_jwt_alg ES256; try_files $uri =200; }}
      location = /_jwks_uri {{ internal;
        proxy_pass http://127.0.0.1:{provider.port}/idp/keys;
        proxy_set_header X-Asked-By fastgate; }}
    }} }}"""


def test_key_request_through_an_internal_location(provider: Provider, gateway, free) -> None:  # type: ignore[no-untyped-def]
    provider.publish({"k1": KEYS["k1"]})
    provider.start()
    port = free()
    gateway(plus_local_config(port, provider, "auth_jwt_key_cache 1s;"), port)
    assert status(port, token("k1")) == 200
    assert provider.log.read_text().splitlines()[0] == "/idp/keys"  # the location's URI
    # rotation, on auth_jwt_key_cache's interval
    provider.publish({"k2": KEYS["k2"]})
    assert eventually(lambda: status(port, token("k2")), 200)
    assert eventually(lambda: status(port, token("k1")), 401)
    # the internal location itself is not reachable from outside
    assert status(port, token("k2"), "/_jwks_uri") == 404


def test_key_request_to_a_local_uri_that_fails(provider: Provider, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()  # the provider never starts: its location answers 502
    g = gateway(plus_local_config(port, provider), port)
    assert status(port, token("k1")) == 401
    assert eventually(lambda: 'JWT: fetching keys from "/_jwks_uri" failed: status 502' in
                      g.stderr, True)
