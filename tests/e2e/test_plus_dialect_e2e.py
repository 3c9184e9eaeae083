"""NGINX Plus's auth_jwt dialect end to end, with the examples of nginx.org's reference
page and the NGINX admin guide's JWT chapter (tests/configs/plus/) as written there:
the realm in the challenge, token= from a cookie or an argument, a JWKS file by kid,
auth_jwt_require over a map of a raw claim, auth_jwt_claim_set for a nested claim, and
error=403; beside them a server in the seed module's form gives the same verdicts."""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt as pyjwt
import pytest
from e2e_util import fastgate
from raw_backend import RawBackend

PLUS = Path(__file__).resolve().parents[1] / "configs" / "plus"
SECRET = b"plus-dialect-secret-0123456789abcdef"


def _jwks(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    k = base64.urlsafe_b64encode(SECRET).rstrip(b"=").decode()
    path.write_text(json.dumps({"keys": [{"kty": "oct", "kid": "0001", "k": k,
                                          "alg": "HS256"}]}))


def _token(**claims: object) -> str:
    payload = {"sub": "alice", "exp": int(time.time()) + 600, **claims}
    return pyjwt.encode(payload, SECRET, algorithm="HS256", headers={"kid": "0001"})


def _get(port: int, path: str, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str]]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


@pytest.fixture
def backend() -> Iterator[RawBackend]:
    be = RawBackend()
    yield be
    be.stop()


def _start(name: str, tmp: Path, gateway, free, be: RawBackend, **ports: int) -> int:  # type: ignore[no-untyped-def]
    port = free()
    text = (PLUS / name).read_text().replace("GATEWAY_PORT", str(port))
    text = text.replace("BACKEND_PORT", str(be.port))
    for key, value in ports.items():
        text = text.replace(key, str(value))
    _jwks(tmp / "conf" / "keys.json")
    _jwks(tmp / "conf" / "api_secret.jwk")
    conf = tmp / name
    conf.write_text(text)
    check = fastgate("-t", "-c", str(conf))  # as written, it passes -t
    assert check.returncode == 0 and "Traceback" not in check.stderr, check.stderr
    gateway(text, port)  # the fixture writes it again beside its own logs
    return port


def test_the_reference_page_examples(tmp_path: Path, gateway, free, backend: RawBackend) -> None:  # type: ignore[no-untyped-def]
    _jwks(tmp_path / "idp.json")
    jwks = (tmp_path / "idp.json").read_bytes()
    idp = RawBackend(answer=lambda req: b"HTTP/1.1 200 OK\r\nContent-Type: application/json"
                     b"\r\nContent-Length: %d\r\n\r\n%s" % (len(jwks), jwks))
    try:
        port = _start("reference-page.conf", tmp_path, gateway, free, backend,
                      IDP_PORT=idp.port)
        _reference_page(port, backend)
        assert [r.target for r in idp.requests()][:1] == [b"/keys"]
    finally:
        idp.stop()


def _reference_page(port: int, backend: RawBackend) -> None:
    status, headers = _get(port, "/")
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="closed site"'
    status, headers = _get(port, "/", {"Authorization": "Bearer " + _token() + "x"})
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="closed site", error="invalid_token"'
    good = _token(iss="good", json={"email": "alice@example.com"})
    assert _get(port, "/a", {"Authorization": f"Bearer {good}"})[0] == 200
    seen = backend.requests()[-1]
    # NGINX Plus's encoding: strings as they are, no JSON quotes
    assert seen.header(b"x-sub") == [b"alice"]
    assert seen.header(b"x-email") == [b"alice@example.com"]
    assert seen.header(b"x-kid") == [b"0001"]
    assert _get(port, "/cookie/b", {"Cookie": f"auth_token={good}"})[0] == 200
    assert _get(port, "/cookie/b", {"Authorization": f"Bearer {good}"})[0] == 401
    assert _get(port, "/issuer/c", {"Authorization": f"Bearer {good}"})[0] == 200
    bad_iss = _token(iss="bad")
    assert _get(port, "/issuer/d", {"Authorization": f"Bearer {bad_iss}"})[0] == 401
    assert _get(port, "/forbidden/e", {"Authorization": f"Bearer {bad_iss}"})[0] == 403
    assert _get(port, "/forbidden/f", {"Authorization": f"Bearer {good}"})[0] == 200
    targets = [r.target for r in backend.requests()]
    assert b"/issuer/d" not in targets and b"/forbidden/e" not in targets
    # the keys the internal location fetched from the identity provider
    assert _get(port, "/private/g", {"Authorization": f"Bearer {good}"})[0] == 200
    assert _get(port, "/private/h", {"Authorization": f"Bearer {bad_iss}x"})[0] == 401


def test_the_admin_guide_examples_beside_the_seed_form(tmp_path: Path, gateway, free,  # type: ignore[no-untyped-def]
                                                       backend: RawBackend) -> None:
    seed = free()
    port = _start("admin-guide.conf", tmp_path, gateway, free, backend, SEED_PORT=seed)
    token = _token()
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for where in (port, seed):  # the same verdicts under both dialects
        assert _get(where, "/products/1", {"Authorization": f"Bearer {token}"})[0] == 200
        assert _get(where, "/products/2", {"Authorization": f"Bearer {forged}"})[0] == 401
        assert _get(where, "/products/3")[0] == 401
    assert _get(port, "/products/1")[1]["www-authenticate"] == 'Bearer realm="API"'
    assert _get(port, f"/query/4?apijwt={token}")[0] == 200
    assert _get(port, "/query/5?apijwt=nonsense")[0] == 401
    # the seed form keeps JSON text in $jwt_claim_*
    assert [r.header(b"x-sub") for r in backend.requests()
            if r.header(b"x-sub")] == [[b'"alice"']]
    assert not any(r.target in (b"/products/2", b"/products/3", b"/query/5")
                   for r in backend.requests())
