"""The in-process scenario harness: a real worker (config, phases, engines, exchanges)
with transports that keep what is written — client bytes in, upstream bytes out,
upstream bytes in, client bytes out — and no process, socket or clock of its own.

``path`` chooses how the proxy exchange runs: "callback" (over a pooled idle upstream
connection, in callbacks: ``proxy.fast``) or "task" (``proxy_pass``'s content handler
is the task path, ``proxy.exchange``, which takes the same pooled connection)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from fastgate.config import load_config
from fastgate.ops.worker import Worker
from fastgate.proxy.upstream import UpstreamConnection

ENGINES = ("h11", "httptools")
PATHS = ("callback", "task")
_DATE = re.compile(rb"(?im)^(date: )[^\r\n]*")


class Sink:
    """A transport that keeps what is written to it."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.aborted = False
        self.closed = False
        self.paused = False  # reading paused (back-pressure)
        self.eof_written = False  # shut for writing (a lingering close)

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def bytes(self) -> bytes:
        return b"".join(self.out)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True


def connected(worker: Worker, client_transport: Sink, group: str = "be"
              ) -> tuple[Any, UpstreamConnection, Sink]:
    """A client connection of ``worker``'s first address on ``client_transport``, and an
    idle upstream connection pooled in ``group`` (the callback path takes it), with the
    transport that keeps what it is sent."""
    client = worker.connection(worker.listens()[0])
    client.connection_made(client_transport)  # type: ignore[arg-type]
    peer = worker.groups[group].primary[0]
    upstream = UpstreamConnection(peer)
    upstream_out = Sink()
    upstream.connection_made(upstream_out)  # type: ignore[arg-type]
    peer.idle.append(upstream)
    return client, upstream, upstream_out


class Scenario:
    """One worker built from ``http_block`` (the inside of ``http { }``; its upstream
    ``be`` at 127.0.0.1:9 is reached only through the connections the harness pools)."""

    def __init__(self, tmp: Path, engine: str, http_block: str,
                 path: str = "callback") -> None:
        assert path in PATHS
        conf = tmp / f"scenario-{engine}.conf"
        conf.write_text(f"error_log {tmp}/error.log info;\nhttp {{\n{http_block}\n}}\n")
        self.worker = Worker(load_config(str(conf)), engine)
        self.log: list[tuple[str, str]] = []  # (level, message) of the error log
        write = self.worker.log.write

        def record(level: str, message: str, *args: Any) -> None:
            self.log.append((level, message))
            write(level, message, *args)

        self.worker.log.write = record  # type: ignore[method-assign]
        phases = self.worker.phases
        if path == "task":  # before the first request: plans take the handler then
            phases.content.proxy = phases.upstream.proxy  # type: ignore[assignment]
        self.client_out = Sink()
        self.client = self.worker.connection(self.worker.listens()[0])
        self.client.connection_made(self.client_out)  # type: ignore[arg-type]
        self.upstream_out: Sink | None = None
        self.upstream: UpstreamConnection | None = None

    def pool(self, group: str = "be") -> None:
        """One idle upstream connection in ``group``'s first server's pool."""
        peer = self.worker.groups[group].primary[0]
        self.upstream = UpstreamConnection(peer)
        self.upstream_out = Sink()
        self.upstream.connection_made(self.upstream_out)  # type: ignore[arg-type]
        peer.idle.append(self.upstream)

    def busy(self) -> bool:
        """A task or a callback exchange of the worker's is still running."""
        return bool(self.worker._tasks or self.worker.exchanges)

    async def settle(self, done: Any, limit: float = 2.0) -> None:
        """Let the event loop run until ``done()``, at most ``limit`` seconds (a task
        may wait on a real connect)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        for i in range(100000):
            await asyncio.sleep(0 if i < 50 else 0.001)
            if done() or loop.time() > end:
                return

    async def get(self, path: str, limit: float = 2.0) -> bytes:
        """A GET of ``path`` that the gateway answers itself (no upstream in the
        scenario's hands): what the client got for it."""
        self.client_out.out.clear()
        self.client.data_received(f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        await self.settle(lambda: not self.busy() and bool(self.client_out.out), limit)
        return self.client_out.bytes()

    async def exchange(self, request: bytes, response: bytes | None,
                       group: str = "be") -> tuple[bytes, bytes]:
        """``request`` from the client; ``response`` from the upstream once the request
        has reached it, and the upstream closes if that does not end the exchange (or
        at once: None). Returns (what the client
        got, what the upstream got), the Date header's value blanked. The request's
        location proxies to ``group``: an idle connection waits in its first server's
        pool."""
        self.pool(group)
        assert self.upstream is not None and self.upstream_out is not None
        up, down = self.upstream_out, self.client_out
        self.client.data_received(request)
        await self.settle(lambda: up.out or down.out or not self.busy())
        if up.out:
            if response is not None:
                self.upstream.data_received(response)
                await self.settle(lambda: not self.busy(), 0.3)
            if self.busy():  # no response, or not all of one: the upstream closes
                self.upstream.connection_lost(None)
                await self.settle(lambda: not self.busy())
        return (_DATE.sub(rb"\1-", self.client_out.bytes()),
                self.upstream_out.bytes())

    def close(self) -> None:
        self.worker.close()
