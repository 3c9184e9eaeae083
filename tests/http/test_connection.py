"""The client connection (``http.server.ClientConnection``) in process, on both
engines and both exchange paths, through the scenario harness: pipelined requests
answered in order, keep-alive and its limits, a head that never completes, a bad
request, a client that goes away while its upstream answer is awaited, the body of a
request answered before it was read (discarded, as nginx's)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from scenario import ENGINES, PATHS, Scenario

HTTP = """
upstream be { server 127.0.0.1:9; keepalive 8; }
server { listen 127.0.0.1:8080; keepalive_requests 3; client_header_timeout 5s;
  location /local/ { return 200 "local:$uri"; }
  location /api/ { auth_jwt on; auth_jwt_key "0123456789abcdef0123456789abcdef";
                   proxy_pass http://be; }
  location /fails/ { return 500; }
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


def _waiting(sc: Scenario) -> int:
    """stub_status's Waiting: the worker's gauge of idle (keep-alive) connections."""
    return int(re.search(rb"Waiting: (\d+)", sc.worker.stats.stub_status()).group(1))


@pytest.mark.parametrize("engine,path", [(e, p) for e in ENGINES for p in PATHS])
def test_the_idle_gauge_follows_the_connection(tmp_path: Path, engine: str,
                                               path: str) -> None:
    """Waiting counts the connection while it waits for a request: not while a proxied
    answer is awaited, again once it is written, unchanged by requests answered inside
    their own dispatch (a page, a 401, pipelined ones), and not once it is gone."""
    async def main() -> list[int]:
        sc = Scenario(tmp_path, engine, HTTP.replace("keepalive_requests 3;", ""), path)
        seen = [_waiting(sc)]
        try:
            for request, answers in ((b"GET /local/a HTTP/1.1\r\nHost: x\r\n\r\n", 1),
                                     (b"GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n", 1),
                                     (b"GET /local/b HTTP/1.1\r\nHost: x\r\n\r\n"
                                      b"GET /api/y HTTP/1.1\r\nHost: x\r\n\r\n", 2)):
                sc.client_out.out.clear()
                sc.client.data_received(request)
                await sc.settle(lambda n=answers: sc.client_out.bytes().count(b"HTTP/1.1 ") == n)
                seen.append(_waiting(sc))
            sc.pool()
            assert sc.upstream is not None and sc.upstream_out is not None
            sc.client_out.out.clear()
            sc.client.data_received(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
            await sc.settle(lambda: bool(sc.upstream_out.out))  # type: ignore[union-attr]
            seen.append(_waiting(sc))  # (the upstream's answer is awaited)
            sc.upstream.data_received(OK)
            await sc.settle(lambda: not sc.busy() and sc.client_out.bytes().endswith(b"ok"))
            seen.append(_waiting(sc))
            sc.client.connection_lost(None)
            seen.append(_waiting(sc))
            return seen
        finally:
            sc.close()

    assert _run(main()) == [1, 1, 1, 1, 0, 1, 0]


SMUGGLED = b"GET /local/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def _post_head(framing: bytes) -> bytes:
    return b"POST /api/x HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n"


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_refused_requests_body_is_discarded_and_the_connection_goes_on(
        scenario, chunked: bool) -> None:  # type: ignore[no-untyped-def]
    """A 401 answered while the body is still coming keeps the connection (nginx's
    discarded body): the rest of the body, a whole request inside it, is read and
    dropped, never served; the request after it is; the upstream gets nothing."""
    big = b"x" * 300_000  # more than the body buffer holds before it pauses reading
    if chunked:
        framing = b"Transfer-Encoding: chunked"
        first = b"%x\r\n" % (len(big) + len(SMUGGLED)) + big
        rest = SMUGGLED + b"\r\n0\r\n\r\n"
    else:
        framing = b"Content-Length: %d" % (len(big) + len(SMUGGLED))
        first, rest = big, SMUGGLED

    async def main() -> tuple[bytes, bool, bytes, bool]:
        sc = scenario()
        try:
            sc.pool()
            assert sc.upstream_out is not None
            # the body's first part with the head: buffered past its mark (reading
            # paused) before the refusal, dropped and reading resumed after it
            sc.client.data_received(_post_head(framing) + first)
            await sc.settle(lambda: b"401" in sc.client_out.bytes())
            await sc.settle(lambda: False, 0.02)
            paused = sc.client_out.paused
            sc.client.data_received(rest + b"GET /local/next HTTP/1.1\r\nHost: x\r\n\r\n")
            await sc.settle(lambda: b"local:" in sc.client_out.bytes())
            return (sc.client_out.bytes(), paused, sc.upstream_out.bytes(),
                    sc.client_out.closed or sc.client_out.aborted)
        finally:
            sc.close()

    out, paused, upstream, closed = _run(main())
    assert out.startswith(b"HTTP/1.1 401") and b"connection: close" not in out.lower()
    assert out.count(b"HTTP/1.1 ") == 2 and out.endswith(b"local:/local/next")
    assert b"smuggled" not in out and not paused and not closed
    assert upstream == b""


@pytest.mark.parametrize(("framing", "rest", "stalls"), [
    (b"Content-Length: 100", b"only some", True),
    (b"Transfer-Encoding: chunked", b"zz\r\nnot a chunk\r\n" + SMUGGLED, False),
], ids=["stalled", "malformed"])
def test_a_discarded_body_that_goes_wrong_closes_without_an_answer(
        scenario, framing: bytes, rest: bytes, stalls: bool) -> None:  # type: ignore[no-untyped-def]
    """The rest of a discarded body that stops coming (lingering_timeout passes) or is
    malformed (closed at once): the connection ends, nothing more is answered."""
    async def main() -> tuple[bytes, bool]:
        sc = scenario()
        try:
            sc.client.data_received(_post_head(framing))
            await sc.settle(lambda: b"401" in sc.client_out.bytes())
            sc.client.data_received(rest)
            await sc.settle(lambda: sc.client_out.closed or sc.client_out.aborted, 0.05)
            if stalls:
                assert not sc.client_out.closed
                sc.client.deadline = 1.0  # lingering_timeout passed: the clock says so
                sc.client.expire()
            return sc.client_out.bytes(), sc.client_out.closed or sc.client_out.aborted
        finally:
            sc.close()

    out, closed = _run(main())
    assert closed and out.count(b"HTTP/1.1 ") == 1 and out.startswith(b"HTTP/1.1 401")


def test_errors_nginx_ends_the_connection_after_say_so(scenario) -> None:  # type: ignore[no-untyped-def]
    """500 (and 400, 413, 414, 495-497, 501) close as nginx's; a 404 keeps it."""
    async def main() -> tuple[bytes, bytes]:
        sc = scenario()
        try:
            missing = await sc.get("/api/x")  # a 401: the connection goes on
            failed = await sc.get("/fails/x")
            return missing, failed
        finally:
            sc.close()

    kept, ended = _run(main())
    assert kept.startswith(b"HTTP/1.1 401") and b"connection: close" not in kept.lower()
    assert ended.startswith(b"HTTP/1.1 500") and b"connection: close" in ended.lower()


@pytest.mark.parametrize("mode", ["on", "off", "always"])
@pytest.mark.parametrize("engine", ENGINES)
def test_lingering_close(tmp_path: Path, engine: str, mode: str) -> None:
    """A connection closed while its request's body is still coming (the client said
    Connection: close) lingers — shut for writing, read until lingering_timeout passes
    — unless ``lingering_close off``; ``always`` lingers after a whole request too."""
    block = HTTP.replace("keepalive_requests 3;", f"keepalive_requests 3; lingering_close {mode};")

    async def main() -> tuple[bool, bool, bool, bool]:
        unread = Scenario(tmp_path, engine, block)
        whole = Scenario(tmp_path, engine, block)
        try:
            unread.client.data_received(b"POST /local/a HTTP/1.1\r\nHost: x\r\n"
                                        b"Connection: close\r\nContent-Length: 9\r\n\r\n")
            whole.client.data_received(b"GET /local/a HTTP/1.1\r\nHost: x\r\n"
                                       b"Connection: close\r\n\r\n")
            await unread.settle(lambda: b"local:" in unread.client_out.bytes())
            await whole.settle(lambda: b"local:" in whole.client_out.bytes())
            await unread.settle(lambda: False, 0.02)
            lingered = unread.client_out.eof_written and not unread.client_out.closed
            whole_lingered = whole.client_out.eof_written and not whole.client_out.closed
            unread.client.data_received(b"more")  # read and dropped while lingering
            unread.client.deadline = 1.0  # lingering_timeout passed
            unread.client.expire()
            return (lingered, whole_lingered, unread.client_out.closed,
                    unread.client_out.bytes().count(b"HTTP/1.1") == 1)
        finally:
            unread.close()
            whole.close()

    lingered, whole_lingered, closed, one = _run(main())
    assert lingered == (mode != "off") and whole_lingered == (mode == "always")
    assert closed and one


@pytest.mark.parametrize("engine", ENGINES)
def test_a_dripping_discarded_body_is_cut_at_lingering_time(tmp_path: Path, engine: str) -> None:
    """A client that keeps a discarded body coming a byte at a time (each within
    lingering_timeout) holds the connection no longer than lingering_time."""
    block = HTTP.replace("keepalive_requests 3;", "keepalive_requests 3; lingering_time 1s;")

    async def main() -> tuple[float, bool]:
        sc = Scenario(tmp_path, engine, block)
        try:
            sc.client.data_received(_post_head(b"Content-Length: 1000"))
            await sc.settle(lambda: b"401" in sc.client_out.bytes())
            began = asyncio.get_running_loop().time()
            while not sc.client_out.closed and asyncio.get_running_loop().time() - began < 3:
                sc.client.data_received(b"x")
                await asyncio.sleep(0.2)
            return asyncio.get_running_loop().time() - began, sc.client_out.closed
        finally:
            sc.close()

    took, closed = _run(main())
    assert closed and 0.9 <= took < 2


PIPELINED = """
upstream be { server 127.0.0.1:9; keepalive 8; }
server { listen 127.0.0.1:8080; keepalive_requests 100000;
  location /api/ { auth_jwt on; auth_jwt_key "0123456789abcdef0123456789abcdef";
                   proxy_pass http://be; }
}"""


@pytest.mark.parametrize("engine", ENGINES)
def test_refusals_pipelined_in_one_read_are_answered_at_once_in_a_loop(
        tmp_path: Path, engine: str) -> None:
    """Requests answered inside their dispatch (here 401s), many pipelined in one read:
    each is answered, in order, before data_received returns — the next request is
    taken when the engine's feed returns, in a loop (2,000 of them would pass the
    recursion limit were it a recursion), not one per loop turn — and nothing of them
    reaches the upstream."""
    n = 2000

    async def main() -> tuple[bytes, bytes, bool]:
        sc = Scenario(tmp_path, engine, PIPELINED, "task")
        try:
            sc.pool("be")
            assert sc.upstream_out is not None
            sc.client.data_received(b"".join(
                b"GET /api/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n)))
            answered = sc.client_out.bytes()  # (no loop turn yet)
            return answered, sc.upstream_out.bytes(), sc.client_out.closed
        finally:
            sc.close()

    out, upstream, closed = asyncio.run(main())
    assert out.count(b"HTTP/1.1 401 Unauthorized") == n and not closed
    assert upstream == b""
