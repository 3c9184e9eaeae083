"""The balancing methods of an upstream block, one at a time (which server nginx itself
picks is compared in tests/e2e/test_nginx_parity_e2e.py): least_conn by requests in
progress, random's draws, what every method skips, and the count of requests in
progress kept by the connections themselves."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from fastgate.config import ConfigError, load_config
from fastgate.config.model import Balance, Upstream, UpstreamServer
from fastgate.proxy.upstream import UpstreamConnection, UpstreamGroup
from fastgate.variables import Template


def group(balance: Balance | None, *servers: UpstreamServer) -> UpstreamGroup:
    return UpstreamGroup(Upstream("g", servers, balance=balance), "h11")


ABC = (UpstreamServer("a", 1), UpstreamServer("b", 1), UpstreamServer("c", 1))


def test_least_conn_picks_the_least_busy_for_its_weight() -> None:
    g = group(Balance("least_conn"), UpstreamServer("a", 1, weight=2), *ABC[1:])
    a, b, c = g.primary
    a.busy, b.busy, c.busy = 3, 1, 2
    assert g.pick(0.0, frozenset()) is b
    a.busy = 1  # 1/2 < 1/1
    assert g.pick(0.0, frozenset()) is a
    assert g.pick(0.0, {a}) is b


def test_least_conn_between_equals_is_round_robin() -> None:
    g = group(Balance("least_conn"), *ABC)
    assert [g.pick(0.0, frozenset()).server.host for _ in range(6)] == list("abcabc")
    g.primary[0].busy = 1
    assert {g.pick(0.0, frozenset()).server.host for _ in range(6)} == {"b", "c"}


def test_least_conn_keeps_backup_servers_for_when_no_primary_is_up() -> None:
    g = group(Balance("least_conn"), UpstreamServer("a", 1), UpstreamServer("b", 1, backup=True))
    a, b = g.primary[0], g.backup[0]
    a.busy = 10
    assert g.pick(0.0, frozenset()) is a
    a.down_until = 5.0
    assert g.pick(1.0, frozenset()) is b


def test_random_draws_by_weight_and_skips_what_is_down() -> None:
    g = group(Balance("random"), UpstreamServer("a", 1, weight=3), UpstreamServer("b", 1),
              UpstreamServer("c", 1, down=True))
    seen = Counter(g.pick(0.0, frozenset()).server.host for _ in range(4000))
    assert set(seen) == {"a", "b"}
    assert 2.4 < seen["a"] / seen["b"] < 3.8


def test_random_two_takes_the_less_busy() -> None:
    g = group(Balance("random", two=True), *ABC[:2])
    a, b = g.primary
    a.busy = 5
    assert all(g.pick(0.0, frozenset()) is b for _ in range(50))
    assert g.pick(0.0, {b}) is a  # one left: that one


def test_hash_methods_skip_tried_and_down_servers() -> None:
    for b in (Balance("hash", key=Template("$k", (lambda r: r.k,))),
              Balance("hash", key=Template("$k", (lambda r: r.k,)), consistent=True),
              Balance("ip_hash")):
        g = group(b, *ABC)
        req = SimpleNamespace(remote_addr="192.0.2.7", k="v")
        first = g.pick(0.0, frozenset(), req)
        assert first is not None
        assert all(g.pick(0.0, frozenset(), req) is first for _ in range(5))  # affinity
        second = g.pick(0.0, {first}, req)
        assert second is not None and second is not first
        assert g.pick(0.0, set(g.primary), req) is None
        first.down_until = 10.0
        assert g.pick(1.0, frozenset(), req) not in (first, None)


def test_a_connection_counts_while_it_carries_an_exchange() -> None:
    async def main() -> None:
        g = group(Balance("least_conn"), *ABC[:2])
        peer = g.primary[0]
        conn = UpstreamConnection(peer)
        conn.engine = SimpleNamespace(start_next=lambda: None)  # type: ignore[assignment]
        conn.taken()
        conn.taken()  # once per exchange, however often it is said
        assert peer.busy == 1
        conn.park(5.0)  # back in the pool: idle
        assert peer.busy == 0
        conn.taken()
        conn.close()
        conn.connection_lost(None)
        assert peer.busy == 0

    asyncio.run(main())


def _load(tmp_path: Path, upstream: str) -> object:
    path = tmp_path / "t.conf"
    path.write_text("http { upstream be { " + upstream + " }\n"
                    "server { listen 127.0.0.1:8080; location / { proxy_pass http://be; } } }\n")
    return load_config(str(path))


def test_methods_that_have_no_backup_servers_refuse_one(tmp_path: Path) -> None:
    for method in ("ip_hash;", "hash $uri;", "random;"):
        with pytest.raises(ConfigError, match='balancing method does not support parameter '
                                              '"backup"'):
            _load(tmp_path, f"{method} server 127.0.0.1:1; server 127.0.0.1:2 backup;")
    config = _load(tmp_path, "server 127.0.0.1:2 backup; least_conn; server 127.0.0.1:1;")
    assert config.upstreams["be"].balance == Balance("least_conn")  # type: ignore[attr-defined]


def test_arguments_and_a_second_method(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='invalid parameter "ring"'):
        _load(tmp_path, "hash $uri ring; server 127.0.0.1:1;")
    with pytest.raises(ConfigError, match='invalid parameter "three"'):
        _load(tmp_path, "random three; server 127.0.0.1:1;")
    config = _load(tmp_path, "ip_hash; random two least_conn; server 127.0.0.1:1;")
    assert config.upstreams["be"].balance == Balance("random", two=True)  # type: ignore[attr-defined]
    assert any("load balancing method redefined" in w
               for w in config.warnings)  # type: ignore[attr-defined]
