"""A protected location and a request that asks to upgrade with a body (the body here a
whole request, a smuggling attempt): without a token nothing reaches the upstream; with
one, the upstream receives the request with that body as its body — framed by its
Content-Length or chunks, read whole first — and the verified claim, never the
client's. On both engines and both exchange paths."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from scenario import ENGINES, PATHS, Scenario

SECRET = "upgrade-body-secret-0123456789abcdef"
HTTP = f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080;
  location /ws/ {{ auth_jwt on; auth_jwt_key "{SECRET}";
                  proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade;
                  proxy_set_header Connection upgrade;
                  proxy_set_header X-Sub $jwt_claim_sub; proxy_pass http://be; }}
}}
"""
SMUGGLED = b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
FRAMINGS = {"length": b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
            "chunked": b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(SMUGGLED)
                       + SMUGGLED + b"\r\n0\r\n\r\n"}


def _request(framing: str, token: bool) -> bytes:
    auth = b""
    if token:
        auth = b"Authorization: Bearer " + pyjwt.encode(
            {"sub": "u1", "exp": int(time.time()) + 600}, SECRET,
            algorithm="HS256").encode() + b"\r\n"
    return (b"POST /ws/a HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"X-Sub: forged\r\n" + auth + FRAMINGS[framing])


@pytest.mark.parametrize("framing", sorted(FRAMINGS))
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("engine", ENGINES)
def test_an_upgrade_requests_body_is_its_body_and_checked_first(
        tmp_path: Path, engine: str, path: str, framing: str) -> None:
    async def main(token: bool) -> tuple[bytes, bytes]:
        # (a connection each: an upgrade request not switched may end its connection)
        sc = Scenario(tmp_path, engine, HTTP, path)
        try:
            return await sc.exchange(_request(framing, token), OK)
        finally:
            sc.close()

    refused, upstream_refused = asyncio.run(main(False))
    passed, upstream_passed = asyncio.run(main(True))
    assert refused.startswith(b"HTTP/1.1 401 ") and upstream_refused == b""
    assert passed.startswith(b"HTTP/1.1 200 ")
    head, _, body = upstream_passed.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /ws/a HTTP/1.1\r\n")
    assert b'X-Sub: "u1"' in head and b"forged" not in upstream_passed
    # the body whole, with its length, and nothing after it
    assert b"content-length: %d" % len(SMUGGLED) in head.lower() and body == SMUGGLED


@pytest.mark.parametrize("framing", sorted(FRAMINGS))
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("engine", ENGINES)
def test_what_follows_an_upgrade_request_refused_is_checked_as_a_request(
        tmp_path: Path, engine: str, path: str, framing: str) -> None:
    """Refused (401), the upgrade request's connection goes on: its body is dropped and
    what follows is a request of its own, which the token check refuses too."""
    async def main() -> tuple[bytes, bytes]:
        sc = Scenario(tmp_path, engine, HTTP, path)
        try:
            return await sc.exchange(_request(framing, False)
                                     + b"GET /ws/b HTTP/1.1\r\nHost: a\r\n\r\n", OK)
        finally:
            sc.close()

    client, upstream = asyncio.run(main())
    assert client.count(b"HTTP/1.1 401 ") == 2 and b"HTTP/1.1 200" not in client
    assert upstream == b""


STREAMED = f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080;
  location /ws/ {{ auth_jwt on; auth_jwt_key "{SECRET}";
                  proxy_request_buffering off; client_body_timeout 1s;
                  proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade;
                  proxy_set_header Connection upgrade; proxy_pass http://be; }}
}}
"""


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_body_that_fails_after_the_upstream_switched_is_answered_not_tunnelled(
        tmp_path: Path, engine: str, path: str) -> None:
    """The body streams (``proxy_request_buffering off``) and the upstream switches
    before it has all come; then the client stops sending: the tunnel never opens (the
    body goes whole before its first byte), the client's connection is closed without
    an answer (nginx terminates a request whose body timed out: its 408 is logged, not
    sent), never a 101, and the worker goes on."""
    token = pyjwt.encode({"sub": "u1", "exp": int(time.time()) + 600}, SECRET,
                         algorithm="HS256").encode()
    request = (b"POST /ws/a HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nAuthorization: Bearer " + token
               + b"\r\nContent-Length: 10\r\n\r\nabc")

    async def main() -> tuple[bytes, bytes]:
        sc = Scenario(tmp_path, engine, STREAMED, path)
        try:
            sc.pool("be")
            assert sc.upstream is not None and sc.upstream_out is not None
            up = sc.upstream_out
            sc.client.data_received(request)
            await sc.settle(lambda: b"abc" in up.bytes())
            sc.upstream.data_received(b"HTTP/1.1 101 Switching Protocols\r\n"
                                      b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            await sc.settle(lambda: not sc.busy(), 3.0)
            return sc.client_out.bytes(), up.bytes()
        finally:
            sc.close()

    client, upstream = asyncio.run(main())
    assert upstream.startswith(b"POST /ws/a HTTP/1.1\r\n") and upstream.endswith(b"abc")
    assert client == b""
