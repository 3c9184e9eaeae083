"""ssl_ocsp_cache's shared table (fastgate.ops.ocsp_cache): an answer kept by one
process is read by another forked from the same parent; an answer holds until its time;
a full neighbourhood gives up the answer that expires first; a key is compared whole."""

from __future__ import annotations

import hashlib
import mmap
import multiprocessing
import os

from fastgate.http.ocsp import REVOKED, UNKNOWN
from fastgate.ops.ocsp_cache import SharedAnswers

NOW = 1_000_000.0


def _table(size: int = 64 * 1024) -> SharedAnswers:
    return SharedAnswers(mmap.mmap(-1, size), multiprocessing.Lock())


def _key(n: int) -> bytes:
    return hashlib.sha256(b"%d" % n).digest()


def test_kept_until_its_time() -> None:
    t = _table()
    assert t.get(_key(1), NOW) is None
    t.put(_key(1), REVOKED, NOW + 10, NOW)
    t.put(_key(2), "", NOW + 10, NOW)
    t.put(_key(3), UNKNOWN, NOW + 10, NOW)
    assert [t.get(_key(i), NOW) for i in (1, 2, 3)] == [REVOKED, "", UNKNOWN]
    assert t.get(_key(1), NOW + 10) is None  # (expired)
    t.put(_key(1), "", NOW + 20, NOW + 11)  # a new answer replaces the old one
    assert t.get(_key(1), NOW + 12) == ""


def test_a_key_is_compared_whole() -> None:
    t = _table()
    key = _key(7)
    t.put(key, "", NOW + 10, NOW)
    twin = key[:8] + bytes(24)  # the same slot, another certificate
    assert t.get(twin, NOW) is None
    t.put(twin, REVOKED, NOW + 10, NOW)
    assert (t.get(key, NOW), t.get(twin, NOW)) == ("", REVOKED)


def test_a_full_neighbourhood_gives_up_what_expires_first() -> None:
    t = _table(48 * 8)  # eight slots: one neighbourhood
    assert t.slots == 8
    for i in range(8):
        t.put(_key(i), "", NOW + 100 + i, NOW)
    t.put(_key(99), REVOKED, NOW + 50, NOW)
    assert t.get(_key(0), NOW) is None  # it expired first
    assert t.get(_key(99), NOW) == REVOKED
    assert all(t.get(_key(i), NOW) == "" for i in range(1, 8))


def test_workers_share_it() -> None:
    t = _table()
    t.put(_key(1), REVOKED, NOW + 10, NOW)
    pid = os.fork()
    if pid == 0:  # the "worker": reads the parent's, keeps one of its own
        ok = t.get(_key(1), NOW) == REVOKED
        t.put(_key(2), UNKNOWN, NOW + 10, NOW)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert t.get(_key(2), NOW) == UNKNOWN
