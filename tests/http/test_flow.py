"""The body buffer between a protocol's callbacks and a coroutine (http.flow)."""

from __future__ import annotations

import asyncio

import pytest

from fastgate.http.flow import BodyBuffer, StreamClosed


def test_arrived_is_the_whole_body_come_not_yet_read() -> None:
    body = BodyBuffer(lambda: None, lambda: None)
    body.push(b"ab")
    assert not body.arrived
    body.finish()
    assert body.arrived and not body.done  # come, not read
    assert asyncio.run(body.read(1.0)) == b"ab"
    assert asyncio.run(body.read(1.0)) is None
    assert body.done


def test_a_failed_body_has_not_arrived() -> None:
    body = BodyBuffer(lambda: None, lambda: None)
    body.push(b"ab")
    body.fail(StreamClosed("gone"))
    assert not body.arrived
    assert asyncio.run(body.read(1.0)) == b"ab"
    with pytest.raises(StreamClosed):
        asyncio.run(body.read(1.0))
