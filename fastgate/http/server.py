"""One client connection: bytes in through the engine, requests handed to the phases one
at a time (pipelined requests answered in order), timeouts, back-pressure both ways,
lingering close, and the raw tunnel after an upgrade."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections import deque
from typing import TYPE_CHECKING, Any

from fastgate.http.engine import ProtocolError, RequestHead
from fastgate.http.flow import BodyBuffer, StreamClosed, WriteGate
from fastgate.http.engines import server_engine

if TYPE_CHECKING:
    from fastgate.config.model import Listen
    from fastgate.ops.worker import Worker

LINGERING_TIME = 5.0
_ids = itertools.count(1)


class ClientGone(Exception):
    pass


class ClientConnection(asyncio.Protocol):
    def __init__(self, worker: "Worker", listen: "Listen") -> None:
        self.worker = worker
        self.listen = listen
        self.scheme = "https" if listen.ssl else "http"
        self.connection_id = next(_ids)
        self.requests = 0
        self.transport: asyncio.Transport | None = None
        self.engine: Any = None
        self.gate = WriteGate()
        self.closed = False
        self.body: BodyBuffer | None = None
        self._heads: deque[RequestHead | ProtocolError | None] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._got_bytes = False
        self._lingering = False
        self._tunnel: Any = None
        self.idle = True  # between requests: a graceful stop may close it at once
        self.remote_addr = ""
        self.remote_port = 0
        self.server_addr = ""
        self.server_port = listen.port

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("", 0)
        sock = transport.get_extra_info("sockname") or ("", 0)
        self.remote_addr, self.remote_port = str(peer[0]), int(peer[1]) if len(peer) > 1 else 0
        self.server_addr, self.server_port = str(sock[0]), int(sock[1]) if len(sock) > 1 else 0
        raw = transport.get_extra_info("socket")
        if raw is not None:
            try:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        count, size = self.worker.default_settings(self.listen).large_client_header_buffers
        self.engine = server_engine(self.worker.engine, self, count * size, size)
        self.worker.connection_opened(self)
        self._task = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel.write(data)
            return
        if self._lingering:
            return
        self._got_bytes = True
        assert self.engine is not None
        self.engine.feed(data)

    def eof_received(self) -> bool:
        if self._tunnel is not None:
            if self._tunnel.transport is not None and self._tunnel.transport.can_write_eof():
                self._tunnel.transport.write_eof()
            return True
        if self._lingering:
            self.close()
            return False
        assert self.engine is not None
        self.engine.feed(b"")
        return True  # keep our side open to finish the response in progress

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gate.close(ClientGone("client closed the connection"))
        if self.body is not None:
            self.body.fail(ClientGone("client closed the connection"))
        self._push(None)
        if self._tunnel is not None:
            self._tunnel.close()
        self.worker.connection_closed(self)

    def pause_writing(self) -> None:
        self.gate.pause()

    def resume_writing(self) -> None:
        self.gate.resume()

    # --- engine callbacks --------------------------------------------------------------------

    def on_request(self, head: RequestHead) -> None:
        assert self.transport is not None
        self.body = BodyBuffer(self.transport.pause_reading, self.transport.resume_reading)
        self._push(head)

    def on_body(self, data: bytes) -> None:
        if self.body is not None:
            self.body.push(data)

    def on_end(self) -> None:
        if self.body is not None:
            self.body.finish()

    def on_error(self, error: ProtocolError) -> None:
        if self.body is not None and not self.body.done:
            # the body of the request in progress is malformed: whoever reads it fails;
            # the engine will not parse further, so the connection ends after it
            self.body.fail(error)
        self._push(error)

    def on_eof(self) -> None:
        self._push(None)

    # --- the request loop ----------------------------------------------------------------------

    def _push(self, item: RequestHead | ProtocolError | None) -> None:
        self._heads.append(item)
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def _next(self, timeout: float) -> RequestHead | ProtocolError | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._heads:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise asyncio.TimeoutError
            self._waiter = loop.create_future()
            try:
                await asyncio.wait_for(self._waiter, remaining)
            finally:
                self._waiter = None
        return self._heads.popleft()

    async def _serve(self) -> None:
        worker = self.worker
        try:
            while not self.closed:
                settings = worker.default_settings(self.listen)
                # nginx: client_header_timeout for the first request, keepalive_timeout
                # while idle between requests
                timeout = (settings.keepalive_timeout if self.requests
                           else settings.client_header_timeout)
                try:
                    item = await self._next(timeout)
                except asyncio.TimeoutError:
                    # idle keep-alive, or a head that never completed (slowloris): close
                    # without an answer, as nginx does
                    if self._got_bytes:
                        worker.log.info("client timed out (110: Connection timed out) "
                                        "while reading client request headers", self)
                    break
                if item is None:
                    break
                if isinstance(item, ProtocolError):
                    await self._reject(item)
                    break
                self.requests += 1
                self.idle = False
                try:
                    keep = await worker.handle(self, item)
                finally:
                    self.idle = True
                if self.closed or not keep or worker.stopping:
                    break
                assert self.engine is not None
                if not self.engine.keep_alive:
                    break
                if self.requests >= settings.keepalive_requests:
                    break
                self._got_bytes = False
                self.engine.start_next()
        except ClientGone:
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self.finish()

    async def _reject(self, error: ProtocolError) -> None:
        """Answer a request we could not parse, then close."""
        if self.closed:
            return
        await self.worker.reject(self, error)

    # --- used by the phases --------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if data and not self.closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        await self.gate.wait()

    def finish(self) -> None:
        """Close after the last response; linger if the client may still be sending, so
        that our response is not lost to a TCP reset (nginx's lingering close)."""
        if self.closed or self.transport is None:
            return
        if self._tunnel is not None:
            return
        assert self.engine is not None
        if self.body is not None and not self.body.done and self.transport.can_write_eof():
            self._lingering = True
            try:
                self.transport.write_eof()
            except (OSError, RuntimeError):
                self.close()
                return
            asyncio.get_running_loop().call_later(LINGERING_TIME, self.close)
            return
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Cut the connection: a response that cannot be completed must not look complete."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def start_tunnel(self, upstream: Any, client_rest: bytes, upstream_rest: bytes) -> None:
        """After a 101: bytes pass through unchanged both ways until either side closes."""
        self._tunnel = upstream
        upstream.tunnel = self
        if upstream_rest:
            self.write(upstream_rest)
        if client_rest:
            upstream.write(client_rest)

    # the upstream side of a tunnel calls these
    def tunnel_write(self, data: bytes) -> None:
        self.write(data)

    def tunnel_eof(self) -> None:
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()

    def tunnel_close(self) -> None:
        self.close()
