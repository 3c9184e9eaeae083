"""try_files in nginx's precontent phase, in locations that proxy or pass to an
application too (both engines, both exchange paths). Until now fastgate ran try_files
only where files were served, and ignored it beside proxy_pass or fastcgi_pass — so the
PHP-FPM hardening ``location ~ \\.php$ { try_files $uri =404; fastcgi_pass ...; }`` sent
requests for scripts that do not exist (``/uploads/a.jpg/x.php``) to the application.
nginx answers 404 and the application gets nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from scenario import ENGINES, PATHS, Scenario

SECRET = "try-files-secret-0123456789abcdef0123"


def _http(root: Path) -> str:
    return f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080; root {root};
  location ~ \\.php$ {{ try_files $uri =404; proxy_set_header X-Uri $uri; proxy_pass http://be; }}
  location /app/ {{ try_files $uri/index.html $uri @missing;
    proxy_set_header X-Uri $uri; proxy_pass http://be; }}
  location @missing {{ return 200 "named $uri"; }}
  location /api/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
    try_files /gate =403; proxy_set_header X-Sub $jwt_claim_sub; proxy_pass http://be; }}
}}"""


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    (root / "app" / "dir").mkdir(parents=True)
    (root / "index.php").write_text("<?php")
    (root / "app" / "page").write_text("page")
    (root / "app" / "dir" / "index.html").write_text("<h1>dir</h1>")
    (root / "gate").write_text("")
    return root


@pytest.fixture(params=[(e, p) for e in ENGINES for p in PATHS],
                ids=[f"{e}-{p}" for e in ENGINES for p in PATHS])
def run(request: pytest.FixtureRequest, tmp_path: Path, site: Path):  # type: ignore[no-untyped-def]
    engine, path = request.param

    def go(target: str, headers: str = "") -> tuple[int, bytes, bytes]:
        raw = f"GET {target} HTTP/1.1\r\nHost: a\r\n{headers}\r\n".encode()

        async def main() -> tuple[bytes, bytes]:
            sc = Scenario(tmp_path, engine, _http(site), path)
            try:
                return await sc.exchange(raw, OK)
            finally:
                sc.close()

        client, upstream = asyncio.run(main())
        return int(client.split(b" ", 2)[1]), client, upstream

    return go


def test_a_script_that_is_not_there_never_reaches_the_application(run) -> None:  # type: ignore[no-untyped-def]
    for target in ("/uploads/a.jpg/x.php", "/nothere.php", "/index.php/../x.php"):
        status, _, upstream = run(target)
        assert status == 404 and upstream == b"", target
    status, _, upstream = run("/index.php?a=1")
    assert status == 200 and upstream.startswith(b"GET /index.php?a=1 HTTP/1.1\r\n")
    assert b"X-Uri: /index.php\r\n" in upstream


def test_the_name_found_is_the_uri_the_location_goes_on_with(run) -> None:  # type: ignore[no-untyped-def]
    # the directory's index.html: $uri is the name found; the request line as it came
    # (nginx's proxy sends the unparsed URI: try_files is no redirect)
    status, _, upstream = run("/app/dir")
    assert status == 200 and upstream.startswith(b"GET /app/dir HTTP/1.1\r\n")
    assert b"X-Uri: /app/dir/index.html\r\n" in upstream
    status, _, upstream = run("/app/page")
    assert status == 200 and b"X-Uri: /app/page\r\n" in upstream
    # none: the named location, and the upstream gets nothing
    status, client, upstream = run("/app/none")
    assert status == 200 and client.endswith(b"named /app/none") and upstream == b""


def test_try_files_runs_after_the_access_phase(run) -> None:  # type: ignore[no-untyped-def]
    """The token is checked first, as nginx's access phase comes before precontent: a
    request without one is a 401 whatever the files say; with one it goes on, with
    only the verified claim."""
    status, _, upstream = run("/api/x", "X-Sub: mallory\r\n")
    assert status == 401 and upstream == b""
    token = pyjwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, SECRET,
                         algorithm="HS256")
    status, _, upstream = run("/api/x", f"Authorization: Bearer {token}\r\nX-Sub: mallory\r\n")
    assert status == 200 and upstream.startswith(b"GET /api/x HTTP/1.1\r\n")
    assert upstream.count(b"X-Sub:") == 1 and b'X-Sub: "alice"\r\n' in upstream


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_an_include_runs_try_files_too(tmp_path: Path, site: Path, engine: str,
                                       path: str) -> None:
    """An SSI include is a subrequest: its location's try_files runs (nginx's
    precontent phase), its mirror would not."""
    (site / "app" / "page.html").write_text('[<!--# include virtual="/app/none" -->]')
    http = f"""
server {{ listen 127.0.0.1:8080; root {site};
  location = /app/page.html {{ ssi on; }}
  location /app/ {{ try_files $uri /app/dir/index.html; }}
}}"""

    async def main() -> bytes:
        sc = Scenario(tmp_path, engine, http, path)
        try:
            return await sc.get("/app/page.html")
        finally:
            sc.close()

    assert b"[<h1>dir</h1>]" in asyncio.run(main())
