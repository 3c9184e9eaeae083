"""limit_except: the block's access directives apply to every method it does not name
(GET names HEAD too), on both engines and both exchange paths — and the location's
rewrite directives do not run for those methods (nginx's block does not inherit them),
so neither an ``if`` nor a ``rewrite ... last`` takes the block's rules away."""

from __future__ import annotations

import asyncio
from pathlib import Path

import jwt as pyjwt
import pytest
from helpers import server_config_error
from scenario import ENGINES, PATHS, Scenario

SECRET = "limit-except-secret-0123456789abcdef-01"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
HTTP = f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
  location /api/ {{ limit_except GET {{ deny all; }} proxy_pass http://be; }}
  location /w/ {{ limit_except GET OPTIONS {{ auth_jwt on; }} proxy_pass http://be; }}
  location /if/ {{ limit_except GET {{ deny all; }}
    if ($http_x_flag) {{ add_header X-Flag on; }} proxy_pass http://be; }}
  location /lan/ {{ limit_except GET {{ allow 127.0.0.1; deny all; }} proxy_pass http://be; }}
  location /jw/ {{ limit_except GET {{ auth_jwt on; }} rewrite ^/jw/(.*)$ /open/$1 last; }}
  location /dn/ {{ limit_except GET {{ deny all; }} rewrite ^/dn/(.*)$ /open/$1 last; }}
  location /open/ {{ proxy_pass http://be; }}
}}"""


def _run(tmp: Path, engine: str, path: str, request: bytes) -> tuple[bytes, bytes]:
    async def main() -> tuple[bytes, bytes]:
        sc = Scenario(tmp, engine, HTTP, path)
        try:
            return await sc.exchange(request, OK)
        finally:
            sc.close()

    return asyncio.run(main())


def _req(method: str, path: str, *headers: str) -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: a\r\n" + "".join(h + "\r\n" for h in headers)
            + "\r\n").encode()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method,status", [("GET", 200), ("HEAD", 200), ("POST", 403),
                                           ("DELETE", 403), ("PURGE", 403), ("OPTIONS", 403)])
def test_other_methods_get_the_blocks_rules(tmp_path: Path, engine: str, path: str,
                                            method: str, status: int) -> None:
    client, upstream = _run(tmp_path, engine, path, _req(method, "/api/x"))
    assert client.startswith(f"HTTP/1.1 {status} ".encode())
    assert (upstream != b"") == (status == 200)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_a_token_for_writes_only(tmp_path: Path, engine: str, path: str) -> None:
    good = pyjwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    client, upstream = _run(tmp_path, engine, path, _req("GET", "/w/x"))
    assert client.startswith(b"HTTP/1.1 200 ") and upstream
    client, upstream = _run(tmp_path, engine, path, _req("DELETE", "/w/x"))
    assert client.startswith(b"HTTP/1.1 401 ") and upstream == b""
    client, upstream = _run(tmp_path, engine, path,
                            _req("DELETE", "/w/x", f"Authorization: Bearer {good}"))
    assert client.startswith(b"HTTP/1.1 200 ") and upstream.startswith(b"DELETE /w/x ")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_an_if_that_holds_keeps_the_rules(tmp_path: Path, engine: str, path: str) -> None:
    client, upstream = _run(tmp_path, engine, path, _req("POST", "/if/x", "X-Flag: 1"))
    assert client.startswith(b"HTTP/1.1 403 ") and upstream == b""
    client, upstream = _run(tmp_path, engine, path, _req("GET", "/if/x", "X-Flag: 1"))
    assert client.startswith(b"HTTP/1.1 200 ") and b"\r\nX-Flag: on\r\n" in client


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("target", ["/jw/x", "/dn/x"])
def test_a_rewrite_in_the_location_does_not_walk_around_the_block(
        tmp_path: Path, engine: str, path: str, target: str) -> None:
    # (before, the location's rewrite ran for a DELETE and took it, without a token, to
    # an open location's backend)
    status = b"401" if target == "/jw/x" else b"403"
    for method in ("DELETE", "POST", "PUT"):
        client, upstream = _run(tmp_path, engine, path, _req(method, target))
        assert client.startswith(b"HTTP/1.1 " + status + b" ") and upstream == b"", method
    client, upstream = _run(tmp_path, engine, path, _req("GET", target))
    assert client.startswith(b"HTTP/1.1 200 ") and upstream.startswith(b"GET /open/x ")
    if target == "/jw/x":
        good = pyjwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
        # a valid token passes the block, and the location's rewrite still does not run:
        # the location has no content of its own, so its files answer: nginx's 405
        client, upstream = _run(tmp_path, engine, path,
                                _req("DELETE", target, f"Authorization: Bearer {good}"))
        assert upstream == b"" and client.startswith(b"HTTP/1.1 405 ")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_allow_inside(tmp_path: Path, engine: str, path: str) -> None:
    client, upstream = _run(tmp_path, engine, path, _req("POST", "/lan/x"))
    assert client.startswith(b"HTTP/1.1 200 ") and upstream.startswith(b"POST /lan/x ")


@pytest.mark.parametrize("body,message", [
    ("location / { limit_except FETCH { deny all; } }", 'invalid method "FETCH"'),
    ("location / { limit_except GET { deny all; } limit_except POST { } }",
     '"limit_except" directive is duplicate'),
    ("location / { limit_except GET { proxy_set_header X y; } }",
     '"proxy_set_header" directive is not allowed here'),
    ("location / { limit_except GET { proxy_pass http://127.0.0.1:9/x; } }",
     '"proxy_pass" cannot have URI part'),
    ("limit_except GET { deny all; }", '"limit_except" directive is not allowed here'),
])
def test_refusals(tmp_path: Path, body: str, message: str) -> None:
    text = server_config_error(tmp_path, body)
    assert message in text and text.endswith(":2")
