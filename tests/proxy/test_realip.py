"""The realip module: the client's address from a trusted balancer's header, and
never from anyone else's (issue #17, item 6)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers import server_config_error
from scenario import ENGINES, PATHS, Scenario


def _http(trusted: str) -> str:
    return f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080;
  set_real_ip_from {trusted};
  real_ip_header X-Forwarded-For;
  real_ip_recursive on;
  location / {{ proxy_set_header X-Client $remote_addr;
               proxy_set_header X-Peer $realip_remote_addr; proxy_pass http://be; }}
}}"""


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("trusted,client", [("127.0.0.0/8", b"203.0.113.7"),
                                            ("10.0.0.0/8", b"127.0.0.1"),
                                            # (a name: its addresses, as nginx's —
                                            # 127.0.0.1 alone, so 127.0.0.5 is the client)
                                            ("localhost", b"127.0.0.5")])
def test_only_a_trusted_peer_names_the_client(tmp_path: Path, engine: str, path: str,
                                              trusted: str, client: bytes) -> None:
    async def main() -> bytes:
        sc = Scenario(tmp_path, engine, _http(trusted), path)
        try:
            _, upstream = await sc.exchange(
                b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7, 127.0.0.5\r\n\r\n",
                b"HTTP/1.1 204 No Content\r\n\r\n")
            return upstream
        finally:
            sc.close()

    upstream = asyncio.run(main())
    assert b"X-Client: " + client + b"\r\n" in upstream
    assert b"X-Peer: 127.0.0.1\r\n" in upstream


@pytest.mark.parametrize("body,message", [
    ("set_real_ip_from unix:/run/x.sock;", 'invalid parameter "unix:/run/x.sock"'),
    # (no address, so a name, as nginx reads it: one the system does not resolve)
    ("set_real_ip_from 10.0.0.300;", 'host not found in set_real_ip_from "10.0.0.300"'),
    ("set_real_ip_from nowhere.invalid;",
     'host not found in set_real_ip_from "nowhere.invalid"'),
    ("set_real_ip_from a/b;", 'invalid parameter "a/b"'),
])
def test_refusals(tmp_path: Path, body: str, message: str) -> None:
    text = server_config_error(tmp_path, body)
    assert message in text and text.endswith(":2")
