"""A subrequest shares its request's variables, as nginx's (``sr->variables =
r->variables``): what ``set`` gave before it is read in it, and what it sets is the
request's too — an SSI include here, waited for (both engines, both paths; nginx 1.22
writes "a[main page]bsubc" for this page). An auth_request's subrequest reading a
server-level ``set``: tests/e2e/test_wild_e2e.py::test_forward_auth_sso."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scenario import ENGINES, PATHS, Scenario


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_an_include_reads_and_sets_the_requests_variables(tmp_path: Path, engine: str,
                                                          path: str) -> None:
    root = tmp_path / "www"
    root.mkdir()
    (root / "page.html").write_text(
        'a<!--# include virtual="/inc" wait="yes" -->b<!--# echo var="from_sub" -->c')
    http = f"""
server {{ listen 127.0.0.1:8080; root {root};
  set $who main;
  location = /page.html {{ ssi on; set $where page; }}
  location = /inc {{ set $from_sub sub; return 200 "[$who $where]"; }}
}}"""

    async def main() -> bytes:
        sc = Scenario(tmp_path, engine, http, path)
        try:
            return await sc.get("/page.html")
        finally:
            sc.close()

    body = asyncio.run(main()).split(b"\r\n\r\n", 1)[1]
    assert b"a[main page]bsubc" in body.replace(b"\r\n", b"").replace(b"\n", b"")
