"""add_before_body and add_after_body in process, on both engines: a subrequest's
answer around a file and a proxied answer (the latter never in callbacks), the access
phase it runs (where nginx skips it), and a subrequest that cannot be had whole — the
client gets a cut connection, never a page with a part missing. (Bodies compared with
nginx: the parity test.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers import dechunk
from scenario import Scenario

from fastgate.proxy.capture import KEPT_MAX
from fastgate.proxy.status import error_body


def block(root: Path) -> str:
    return f"""upstream be {{ server 127.0.0.1:9; }}
server {{ listen 127.0.0.1:8080; root {root};
  location /page/ {{ add_before_body /parts/head.html; add_after_body /parts/foot.html; }}
  location /parts/ {{ }}
  location /shut/ {{ alias {root}/page/; add_before_body /denied/head.html;
                    add_after_body /denied/foot.html; }}
  location /denied/ {{ alias {root}/parts/; allow 10.0.0.1; deny all; }}
  location /huge/ {{ alias {root}/page/; add_after_body /parts/huge.html; }}
  location /api/ {{ add_before_body /parts/head.html; proxy_pass http://be; }} }}"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "page").mkdir(parents=True)
    (r / "parts").mkdir()
    (r / "page" / "a.html").write_bytes(b"<main>")
    (r / "parts" / "head.html").write_bytes(b"<head>")
    (r / "parts" / "foot.html").write_bytes(b"<foot>")
    (r / "parts" / "huge.html").write_bytes(b"h" * (KEPT_MAX + 1))
    return r


def _body(response: bytes) -> bytes:
    head, _, rest = response.partition(b"\r\n\r\n")
    assert b"chunked" in head.lower()
    return dechunk(rest)


def test_a_file_between_its_parts(tmp_path: Path, root: Path, engine: str) -> None:
    async def main() -> bytes:
        sc = Scenario(tmp_path, engine, block(root))
        try:
            return await sc.get("/page/a.html")
        finally:
            sc.close()
    assert _body(asyncio.run(main())) == b"<head><main><foot>"


def test_parts_run_their_locations_access_phase(
        tmp_path: Path, root: Path, engine: str) -> None:
    async def main() -> tuple[bytes, bytes]:
        sc = Scenario(tmp_path, engine, block(root))
        try:
            return await sc.get("/shut/a.html"), await sc.get("/denied/head.html")
        finally:
            sc.close()
    page, part = asyncio.run(main())
    # the parts' location refuses this client, for the subrequests too (nginx would let
    # them through): its 403 page stands where each part would have
    assert _body(page) == error_body(403) + b"<main>" + error_body(403)
    assert part.startswith(b"HTTP/1.1 403 ")


def test_a_proxied_answer_gets_its_part(tmp_path: Path, root: Path, engine: str) -> None:
    async def main() -> tuple[bytes, bytes]:
        sc = Scenario(tmp_path, engine, block(root))
        try:
            return await sc.exchange(
                b"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 4\r\n\r\n"
                b"<up>")
        finally:
            sc.close()
    client, upstream = asyncio.run(main())
    assert upstream.startswith(b"GET /api/x HTTP/1.1\r\n")  # once, the main request
    assert _body(client) == b"<head><up>"


def test_a_part_that_cannot_be_had_whole_cuts_the_response(
        tmp_path: Path, root: Path, engine: str) -> None:
    async def main() -> tuple[bytes, bool]:
        sc = Scenario(tmp_path, engine, block(root))
        try:
            return await sc.get("/huge/a.html", 5.0), sc.client_out.aborted
        finally:
            sc.close()
    out, aborted = asyncio.run(main())
    assert aborted
    assert out.startswith(b"HTTP/1.1 200 ") and not out.endswith(b"0\r\n\r\n")
    assert b"hhhh" not in out


def test_pages_of_fastgates_own_get_them_too(tmp_path: Path, root: Path, engine: str) -> None:
    """As nginx's: stub_status and empty_gif answers get their additions where
    addition_types names their types (text/html only by default)."""
    conf = f"""server {{ listen 127.0.0.1:8080; root {root};
  location /parts/ {{ }}
  location = /status {{ stub_status; add_before_body /parts/head.html;
                       addition_types text/plain; }}
  location = /gif {{ empty_gif; add_after_body /parts/foot.html; addition_types image/gif; }}
  location = /plain-status {{ stub_status; add_before_body /parts/head.html; }} }}"""

    async def main() -> list[bytes]:
        sc = Scenario(tmp_path, engine, conf)
        try:
            return [await sc.get(path) for path in ("/status", "/gif", "/plain-status")]
        finally:
            sc.close()
    status, gif, plain = asyncio.run(main())
    body = _body(status)
    assert body.startswith(b"<head>Active connections: ")
    assert _body(gif).startswith(b"GIF89a") and _body(gif).endswith(b"<foot>")
    assert b"<head>" not in plain and b"Active connections: " in plain  # (not text/html)
