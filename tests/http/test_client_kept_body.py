"""An upstream connection sending a body kept in a file (proxy_pass's buffered body,
and a subrequest's): every byte, then the request's end; a file that cannot be read
back is the gateway's failure, typed, and the connection is aborted (the server must
never take a short body for a whole request)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from fastgate.http.buffered_body import PIECE, BufferedBody, KeptBodyError
from fastgate.http.client import HttpClientConnection


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.out += data

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


def _kept(tmp_path: Path, data: bytes) -> BufferedBody:
    body = BufferedBody(0, str(tmp_path))
    body.write(data)
    return body


@pytest.mark.parametrize("engine", ["httptools", "h11"])
def test_the_whole_body_goes_then_the_end(tmp_path: Path, engine: str) -> None:
    data = os.urandom(3 * PIECE + 5)
    body = _kept(tmp_path, data)

    async def main() -> _Transport:
        conn = HttpClientConnection(engine)
        transport = _Transport()
        conn.connection_made(transport)
        conn.send_head(b"POST", b"/up", [(b"host", b"be")], len(data))
        await conn.send_kept_body(body, 1.0)
        return transport

    try:
        transport = asyncio.run(main())
    finally:
        body.close()
    head, _, sent = bytes(transport.out).partition(b"\r\n\r\n")
    assert sent == data and not transport.aborted
    assert b"content-length: %d" % len(data) in head.lower()


@pytest.mark.parametrize("engine", ["httptools", "h11"])
def test_a_file_cut_short_aborts_the_connection(tmp_path: Path, engine: str) -> None:
    body = _kept(tmp_path, os.urandom(2 * PIECE))
    f = body._file  # what a full disk, or another hand, could leave
    assert f is not None
    f.flush()
    os.ftruncate(f.fileno(), PIECE + 10)

    async def main() -> tuple[_Transport, str]:
        conn = HttpClientConnection(engine)
        transport = _Transport()
        conn.connection_made(transport)
        conn.send_head(b"POST", b"/up", [(b"host", b"be")], body.size)
        with pytest.raises(KeptBodyError) as e:
            await conn.send_kept_body(body, 1.0)
        return transport, str(e.value)

    try:
        transport, message = asyncio.run(main())
    finally:
        body.close()
    assert transport.aborted
    assert message == (f"the request body's temporary file ended at {PIECE + 10} of {2 * PIECE} "
                       "bytes")
