"""NGINX Plus's auth_jwt form in process, on both engines and both exchange paths: the
realm's challenge, token= sources, Plus's encoding in what the upstream gets — and
nothing of a refused request reaching the upstream."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from scenario import ENGINES, PATHS, Scenario

SECRET = "plus-inprocess-secret-0123456789abcdef01"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
HTTP = f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
map $jwt_claim_role $is_admin {{ default 0; admin 1; }}
server {{ listen 127.0.0.1:8080; auth_jwt_key "{SECRET}";
  location /plus/ {{ auth_jwt "api $host"; proxy_set_header X-Sub $jwt_claim_sub;
                    proxy_set_header X-Groups $jwt_claim_groups;
                    proxy_set_header X-Admin $is_admin; proxy_pass http://be; }}
  location /cookie/ {{ auth_jwt "api" token=$cookie_jwt; proxy_pass http://be; }}
  location /admins/ {{ auth_jwt "api"; auth_jwt_require $is_admin error=403;
                      proxy_pass http://be; }}
  location /seed/ {{ auth_jwt on; proxy_set_header X-Sub $jwt_claim_sub; proxy_pass http://be; }}
}}"""


def _token(**claims: object) -> str:
    return pyjwt.encode({"sub": "alice", "exp": int(time.time()) + 600, **claims}, SECRET,
                        algorithm="HS256")


@pytest.fixture(params=[(e, p) for e in ENGINES for p in PATHS],
                ids=[f"{e}-{p}" for e in ENGINES for p in PATHS])
def run(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine, path = request.param

    def go(target: str, *headers: str) -> tuple[bytes, bytes]:
        head = f"GET {target} HTTP/1.1\r\nHost: gw.test\r\n" + "".join(
            h + "\r\n" for h in headers) + "\r\n"

        async def main() -> tuple[bytes, bytes]:
            sc = Scenario(tmp_path, engine, HTTP, path)
            try:
                return await sc.exchange(head.encode(), OK)
            finally:
                sc.close()

        return asyncio.run(main())

    return go


def test_the_realm_and_plus_encoding(run) -> None:  # type: ignore[no-untyped-def]
    client, upstream = run("/plus/a")
    assert client.startswith(b"HTTP/1.1 401") and upstream == b""
    assert b'WWW-Authenticate: Bearer realm="api gw.test"\r\n' in client
    client, upstream = run("/plus/b", "Authorization: Bearer " + _token()[:-3] + "abc")
    assert client.startswith(b"HTTP/1.1 401") and upstream == b""
    assert b'realm="api gw.test", error="invalid_token"' in client
    token = _token(groups=["dev", "ops"], role="admin")
    client, upstream = run("/plus/c", f"Authorization: Bearer {token}")
    assert client.startswith(b"HTTP/1.1 200")
    assert b"X-Sub: alice\r\n" in upstream and b"X-Groups: dev,ops\r\n" in upstream
    assert b"X-Admin: 1\r\n" in upstream  # the map's bare key matches the raw claim
    client, upstream = run("/seed/d", f"Authorization: Bearer {token}")
    assert b'X-Sub: "alice"\r\n' in upstream  # the seed form keeps JSON text


def test_token_sources_and_requirements(run) -> None:  # type: ignore[no-untyped-def]
    token = _token(role="admin")
    assert run("/cookie/a", f"Cookie: jwt={token}")[0].startswith(b"HTTP/1.1 200")
    client, upstream = run("/cookie/b", f"Authorization: Bearer {token}")
    assert client.startswith(b"HTTP/1.1 401") and upstream == b""
    client, upstream = run("/cookie/c", f"Cookie: jwt={token}; jwt={_token()}")
    assert client.startswith(b"HTTP/1.1 401") and upstream == b""  # given twice
    assert run("/admins/d", f"Authorization: Bearer {token}")[0].startswith(b"HTTP/1.1 200")
    client, upstream = run("/admins/e", f"Authorization: Bearer {_token(role='dev')}")
    assert client.startswith(b"HTTP/1.1 403") and upstream == b""
