"""A stream session in process (``proxy.stream``), against a host that records what
the worker would log: a bug under a callback is logged and ends the session (500)
rather than escaping as a traceback; the worker's stop ends a session and logs it;
least_conn counts a server's sessions while they last."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from fastgate.config import load_config
from fastgate.proxy.stream import Session, Streams


class Host:
    def __init__(self, room: int = 100) -> None:
        self.room = room  # sessions at once (worker_connections)
        self.errors: list[tuple[str, str]] = []
        self.logged: list[Session] = []
        self.open: set[Session] = set()

    def stream_admit(self) -> bool:
        return len(self.open) < self.room

    def stream_zone(self, name: str) -> Any:
        raise AssertionError("no zones here")

    def stream_limited(self, zone: str) -> None:
        raise AssertionError("no zones here")

    def stream_error(self, level: str, message: str, connection: int = 0) -> None:
        self.errors.append((level, message))

    def stream_logged(self, session: Session) -> None:
        self.logged.append(session)

    def stream_opened(self, session: Session) -> int:
        self.open.add(session)
        return len(self.logged) + len(self.open)

    def stream_closed(self, session: Session) -> None:
        self.open.discard(session)


def _streams(tmp_path: Path, body: str, room: int = 100) -> tuple[Streams, Host]:
    path = tmp_path / "s.conf"
    path.write_text(f"stream {{ {body} }}\n")
    config = load_config(str(path))
    assert config.stream is not None
    host = Host(room)
    return Streams(config.stream, host), host


async def _serve(streams: Streams) -> tuple[asyncio.AbstractServer, int]:
    listen = streams.listens()[0]
    server = await asyncio.get_running_loop().create_server(
        lambda: streams.accept(listen), "127.0.0.1", listen.port)
    return server, listen.port


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(check: Any) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached")


def test_a_bug_under_a_callback_is_logged_and_ends_the_session(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    streams, host = _streams(tmp_path, f"server {{ listen 127.0.0.1:{_port()}; "
                                       "ssl_preread on; return x; }")

    def broken(self: Session) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Session, "_read_hello", broken)

    async def run() -> bytes:
        server, port = await _serve(streams)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x16\x03\x01")
        got = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await _until(lambda: host.logged)
        server.close()
        return got

    assert asyncio.run(run()) == b""
    assert host.logged[0].status == 500
    assert any(level == "alert" and "unexpected error: RuntimeError: a bug" in message
               for level, message in host.errors)
    assert not host.open


def test_least_conn_counts_sessions_and_abort_logs_them(tmp_path: Path) -> None:
    async def run() -> None:
        backend = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        bport = backend.sockets[0].getsockname()[1]
        streams, host = _streams(tmp_path, f"upstream u {{ least_conn; server 127.0.0.1:{bport}; "
                                           f"server 127.0.0.1:{bport} weight=2; }}\n"
                                           f"server {{ listen 127.0.0.1:{_port()}; proxy_pass u; }}")
        server, port = await _serve(streams)
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        group = streams.groups["u"]
        await _until(lambda: sum(p.busy for p in group.primary) == 3)
        assert sorted(p.busy for p in group.primary) == [1, 2]  # by weight, as nginx's
        for session in list(host.open):
            session.abort()
        assert len(host.logged) == 3 and not host.open
        assert sum(p.busy for p in group.primary) == 0
        for _, w in clients:
            w.close()
        server.close()
        backend.close()

    asyncio.run(run())


def test_past_worker_connections_a_connection_is_closed_unlogged(tmp_path: Path) -> None:
    streams, host = _streams(tmp_path, f"server {{ listen 127.0.0.1:{_port()}; "
                                       "ssl_preread on; preread_timeout 5s; return x; }", room=1)

    async def run() -> bytes:
        server, port = await _serve(streams)
        first = await asyncio.open_connection("127.0.0.1", port)  # (waits for its hello)
        await _until(lambda: len(host.open) == 1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            got = await asyncio.wait_for(reader.read(), 5)
        except ConnectionResetError:
            got = b"<reset>"
        writer.close()
        first[1].close()
        await _until(lambda: not host.open)
        server.close()
        return got

    assert asyncio.run(run()) in (b"", b"<reset>")
    assert len(host.logged) == 1  # the first only, when it ended


def test_a_name_without_a_resolver_is_a_500(tmp_path: Path) -> None:
    """(nginx's: a value it cannot go on with is its internal error; one that does not
    resolve, a 502)"""
    streams, host = _streams(tmp_path, f"server {{ listen 127.0.0.1:{_port()}; "
                                       "set $to db.internal:5432; proxy_pass $to; }")

    async def run() -> bytes:
        server, port = await _serve(streams)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        got = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await _until(lambda: host.logged)
        server.close()
        return got

    assert asyncio.run(run()) == b""
    assert host.logged[0].status == 500
    assert any("no resolver defined to resolve db.internal, client: 127.0.0.1" in message
               for _, message in host.errors)
