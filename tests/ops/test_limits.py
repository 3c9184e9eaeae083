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
    # over the rate: -1 - the excess it would have had (nginx logs it, in thousandths)
    assert t.request(b"a", now, RATE, 0, True) == -1 - 1000  # same millisecond
    assert t.request(b"a", now + 50, RATE, 0, True) == -1 - 500  # 50 ms < 100 ms
    assert t.request(b"a", now + 100, RATE, 0, True) == 0
    assert t.request(b"b", now + 100, RATE, 0, True) == 0  # keys are independent


def test_burst_and_accounting() -> None:
    t = table()
    now = 5_000_000
    got = [t.request(b"k", now, RATE, 5000, True) for _ in range(7)]
    assert got == [0, 1000, 2000, 3000, 4000, 5000, -1 - 6000]  # 1 + burst 5, then refused
    # a refused request is not accounted; 300 ms later three have leaked out
    assert t.request(b"k", now + 300, RATE, 5000, True) == 3000


def test_check_without_commit() -> None:
    t = table()
    assert t.request(b"k", 1000, RATE, 0, False) == 0
    assert t.request(b"k", 1000, RATE, 0, True) == 0
    assert t.request(b"k", 1000, RATE, 0, False) == -1 - 1000


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
    assert t.request(b"shared", 1000, RATE, 0, True) == -1 - 1000  # the child's counted


def test_too_small() -> None:
    with pytest.raises(ValueError):
        LimitTable(mmap.mmap(-1, 64))


# --- the fleet: what a zone with sync exchanges --------------------------------------------


def _hash_of(t: LimitTable, key: bytes, now: int) -> int:
    t.request(key, now, RATE, 10**9, True)
    ((h, _),) = t.drain()
    return h


def test_admitted_requests_are_drained_once() -> None:
    t = table()
    for _ in range(3):
        t.request(b"a", 1000, RATE, 10**9, True)
    t.request(b"b", 1000, RATE, 10**9, False)  # not accounted: not told either
    t.request(b"c", 1000, RATE, 0, True)
    t.request(b"c", 1000, RATE, 0, True)  # refused: not told
    got = dict(t.drain())
    assert sorted(got.values()) == [1, 3]
    assert t.drain() == []


def test_the_same_key_has_the_same_hash_in_every_instance() -> None:
    assert _hash_of(table(), b"alice", 1000) == _hash_of(table(1 << 16), b"alice", 1000)


def test_absorbed_requests_count_as_admitted_here() -> None:
    here, there = table(), table()
    h = _hash_of(there, b"k", 1000)
    here.absorb(h, 1000, RATE, 3)  # three admitted elsewhere at t=1000
    # as if the three had come here: the excess is 2000 (nginx's first request is free)
    assert here.request(b"k", 1000, RATE, 10**9, False) == 3000
    assert here.request(b"k", 1000, RATE, 2000, True) == -1 - 3000  # over a burst of 2
    assert here.request(b"k", 1300, RATE, 2000, True) == 0  # 300 ms leaked three
    assert here.drain() == [(h, 1)]  # only what it admitted itself is to be told


def test_remote_connections_count_beside_local_ones() -> None:
    t = table()
    assert t.acquire(b"k", 2)
    whole, changed = t.changes()
    assert not whole and len(changed) == 1 and changed[0][1] == 1
    h = changed[0][0]
    t.set_remote(h, 1)
    assert not t.acquire(b"k", 2)  # one here, one elsewhere
    t.set_remote(h, 0)
    assert t.acquire(b"k", 2)
    t.release(b"k")
    t.release(b"k")
    assert t.changes() == (False, [(h, 0)])
    assert t.changes(True) == (True, [])  # asked whole: nobody has any


def test_a_ring_overflow_falls_back_to_a_whole_scan() -> None:
    t = table()
    for i in range(3000):
        t.request(b"%d" % i, 1000, RATE, 10**9, True)
    got = t.drain()
    assert len(got) == 3000 and all(n == 1 for _, n in got)
    assert t.drain() == []
    t.request(b"1", 2000, RATE, 10**9, True)
    assert len(t.drain()) == 1  # the ring works again after the scan


def test_one_worker_leads_until_its_lease_lapses() -> None:
    t = table()
    assert t.lead(1, 1000, 1000)
    assert not t.lead(2, 1500, 1000)
    assert t.lead(1, 1900, 1000)  # renewed to 2900
    assert not t.lead(2, 2800, 1000)
    assert t.lead(2, 2901, 1000)  # worker 1 went quiet
    assert t.lead(2, 2950, 0) and t.lead(3, 2950, 1000)  # a lease given up is free
