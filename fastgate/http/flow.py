"""Flow control between two transports: bodies pass through a bounded buffer, and
whoever fills it past the high-water mark stops reading until it drains. Memory per
stream is bounded whatever the body size (never a whole body in memory)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from fastgate.errors import FastgateError

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


async def _wait(fut: asyncio.Future[None], timeout: float | None) -> None:
    if timeout is None:
        await fut
    else:
        await asyncio.wait_for(fut, timeout)


class StreamClosed(FastgateError):
    """The other side went away; carries why."""


class BodyBuffer:
    """Chunks from a protocol callback to a coroutine, with back-pressure.

    ``pause``/``resume`` stop and restart reading on the producing transport.
    """

    __slots__ = ("_chunks", "_size", "_done", "_error", "_waiter", "_pause", "_resume",
                 "_paused", "_dropping")

    def __init__(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._pause = pause
        self._resume = resume
        self._paused = False
        self._dropping = False

    def push(self, data: bytes) -> None:
        if not data or self._dropping:
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER and not self._paused:
            self._paused = True
            self._pause()
        self._wake()

    def finish(self) -> None:
        self._done = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        if not self._done:
            self._error = error
        self._wake()

    def discard(self) -> None:
        """Nobody will read the rest: what is buffered and what still comes is dropped,
        and the transport reads on (a reader left behind would fail)."""
        self._dropping = True
        self._chunks.clear()
        self._size = 0
        self.fail(StreamClosed("the request body was discarded"))
        if self._paused:
            self._paused = False
            self._resume()

    @property
    def done(self) -> bool:
        return self._done and not self._chunks

    @property
    def arrived(self) -> bool:
        """The whole body has come (it may not have been read yet)."""
        return self._done and self._error is None

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def read(self, timeout: float | None) -> bytes | None:
        """The next chunk, or None at the end. ``asyncio.TimeoutError`` when nothing
        arrives within ``timeout`` seconds; the failure given to ``fail`` otherwise."""
        while not self._chunks:
            if self._done:
                return None
            if self._error is not None:
                raise self._error
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            try:
                await _wait(self._waiter, timeout)
            finally:
                self._waiter = None
        data = self._chunks.popleft()
        self._size -= len(data)
        if self._paused and self._size < LOW_WATER:
            self._paused = False
            self._resume()
        return data


class WriteGate:
    """``pause_writing``/``resume_writing`` of a protocol as an awaitable."""

    __slots__ = ("paused", "_waiter", "_closed")

    def __init__(self) -> None:
        # read on every response (a plain slot: a property is a Python call each time);
        # set only by pause() and resume()
        self.paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._closed: BaseException | None = None

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def close(self, error: BaseException) -> None:
        self._closed = error
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def wait(self, timeout: float | None = None) -> None:
        while self.paused:
            if self._closed is not None:
                raise self._closed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await _wait(self._waiter, timeout)
            finally:
                self._waiter = None
        if self._closed is not None:
            raise self._closed
