"""Choosing an upstream server: smooth weighted round robin as nginx, a group of one
server short-cut, availability and the servers already tried."""

from __future__ import annotations

from collections import Counter

from fastgate.config.model import Upstream, UpstreamServer
from fastgate.proxy.upstream import UpstreamGroup


def group(*servers: UpstreamServer) -> UpstreamGroup:
    return UpstreamGroup(Upstream("g", servers), "h11")


def test_one_server_is_always_picked_unless_down_or_tried() -> None:
    g = group(UpstreamServer("127.0.0.1", 1))
    only = g.primary[0]
    assert all(g.pick(0.0, frozenset()) is only for _ in range(5))
    assert g.pick(0.0, {only}) is None
    down = group(UpstreamServer("127.0.0.1", 1, down=True))
    assert down.pick(0.0, frozenset()) is None


def test_weighted_round_robin_is_smooth() -> None:
    g = group(UpstreamServer("a", 1, weight=5), UpstreamServer("b", 1, weight=1),
              UpstreamServer("c", 1, weight=1))
    order = [g.pick(0.0, frozenset()).server.host for _ in range(7)]
    assert order == ["a", "a", "b", "a", "c", "a", "a"]  # nginx's sequence for 5/1/1
    assert Counter(order) == {"a": 5, "b": 1, "c": 1}


def test_backup_only_when_no_primary_is_available() -> None:
    g = group(UpstreamServer("a", 1), UpstreamServer("b", 1, backup=True))
    a, b = g.primary[0], g.backup[0]
    assert g.pick(0.0, frozenset()) is a
    assert g.pick(0.0, {a}) is b
    a.down_until = 100.0
    assert g.pick(50.0, frozenset()) is b
    assert g.pick(100.0, frozenset()) is a


def test_max_conns_takes_a_server_out_while_it_has_that_many() -> None:
    # nginx's max_conns: skipped by every method, the group of one server too
    from fastgate.config.model import Balance
    from fastgate.proxy.stream import Peer as StreamPeer

    g = group(UpstreamServer("a", 1, max_conns=2), UpstreamServer("b", 1))
    a, b = g.primary
    a.busy = 2
    assert {g.pick(0.0, frozenset()) for _ in range(4)} == {b}
    a.busy = 1
    assert a in {g.pick(0.0, frozenset()) for _ in range(4)}
    one = group(UpstreamServer("a", 1, max_conns=1))
    one.primary[0].busy = 1
    assert one.pick(0.0, frozenset()) is None
    least = UpstreamGroup(Upstream("l", (UpstreamServer("a", 1, max_conns=1),
                                         UpstreamServer("b", 1)),
                                   balance=Balance("least_conn")), "h11")
    least.primary[0].busy = 1
    least.primary[1].busy = 5
    assert least.pick(0.0, frozenset()) is least.primary[1]
    peer = StreamPeer(UpstreamServer("a", 1, max_conns=1))
    assert peer.available(0.0)
    peer.busy = 1
    assert not peer.available(0.0)
