"""A regex location's named captures reach the upstream as variables, on both engines
and both exchange paths (the callback path finds the location through the Locator's
memory: the captures are named from the match it kept). Beside nginx, for every place
a regex may name captures: tests/e2e/test_named_captures_e2e.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scenario import ENGINES, PATHS, Scenario

HTTP = """
upstream be { server 127.0.0.1:9; keepalive 8; }
server { listen 127.0.0.1:8080;
  location ~ ^/users/(?<id>\\d+)(?<rest>/.*)?$ {
    proxy_set_header X-Id $id; proxy_set_header X-Rest $rest; proxy_pass http://be; }
}"""
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_a_locations_named_captures_go_upstream(tmp_path: Path, engine: str,
                                                path: str) -> None:
    async def main() -> list[bytes]:
        sc = Scenario(tmp_path, engine, HTTP, path)
        try:
            got = []
            for target in (b"/users/7/keys", b"/users/7/keys", b"/users/8"):
                sc.client_out.out.clear()
                got.append((await sc.exchange(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n",
                                              OK))[1])
            return got
        finally:
            sc.close()

    first, again, other = asyncio.run(main())
    for upstream in (first, again):  # (the second from the Locator's memory)
        assert b"X-Id: 7\r\n" in upstream and b"X-Rest: /keys\r\n" in upstream
    assert b"X-Id: 8\r\n" in other and b"X-Rest" not in other  # empty: not sent
