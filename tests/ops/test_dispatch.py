"""The compiled dispatch of an address (fastgate/ops/dispatch.pyx), in process, on both
engines and both exchange paths: what it refuses before any phase never reaches the
upstream, a valid token reaches it with the verified claim only, and a request's
duration is measured on the monotonic clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import jwt as pyjwt
import pytest
from scenario import ENGINES, PATHS, Scenario

SECRET = "dispatch-secret-0123456789abcdef012345"
HTTP = f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080; auth_jwt_key "{SECRET}"; auth_jwt on;
  proxy_set_header X-Sub $jwt_claim_sub;
  location / {{ proxy_pass http://be; }}
}}"""
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _token() -> str:
    return pyjwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, SECRET,
                        algorithm="HS256")


def _recording(request: Callable[[int, float], None], took: list[float]
               ) -> Callable[[int, float], None]:
    """Stats.request, with each request's duration kept in ``took``."""

    def record(status: int, seconds: float) -> None:
        took.append(seconds)
        request(status, seconds)

    return record


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_refused_before_any_phase_and_the_valid_one_passes(tmp_path: Path, engine: str,
                                                           path: str) -> None:
    bearer = f"Authorization: Bearer {_token()}\r\n"
    asked = [
        (f"TRACE / HTTP/1.1\r\nHost: a\r\n{bearer}X-Sub: forged\r\n\r\n", 405),
        # (nginx's: a CONNECT's authority-form target is an invalid request line, a
        # CONNECT with a path is refused once its headers are read)
        (f"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n{bearer}\r\n", 400),
        (f"CONNECT /api HTTP/1.1\r\nHost: a\r\n{bearer}\r\n", 405),
        (f"GET / HTTP/1.1\r\nHost: a/../b\r\n{bearer}\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-Sub: forged\r\n\r\n", 401),
    ]

    async def main() -> list[tuple[int, bytes, list[float]]]:
        out = []
        for request, _ in [*asked, (f"GET /x HTTP/1.1\r\nHost: a\r\n{bearer}"
                                    "X-Sub: forged\r\n\r\n", 200)]:
            sc = Scenario(tmp_path, engine, HTTP, path)
            took: list[float] = []
            sc.worker.stats.request = _recording(  # type: ignore[method-assign]
                sc.worker.stats.request, took)
            try:
                client, upstream = await sc.exchange(request.encode(), OK)
            finally:
                sc.close()
            out.append((int(client.split(b" ", 2)[1]), upstream, took))
        return out

    got = asyncio.run(main())
    for (status, upstream, _), (_, wanted) in zip(got, asked, strict=False):
        assert (status, upstream) == (wanted, b"")
    status, upstream, took = got[-1]
    assert status == 200
    # (the seed module's claim form: JSON text)
    assert b"\r\nx-sub: \"alice\"\r\n" in upstream.lower() and b"forged" not in upstream
    assert len(took) == 1 and 0 <= took[0] < 1  # (arrival and end on one clock)


ERROR_PAGES = f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080; auth_jwt_key "{SECRET}";
  error_page 400 /oops; error_page 405 /guarded;
  location = /oops {{ proxy_set_header X-Page oops; proxy_pass http://be; }}
  location = /guarded {{ auth_jwt on; proxy_pass http://be; }}
  location / {{ auth_jwt on; proxy_pass http://be; }}
}}"""


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_a_refused_requests_error_page_gets_none_of_it(tmp_path: Path, engine: str,
                                                       path: str) -> None:
    """A request refused before any phase goes to its server's error_page, as nginx's
    — as a GET with none of the request's headers: a page that proxies gets neither
    its token nor its cookies (a protected page is the token check's 401, its
    upstream reached by nothing)."""
    bearer = f"Authorization: Bearer {_token()}\r\nCookie: s=secret\r\n"

    async def main(request: str) -> tuple[bytes, bytes]:
        sc = Scenario(tmp_path, engine, ERROR_PAGES, path)
        try:
            return await sc.exchange(request.encode(), OK)
        finally:
            sc.close()

    client, upstream = asyncio.run(main(f"GET / HTTP/1.1\r\nHost: a/../b\r\n{bearer}\r\n"))
    assert client.startswith(b"HTTP/1.1 400 ") and client.endswith(b"\r\n\r\nok")
    assert upstream.startswith(b"GET /oops HTTP/1.1\r\n") and b"X-Page: oops" in upstream
    assert b"secret" not in upstream and b"Bearer" not in upstream
    client, upstream = asyncio.run(main(f"TRACE / HTTP/1.1\r\nHost: a\r\n{bearer}\r\n"))
    assert client.startswith(b"HTTP/1.1 401 ") and upstream == b""
    # refused by the HTTP layer itself (a header it cannot read, a length that is not
    # one, a line that is not one): the same page, nothing of the request in it
    for refused in (f"GET / HTTP/1.1\r\nHost: a\r\n{bearer}Bad\x01Header: y\r\n\r\n",
                    f"POST / HTTP/1.1\r\nHost: a\r\n{bearer}Content-Length: zz\r\n\r\n",
                    f"GARBAGE {bearer}\r\n\r\n"):
        client, upstream = asyncio.run(main(refused))
        assert client.startswith(b"HTTP/1.1 400 ") and client.endswith(b"\r\n\r\nok")
        assert upstream.startswith(b"GET /oops HTTP/1.1\r\n") and b"X-Page: oops" in upstream
        assert b"secret" not in upstream and b"Bearer" not in upstream


TWO_SERVERS = """
upstream be { server 127.0.0.1:9; keepalive 8; }
server { listen 127.0.0.1:8080; large_client_header_buffers 2 1k;
  error_page 400 494 /oops; location = /oops { proxy_set_header X-Page first;
                                                proxy_pass http://be; } }
server { listen 127.0.0.1:8080; server_name named;
  error_page 400 494 /oops; location = /oops { proxy_set_header X-Page named;
                                                proxy_pass http://be; } }
"""


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_the_http_layers_refusal_takes_the_page_of_the_host_read_before_it(
        tmp_path: Path, engine: str, path: str) -> None:
    """A head the HTTP layer refuses is answered by the error_page of the server its
    Host chose when the Host came before the error (nginx picks the server as it reads
    the Host header), else by the default server's; the same on both engines."""
    async def main(request: bytes) -> bytes:
        sc = Scenario(tmp_path, engine, TWO_SERVERS, path)
        try:
            client, upstream = await sc.exchange(request, OK)
            assert client.startswith(b"HTTP/1.1 400 ") and client.endswith(b"ok")
            return upstream
        finally:
            sc.close()

    big = b"X-Big: " + b"x" * 1500 + b"\r\n"
    bad = b"Bad\x01Header: y\r\n"
    for refused, page in ((b"Host: named\r\n" + big, b"named"), (big + b"Host: named\r\n", b"first"),
                          (b"Host: named\r\n" + bad, b"named"), (bad + b"Host: named\r\n", b"first"),
                          (b"Host: named\r\nContent-Length: zz\r\n", b"named")):
        upstream = asyncio.run(main(b"GET / HTTP/1.1\r\n" + refused + b"\r\n"))
        assert b"\r\nX-Page: " + page + b"\r\n" in upstream, refused[:20]
