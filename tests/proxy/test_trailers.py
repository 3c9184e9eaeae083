"""add_trailer on both engines and both exchange paths: a proxied response with its own
Content-Length goes chunked with the trailers after it (nginx's answers are compared in
tests/e2e/test_nginx_parity_e2e.py::test_add_trailer_as_nginx)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scenario import ENGINES, PATHS, Scenario

HTTP = """
upstream be { server 127.0.0.1:9; keepalive 8; }
server { listen 127.0.0.1:8080;
  location / { proxy_pass http://be; add_trailer X-Status "$upstream_status";
               add_trailer X-Empty "$arg_none"; }
}"""


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_trailers_follow_a_chunked_body(tmp_path: Path, engine: str, path: str) -> None:
    async def main() -> tuple[bytes, bytes]:
        sc = Scenario(tmp_path, engine, HTTP, path)
        try:
            one, _ = await sc.exchange(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n",
                                       b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            head, _ = await sc.exchange(b"HEAD /b HTTP/1.1\r\nHost: a\r\n\r\n",
                                        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            return one, head
        finally:
            sc.close()

    one, both = asyncio.run(main())
    head = both[len(one):]  # the connection's bytes so far: the HEAD's answer follows
    assert b"content-length" not in one.lower()
    assert one.lower().count(b"transfer-encoding: chunked") == 1
    assert one.endswith(b"5\r\nhello\r\n0\r\nx-status: 200\r\n\r\n") or one.endswith(
        b"5\r\nhello\r\n0\r\nX-Status: 200\r\n\r\n")
    assert b"x-empty" not in one.lower()
    assert b"chunked" not in head.lower() and b"x-status" not in head.lower()
