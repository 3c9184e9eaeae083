"""A protected location named with bytes past ASCII (``location /café/``): however the
client spells its percent-encoding, or sends the bytes raw (as nginx takes them), the
request finds it (and its token check), and the upstream gets those bytes escaped once,
not re-encoded; nothing of a request refused reaches an upstream. On both engines and
both exchange paths."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from scenario import ENGINES, PATHS, Scenario

SECRET = "utf8-locations-secret-0123456789abcdef"
HTTP = f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080;
  location / {{ proxy_pass http://be; }}
  location /caf\u00e9/ {{ auth_jwt on; auth_jwt_key "{SECRET}";
                     proxy_set_header X-Sub $jwt_claim_sub; proxy_pass http://be/v1/; }}
}}
"""
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _request(target: bytes, token: bool) -> bytes:
    auth = b""
    if token:
        auth = b"Authorization: Bearer " + pyjwt.encode(
            {"sub": "u1", "exp": int(time.time()) + 600}, SECRET,
            algorithm="HS256").encode() + b"\r\n"
    return b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nX-Sub: forged\r\n" + auth + b"\r\n"


@pytest.mark.parametrize("target", [b"/caf%C3%A9/x", b"/caf%c3%a9/x", b"/a/../caf%C3%A9/x",
                                    b"/caf%C3%A9/./x"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("engine", ENGINES)
def test_the_protected_location_is_found_however_the_bytes_come(
        tmp_path: Path, engine: str, path: str, target: bytes) -> None:
    async def main() -> tuple[bytes, bytes, bytes, bytes]:
        sc = Scenario(tmp_path, engine, HTTP, path)
        try:
            refused, upstream_refused = await sc.exchange(_request(target, False), OK)
            sc.client_out.out.clear()
            passed, upstream_passed = await sc.exchange(_request(target, True), OK)
            return refused, upstream_refused, passed, upstream_passed
        finally:
            sc.close()

    refused, upstream_refused, passed, upstream_passed = asyncio.run(main())
    assert refused.startswith(b"HTTP/1.1 401 ")
    assert upstream_refused == b""  # nothing of the request reached the upstream
    assert passed.startswith(b"HTTP/1.1 200 ")
    assert upstream_passed.startswith(b"GET /v1/x HTTP/1.1\r\n")
    assert b'X-Sub: "u1"\r\n' in upstream_passed and b"forged" not in upstream_passed


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("engine", ENGINES)
def test_raw_bytes_past_ascii_find_the_protected_location(tmp_path: Path, engine: str,
                                                         path: str) -> None:
    async def main() -> tuple[bytes, bytes, bytes, bytes]:
        sc = Scenario(tmp_path, engine, HTTP, path)
        try:
            refused, upstream_refused = await sc.exchange(
                _request(b"/caf\xc3\xa9/x", False), OK)
            sc.client_out.out.clear()
            passed, upstream_passed = await sc.exchange(_request(b"/caf\xc3\xa9/x", True), OK)
            return refused, upstream_refused, passed, upstream_passed
        finally:
            sc.close()

    refused, upstream_refused, passed, upstream_passed = asyncio.run(main())
    assert refused.startswith(b"HTTP/1.1 401 ") and upstream_refused == b""
    assert passed.startswith(b"HTTP/1.1 200 ")
    assert upstream_passed.startswith(b"GET /v1/x HTTP/1.1\r\n")
    assert b'X-Sub: "u1"\r\n' in upstream_passed and b"forged" not in upstream_passed


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("engine", ENGINES)
def test_the_upstream_gets_the_bytes_that_came(tmp_path: Path, engine: str,
                                               path: str) -> None:
    http = HTTP.replace("location / { proxy_pass http://be; }",
                        "location /u/ { proxy_pass http://be/w/; }")

    async def main() -> tuple[bytes, bytes]:
        sc = Scenario(tmp_path, engine, http, path)
        try:
            _, upper = await sc.exchange(b"GET /u/%C3%A9t%C3%A9 HTTP/1.1\r\nHost: a\r\n\r\n",
                                         OK)
            _, lower = await sc.exchange(b"GET /u/%c3%a9t%c3%a9 HTTP/1.1\r\nHost: a\r\n\r\n",
                                         OK)
            return upper, lower
        finally:
            sc.close()

    upper, lower = asyncio.run(main())
    # the URI part replaced: the normalised path goes, escaped once (nginx's)
    assert upper.startswith(b"GET /w/%C3%A9t%C3%A9 HTTP/1.1\r\n")
    assert lower.startswith(b"GET /w/%C3%A9t%C3%A9 HTTP/1.1\r\n")
