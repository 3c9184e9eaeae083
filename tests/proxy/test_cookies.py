"""proxy_cookie_* on both engines and both exchange paths (the response head is one
builder; this checks both paths reach it). nginx's own answers for the same cookies
are compared in tests/e2e/test_nginx_parity_e2e.py ("cookies")."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scenario import ENGINES, PATHS, Scenario

HTTP = """
upstream be { server 127.0.0.1:9; keepalive 8; }
server { listen 127.0.0.1:8080;
  location /app/ { proxy_pass http://be; proxy_cookie_path /app/ /;
                   proxy_cookie_domain internal example.com;
                   proxy_cookie_flags ~ secure samesite=lax; }
  location /plain/ { proxy_pass http://be; }
}"""
RESPONSE = (b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Domain=INTERNAL; Path=/app/x\r\n"
            b"Set-Cookie: b=2;Secure\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_set_cookie_rewritten_on_both_paths(tmp_path: Path, engine: str, path: str) -> None:
    async def main() -> tuple[bytes, bytes]:
        sc = Scenario(tmp_path, engine, HTTP, path)
        try:
            app, _ = await sc.exchange(b"GET /app/ HTTP/1.1\r\nHost: a\r\n\r\n", RESPONSE)
            plain, _ = await sc.exchange(b"GET /plain/ HTTP/1.1\r\nHost: a\r\n\r\n", RESPONSE)
            return app, plain
        finally:
            sc.close()

    app, plain = asyncio.run(main())
    assert b"Set-Cookie: a=1; Domain=example.com; Path=/x; Secure; SameSite=Lax\r\n" in app
    assert b"Set-Cookie: b=2; Secure; SameSite=Lax\r\n" in app
    assert b"Set-Cookie: a=1; Domain=INTERNAL; Path=/app/x\r\n" in plain
    assert b"Set-Cookie: b=2;Secure\r\n" in plain
