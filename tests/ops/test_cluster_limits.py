"""LimitSync, in process: two instances' tables exchanging what the store would carry
between them (the messages handed over directly) — limit_req's fleet-wide bucket,
limit_conn's counts, leases, a takeover, an outage, and messages that are not ones."""

from __future__ import annotations

import json
import mmap

from hypothesis import given
from hypothesis import strategies as st

from fastgate.config.model import LimitZone
from fastgate.ops.cluster_limits import STALE_AFTER, LimitSync
from fastgate.ops.limit_table import LimitTable
from fastgate.variables import Registry

KEY = Registry().compile("$http_x_key")


def _instance(name: str, rate: int = 10_000, kind: str = "req") -> tuple[LimitSync, LimitTable]:
    zone = LimitZone("z", kind, KEY, 1 << 20, rate if kind == "req" else 0, sync=True)
    tables = {"z": LimitTable(mmap.mmap(-1, 1 << 20))}
    return LimitSync({"z": zone}, tables, name), tables["z"]


def _pass(frm: LimitSync, to: list[LimitSync], now: float) -> None:
    for msg in frm.outgoing(now):
        for other in to:
            assert other.receive(msg.encode(), now)


def test_requests_admitted_anywhere_fill_every_bucket() -> None:
    (a, ta), (b, tb) = _instance("a"), _instance("b")
    now = 100.0
    ms = int(now * 1000)
    assert ta.request(b"k", ms, 10_000, 0, True) == 0  # a admits the first
    _pass(a, [b], now)
    assert tb.request(b"k", ms, 10_000, 0, True) < 0  # b has heard: over 10 r/s
    assert tb.request(b"k", ms + 100, 10_000, 0, True) == 0  # 100 ms later: room again
    _pass(b, [a], now + 0.1)
    assert ta.request(b"k", ms + 100, 10_000, 0, True) < 0
    _pass(a, [b], now + 0.1)  # nothing new from a: no message
    assert a.outgoing(now + 0.2) == []


def test_an_instance_ignores_its_own_messages_and_unknown_zones() -> None:
    a, ta = _instance("a")
    a2, _ = _instance("a")  # another worker of the same instance
    ta.request(b"k", 1000, 10_000, 0, True)
    (msg,) = a.outgoing(1.0)
    assert a2.receive(msg.encode(), 1.0)  # its own instance: already in the shared table
    other = json.dumps({"from": "b", "zone": "nope", "kind": "req", "n": [[1, 1]]})
    assert a.receive(other.encode(), 1.0)


def test_only_the_lease_holder_exchanges() -> None:
    a1, t = _instance("a")
    a2 = LimitSync({"z": a1.zones["z"][0]}, {"z": t}, "a")
    t.request(b"k", 1000, 10_000, 0, True)
    assert len(a1.outgoing(1.0)) == 1
    t.request(b"k", 2000, 10_000, 0, True)
    assert a2.outgoing(1.5) == []  # a1 holds the lease
    assert len(a2.outgoing(3.0)) == 1  # a1 went quiet past the lease: a2 took over
    a2.release(3.0)
    # a lease given up can be taken at once
    t.request(b"k", 4000, 10_000, 0, True)
    assert len(a1.outgoing(3.1)) == 1


def test_connections_elsewhere_are_counted_until_their_instance_goes_quiet() -> None:
    (a, ta), (b, tb) = _instance("a", kind="conn"), _instance("b", kind="conn")
    assert ta.acquire(b"k", 2) and ta.acquire(b"k", 2)
    _pass(a, [b], 10.0)
    assert not tb.acquire(b"k", 2)  # two in progress at a
    assert tb.acquire(b"other", 2)
    ta.release(b"k")
    _pass(a, [b], 10.1)
    assert tb.acquire(b"k", 2)  # one at a, one here
    b.outgoing(10.1 + STALE_AFTER + 0.1)  # a not heard from since: forgotten
    tb.release(b"k")
    assert tb.acquire(b"k", 2) and tb.acquire(b"k", 2)


def test_after_an_outage_what_was_admitted_meanwhile_is_not_told_late() -> None:
    a, ta = _instance("a")
    for i in range(50):
        ta.request(b"k", 1000 + i, 10_000, 10**9, True)
    a.forget()
    assert a.outgoing(5.0) == []


@given(st.binary(max_size=120) | st.builds(
    lambda d: json.dumps(d).encode(),
    st.dictionaries(st.sampled_from(["from", "zone", "kind", "n"]),
                    st.one_of(st.text(max_size=3), st.integers(), st.none(),
                              st.lists(st.lists(st.integers(), max_size=3), max_size=3)),
                    max_size=4)))
def test_any_message_is_taken_or_refused_never_a_crash(raw: bytes) -> None:
    a, _ = _instance("a")
    assert a.receive(raw, 1.0) in (True, False)
