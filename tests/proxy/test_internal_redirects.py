"""An internal redirect to a URI (index, try_files' last argument, error_page) starts
over at the server rewrite phase, as nginx's (ngx_http_handler for an internal request);
to a named location it does not (both engines, both paths). Before, the server's
rewrites ran once per request only: nginx 1.22 answers "/" of the site below with a
301 to "/index" (its index redirect meets the server's ``.html`` rewrite); fastgate
served the page."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scenario import ENGINES, PATHS, Scenario


def _http(root: Path) -> str:
    return f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080; root {root}; index index.html;
  rewrite ^(/.*)\\.html$ $1 permanent;
  rewrite ^/errors/(.*)$ /e/$1 last;
  location / {{ try_files $uri $uri.html $uri/ =404; }}
  location /p/ {{ error_page 502 /errors/bad; proxy_intercept_errors on;
    proxy_pass http://be; }}
  location /n/ {{ error_page 502 = @named; proxy_intercept_errors on; proxy_pass http://be; }}
  location @named {{ return 200 "named $uri"; }}
  location /e/ {{ return 200 "e $uri"; }}
}}"""


BAD = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture(params=[(e, p) for e in ENGINES for p in PATHS],
                ids=[f"{e}-{p}" for e in ENGINES for p in PATHS])
def run(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine, path = request.param
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("home")
    (root / "about.html").write_text("about")

    def go(target: str, response: bytes | None = None) -> bytes:
        raw = f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n".encode()

        async def main() -> bytes:
            sc = Scenario(tmp_path, engine, _http(root), path)
            try:
                if response is None:
                    return await sc.get(target)
                return (await sc.exchange(raw, response))[0]
            finally:
                sc.close()

        return asyncio.run(main())

    return go


def test_the_index_redirect_meets_the_servers_rewrites(run) -> None:  # type: ignore[no-untyped-def]
    client = run("/")
    assert client.startswith(b"HTTP/1.1 301 ") and b"Location: http://a:8080/index\r\n" in client
    assert run("/about").endswith(b"about")  # try_files found about.html: no redirect


def test_an_error_page_uri_goes_through_the_servers_rewrites(run) -> None:  # type: ignore[no-untyped-def]
    assert run("/p/x", BAD).endswith(b"e /e/bad")


def test_a_named_location_does_not(run) -> None:  # type: ignore[no-untyped-def]
    assert run("/n/x", BAD).endswith(b"named /n/x")
