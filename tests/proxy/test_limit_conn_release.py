"""``limit_conn`` counts a request until the client has all of its response — and no
longer (issue #21, item 6): the count is given back before the bytes that complete the
response are written, since the client may send its next request the moment they
arrive, before the task that wrote them runs again. Checked in process at each write to
the client, on both engines and both exchange paths."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from scenario import Sink as KeptWrites
from scenario import connected

from fastgate.config import load_config
from fastgate.ops.worker import Worker

KEY = b"k"


class Sink(KeptWrites):
    """The transport of test_callback_errors; ``on_write`` sees each write."""

    def __init__(self, on_write: Any = None) -> None:
        super().__init__()
        self.on_write = on_write

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.on_write is not None:
            self.on_write(data)


def _config(tmp_path: Path, locations: str) -> Path:
    """A configuration with one pooled upstream and a limit_conn zone keyed by X-Who."""
    conf = tmp_path / "t.conf"
    conf.write_text(f"""error_log {tmp_path}/error.log info;
http {{
  upstream be {{ server 127.0.0.1:9; keepalive 8; }}
  limit_conn_zone $http_x_who zone=c:1m;
  server {{ listen 127.0.0.1:8080; {locations} }} }}
""")
    return conf


def _request(path: str) -> bytes:
    """The task path: a request with a body (the callback path takes bodiless ones)."""
    if path == "task":
        return b"POST /x HTTP/1.1\r\nHost: a\r\nX-Who: k\r\nContent-Length: 2\r\n\r\nhi"
    return b"GET /x HTTP/1.1\r\nHost: a\r\nX-Who: k\r\n\r\n"


@pytest.mark.parametrize("engine", ["h11", "httptools"])
@pytest.mark.parametrize("path,response", [
    ("callback", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ("task", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ("task", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
    ("task", b"HTTP/1.1 204 No Content\r\n\r\n"),
], ids=["callback", "task-length", "task-chunked", "task-204"])
def test_the_count_is_free_when_the_client_has_the_response(
        tmp_path: Path, engine: str, path: str, response: bytes) -> None:
    conf = _config(tmp_path, "location / { limit_conn c 1; proxy_pass http://be; }")

    async def main() -> list[tuple[bytes, bool]]:
        worker = Worker(load_config(str(conf)), engine)
        table = worker.zones["c"]
        seen: list[tuple[bytes, bool]] = []  # (bytes written, whether the count was free)

        def on_write(data: bytes) -> None:
            free = table.acquire(KEY, 1)
            if free:
                table.release(KEY)
            seen.append((data, free))

        try:
            client, upstream, upstream_out = connected(worker, Sink(on_write))
            client.data_received(_request(path))
            for _ in range(20):
                if upstream_out.out and (path == "callback" or b"hi" in b"".join(upstream_out.out)):
                    break
                await asyncio.sleep(0)
            assert upstream_out.out, "the request went upstream"
            assert not table.acquire(KEY, 1), "the request holds its count while it waits"
            upstream.data_received(response)
            for _ in range(20):
                await asyncio.sleep(0)
            assert table.acquire(KEY, 1), "released once, and only once"
            table.release(KEY)
        finally:
            worker.close()
        return seen

    seen = asyncio.run(main())
    written = b"".join(data for data, _ in seen)
    assert written.startswith(b"HTTP/1.1 2"), written
    # the write that leaves the client with the whole response found the count free
    assert seen[-1][1], f"the response's last bytes went out with the count held: {seen}"


@pytest.mark.parametrize("engine", ["h11", "httptools"])
@pytest.mark.parametrize("path", ["callback", "task"])
@pytest.mark.parametrize("when", ["waiting", "mid-response", "upstream-reset"])
def test_the_count_is_free_when_the_request_ends_otherwise(
        tmp_path: Path, engine: str, path: str, when: str) -> None:
    # an upstream failure is an internal redirect to @fallback: the count goes with it
    conf = _config(tmp_path, """
      location / { limit_conn c 1; error_page 502 504 = @fallback; proxy_pass http://be; }
      location @fallback { return 200 "fallback"; }""")

    async def main() -> tuple[bool, bool]:
        worker = Worker(load_config(str(conf)), engine)
        table = worker.zones["c"]
        try:
            client_out = Sink()
            client, upstream, _ = connected(worker, client_out)
            client.data_received(_request(path))
            for _ in range(20):
                await asyncio.sleep(0)
            held = not table.acquire(KEY, 1)
            if not held:
                table.release(KEY)
            if when == "mid-response":
                upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok")
                for _ in range(5):
                    await asyncio.sleep(0)
            if when == "upstream-reset":
                upstream.connection_lost(ConnectionResetError())
            else:
                client.connection_lost(None)  # the client goes away
            for _ in range(50):  # (a retry connects for real, to a closed port)
                await asyncio.sleep(0.01)
            if when == "upstream-reset":  # answered by the internal redirect
                assert b"".join(client_out.out).endswith(b"fallback"), client_out.out
            free = table.acquire(KEY, 1)
            if free:
                table.release(KEY)
            # and not given back twice: one more request holds the only slot
            if free:
                assert table.acquire(KEY, 1) and not table.acquire(KEY, 1)
                table.release(KEY)
        finally:
            worker.close()
        return held, free

    held, free = asyncio.run(main())
    assert held, "the request held its count while in progress"
    assert free, f"the count stayed taken after the request ended ({when})"
