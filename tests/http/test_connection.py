"""The client connection (``http.server.ClientConnection``) in process, on both
engines and both exchange paths, through the scenario harness: pipelined requests
answered in order, keep-alive and its limits, a head that never completes, a bad
request, a client that goes away while its upstream answer is awaited."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scenario import ENGINES, PATHS, Scenario

HTTP = """
upstream be { server 127.0.0.1:9; keepalive 8; }
server { listen 127.0.0.1:8080; keepalive_requests 3; client_header_timeout 5s;
  location /local/ { return 200 "local:$uri"; }
  location / { proxy_pass http://be; }
}"""
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture(params=[(e, p) for e in ENGINES for p in PATHS],
                ids=[f"{e}-{p}" for e in ENGINES for p in PATHS])
def scenario(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine, path = request.param

    def make() -> Scenario:
        return Scenario(tmp_path, engine, HTTP, path)

    return make


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_pipelined_requests_are_answered_in_order(scenario) -> None:  # type: ignore[no-untyped-def]
    async def main() -> bytes:
        sc = scenario()
        try:
            sc.client.data_received(b"GET /local/a HTTP/1.1\r\nHost: x\r\n\r\n"
                                    b"GET /local/b HTTP/1.1\r\nHost: x\r\n\r\n")
            await sc.settle(lambda: sc.client_out.bytes().count(b"local:") == 2)
            return sc.client_out.bytes()
        finally:
            sc.close()

    out = _run(main())
    assert out.index(b"local:/local/a") < out.index(b"local:/local/b")
    assert out.count(b"HTTP/1.1 200 OK") == 2


def test_keepalive_requests_closes_after_the_last_one(scenario) -> None:  # type: ignore[no-untyped-def]
    async def main() -> tuple[bytes, bool, bool]:
        sc = scenario()
        try:
            for i in range(2):
                sc.client.data_received(f"GET /local/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                await sc.settle(lambda i=i: sc.client_out.bytes().count(b"local:") == i + 1)
            open_after_two = not sc.client_out.closed
            sc.client.data_received(b"GET /local/2 HTTP/1.1\r\nHost: x\r\n\r\n")
            await sc.settle(lambda: sc.client_out.closed)
            return sc.client_out.bytes(), open_after_two, sc.client_out.closed
        finally:
            sc.close()

    out, open_after_two, closed = _run(main())
    assert open_after_two and closed and out.count(b"HTTP/1.1 200 OK") == 3
    assert out.rstrip().endswith(b"local:/local/2")
    assert b"connection: close" in out.lower().rsplit(b"http/1.1 200", 1)[1]


def test_a_head_that_never_completes_is_closed_without_an_answer(scenario) -> None:  # type: ignore[no-untyped-def]
    async def main() -> tuple[bytes, bool, list[tuple[str, str]]]:
        sc = scenario()
        try:
            sc.pool()
            sc.client.data_received(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-A: ")
            await sc.settle(lambda: False, 0.05)
            sc.client.deadline = 1.0  # the clock found the deadline passed
            sc.client.expire()
            assert sc.upstream_out is not None
            return sc.client_out.bytes(), sc.client_out.closed or sc.client_out.aborted, sc.log
        finally:
            sc.close()

    out, closed, log = _run(main())
    assert out == b"" and closed
    assert any("client timed out" in m for _, m in log)


def test_a_bad_request_is_400_and_the_connection_ends(scenario) -> None:  # type: ignore[no-untyped-def]
    async def main() -> tuple[bytes, bytes, bool]:
        sc = scenario()
        try:
            client, upstream = await sc.exchange(
                b"GET /x HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\n\r\n",
                OK)
            return client, upstream, sc.client_out.closed or sc.client_out.aborted
        finally:
            sc.close()

    client, upstream, closed = _run(main())
    assert client.startswith(b"HTTP/1.1 400") and client.count(b"HTTP/1.1") == 1
    assert upstream == b"" and closed  # the request after it is never read


def test_a_client_gone_while_the_upstream_answers_ends_the_exchange(scenario) -> None:  # type: ignore[no-untyped-def]
    async def main() -> tuple[bool, bool]:
        sc = scenario()
        try:
            sc.pool()
            assert sc.upstream_out is not None
            sc.client.data_received(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
            await sc.settle(lambda: bool(sc.upstream_out.out))  # type: ignore[union-attr]
            sc.client.connection_lost(None)
            await sc.settle(lambda: not sc.busy())
            return sc.busy(), sc.upstream_out.aborted or sc.upstream_out.closed
        finally:
            sc.close()

    busy, upstream_ended = _run(main())
    # nginx's 499: nothing keeps waiting, and the upstream connection is not reused
    assert not busy and upstream_ended
