"""absolute_redirect, port_in_redirect, server_name_in_redirect: how a Location that is a
path leaves fastgate — from ``return``, ``rewrite ... redirect``, the slash redirect and
an upstream's answer a ``proxy_redirect`` rule rewrote — as nginx's header filter writes
it (both engines, both paths). An upstream's path no rule rewrote stays as it came, as
nginx leaves it (checked beside nginx in tests/e2e/test_proxy_redirect_e2e.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scenario import ENGINES, PATHS, Scenario

HTTP = """
upstream be { server 127.0.0.1:9; keepalive 8; }
server { listen 127.0.0.1:8080; server_name gw.example alias.example;
  location /abs/ { return 301 /to; }
  location /rel/ { absolute_redirect off; return 301 /to; }
  location /noport/ { port_in_redirect off; return 302 /to; }
  location /name/ { server_name_in_redirect on; rewrite ^ /to redirect; }
  location /up/ { proxy_pass http://be; }
  location /uprw/ { proxy_redirect /login /signin; proxy_pass http://be; }
  location /uprel/ { absolute_redirect off; proxy_pass http://be; }
  location /upname/ { server_name_in_redirect on; port_in_redirect off;
    proxy_redirect /login /login; proxy_pass http://be; }
  location /dir/ { absolute_redirect off; proxy_pass http://be; }
}
"""
MOVED = b"HTTP/1.1 302 Found\r\nLocation: /login?a=1\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture(params=[(e, p) for e in ENGINES for p in PATHS],
                ids=[f"{e}-{p}" for e in ENGINES for p in PATHS])
def location(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine, path = request.param

    def go(target: str, host: str | None = "h.example", response: bytes | None = None) -> bytes:
        head = f"GET {target} HTTP/1.1\r\n" if host is not None else f"GET {target} HTTP/1.0\r\n"
        raw = (head + (f"Host: {host}\r\n" if host is not None else "") + "\r\n").encode()

        async def main() -> tuple[bytes, bytes]:
            sc = Scenario(tmp_path, engine, HTTP, path)
            try:
                return await sc.exchange(raw, response)
            finally:
                sc.close()

        client, _ = asyncio.run(main())
        return [line for line in client.split(b"\r\n") if line.startswith(b"Location:")][0]

    return go


def test_by_default_a_path_is_made_absolute_with_the_host_and_port(location) -> None:  # type: ignore[no-untyped-def]
    assert location("/abs/x") == b"Location: http://h.example:8080/to"
    assert location("/uprw/x", response=MOVED) == b"Location: http://h.example:8080/signin?a=1"
    # no rule rewrote it: the upstream's path as it came
    assert location("/up/x", response=MOVED) == b"Location: /login?a=1"


def test_absolute_redirect_off_leaves_the_path(location) -> None:  # type: ignore[no-untyped-def]
    assert location("/rel/x") == b"Location: /to"
    assert location("/uprel/x", response=MOVED) == b"Location: /login?a=1"
    assert location("/dir") == b"Location: /dir/"  # the slash redirect too


def test_port_in_redirect_off_leaves_the_port_out(location) -> None:  # type: ignore[no-untyped-def]
    assert location("/noport/x") == b"Location: http://h.example/to"


def test_server_name_in_redirect_uses_the_servers_first_name(location) -> None:  # type: ignore[no-untyped-def]
    assert location("/name/x") == b"Location: http://gw.example:8080/to"
    assert location("/upname/x", response=MOVED) == b"Location: http://gw.example/login?a=1"


def test_without_a_host_the_address_the_request_came_to(location) -> None:  # type: ignore[no-untyped-def]
    assert location("/abs/x", host=None) == b"Location: http://127.0.0.1:8080/to"
