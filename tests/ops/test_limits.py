"""The shared limit table: nginx's leaky bucket, connection counts, and a size that
never grows."""

from __future__ import annotations

import mmap
import os

import pytest

from fastgate.ops.limit_table import LimitTable

RATE = 10_000  # 10 r/s in milli-requests


def table(size: int = 1 << 20) -> LimitTable:
    return LimitTable(mmap.mmap(-1, size))


def test_rate_without_burst() -> None:
    t = table()
    now = 5_000_000
    assert t.request(b"a", now, RATE, 0, True) == 0
    assert t.request(b"a", now, RATE, 0, True) == -1  # same millisecond: over the rate
    assert t.request(b"a", now + 50, RATE, 0, True) == -1  # 50 ms < 100 ms
    assert t.request(b"a", now + 100, RATE, 0, True) == 0
    assert t.request(b"b", now + 100, RATE, 0, True) == 0  # keys are independent


def test_burst_and_accounting() -> None:
    t = table()
    now = 5_000_000
    got = [t.request(b"k", now, RATE, 5000, True) for _ in range(7)]
    assert got == [0, 1000, 2000, 3000, 4000, 5000, -1]  # 1 + burst 5, then refused
    # a refused request is not accounted; 300 ms later three have leaked out
    assert t.request(b"k", now + 300, RATE, 5000, True) == 3000


def test_check_without_commit() -> None:
    t = table()
    assert t.request(b"k", 1000, RATE, 0, False) == 0
    assert t.request(b"k", 1000, RATE, 0, True) == 0
    assert t.request(b"k", 1000, RATE, 0, False) == -1


def test_connections() -> None:
    t = table()
    assert t.acquire(b"u", 2) and t.acquire(b"u", 2)
    assert not t.acquire(b"u", 2)
    t.release(b"u")
    assert t.acquire(b"u", 2)
    t.release(b"unknown")  # harmless


def test_never_grows_past_its_size() -> None:
    t = table(64 * 1024)
    for i in range(100_000):
        t.request(str(i).encode(), 1000 + i, RATE, 0, True)
    assert t.used <= t.capacity
    assert t.request(b"99999", 200_000, RATE, 0, True) >= 0  # recent keys are still served


def test_shared_across_fork() -> None:
    t = table()
    pid = os.fork()
    if pid == 0:
        code = 0 if t.request(b"shared", 1000, RATE, 0, True) == 0 else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert t.request(b"shared", 1000, RATE, 0, True) == -1  # the child's request counted


def test_too_small() -> None:
    with pytest.raises(ValueError):
        LimitTable(mmap.mmap(-1, 64))
