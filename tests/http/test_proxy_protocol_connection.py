"""A ``listen ... proxy_protocol`` connection in process, both engines, both exchange
paths: the header is read once, before HTTP; its address reaches the request only
through realip from a trusted peer; a connection without a header is closed and its
bytes never reach the upstream."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from scenario import ENGINES, PATHS, Scenario

SECRET = "pp-secret-0123456789abcdef0123456789abc"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
HEADER = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n"


def _http(trusted: str) -> str:
    return f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080 proxy_protocol; auth_jwt_key "{SECRET}";
  set_real_ip_from {trusted}; real_ip_header proxy_protocol;
  location / {{ auth_jwt on;
    proxy_set_header X-Client "$remote_addr:$remote_port";
    proxy_set_header X-PP "$proxy_protocol_addr:$proxy_protocol_port";
    proxy_pass http://be; }}
}}"""


def _request(token: str | None = None) -> bytes:
    if token is None:
        token = pyjwt.encode({"sub": "a", "exp": int(time.time()) + 600}, SECRET,
                             algorithm="HS256")
    return f"GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\n\r\n".encode()


@pytest.fixture(params=[(e, p) for e in ENGINES for p in PATHS],
                ids=[f"{e}-{p}" for e in ENGINES for p in PATHS])
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


def _run(tmp_path: Path, case: tuple[str, str], trusted: str, *chunks: bytes,
         response: bytes | None = OK) -> tuple[bytes, bytes, Scenario]:
    engine, path = case

    async def main() -> tuple[bytes, bytes, Scenario]:
        sc = Scenario(tmp_path, engine, _http(trusted), path)
        try:
            for chunk in chunks[:-1]:
                sc.client.data_received(chunk)
            client, upstream = await sc.exchange(chunks[-1], response)
            return client, upstream, sc
        finally:
            sc.close()

    return asyncio.run(main())


def test_the_header_names_the_client_through_realip(tmp_path: Path, case) -> None:  # type: ignore[no-untyped-def]
    client, upstream, _ = _run(tmp_path, case, "127.0.0.1", HEADER + _request())
    assert client.startswith(b"HTTP/1.1 200")
    assert b"X-Client: 203.0.113.7:51234\r\n" in upstream
    assert b"X-PP: 203.0.113.7:51234\r\n" in upstream
    assert HEADER not in upstream


def test_a_header_in_pieces_is_waited_for(tmp_path: Path, case) -> None:  # type: ignore[no-untyped-def]
    client, upstream, _ = _run(tmp_path, case, "127.0.0.1", HEADER[:9], HEADER[9:30],
                               HEADER[30:] + _request())
    assert client.startswith(b"HTTP/1.1 200") and b"X-Client: 203.0.113.7:51234" in upstream


def test_from_an_untrusted_peer_the_address_stays(tmp_path: Path, case) -> None:  # type: ignore[no-untyped-def]
    _, upstream, _ = _run(tmp_path, case, "10.0.0.0/8", HEADER + _request())
    assert b"X-Client: 127.0.0.1:50000\r\n" in upstream
    assert b"X-PP: 203.0.113.7:51234\r\n" in upstream  # the variable is there all the same


def test_without_a_header_nothing_reaches_the_upstream(tmp_path: Path, case) -> None:  # type: ignore[no-untyped-def]
    client, upstream, sc = _run(tmp_path, case, "127.0.0.1", _request())
    assert client == b"" and upstream == b""
    assert sc.client_out.aborted
    assert any(level == "error" and "broken header" in m for level, m in sc.log)


def test_the_header_is_read_once(tmp_path: Path, case) -> None:  # type: ignore[no-untyped-def]
    client, upstream, _ = _run(tmp_path, case, "127.0.0.1", HEADER + HEADER + _request())
    assert client.startswith(b"HTTP/1.1 400") and upstream == b""


def test_a_forged_token_behind_a_header_is_refused(tmp_path: Path, case) -> None:  # type: ignore[no-untyped-def]
    client, upstream, _ = _run(tmp_path, case, "127.0.0.1", HEADER + _request("x.y.z"))
    assert client.startswith(b"HTTP/1.1 401") and upstream == b""
