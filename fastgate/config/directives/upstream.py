"""The upstream module: ``upstream`` blocks and what goes inside them."""

from __future__ import annotations

from typing import Any

from fastgate.config.context import (
    HTTP,
    UPSTREAM,
    Context,
    Handler,
    Level,
    Spec,
)
from fastgate.config.model import (
    Balance,
    Upstream,
    UpstreamServer,
)
from fastgate.config.parser import Directive
from fastgate.config.values import (
    parse_host_port,
    parse_number,
    parse_time,
)


def upstream_block(ld: Context, lvl: Level, d: Directive) -> None:
    name = d.args[0]
    if name in ld.upstreams:
        raise d.error(f'duplicate upstream "{name}"')
    up = Level(UPSTREAM, d, parent=lvl)
    ld.walk(d.block or (), up, table=UPSTREAM_TABLE)
    servers = up.local.get("servers", ())
    if not servers:
        raise d.error(f'no servers are inside upstream "{name}"')
    balance = up.local.get("balance")
    if balance is not None and balance.method != "least_conn":
        for s in servers:
            if s.backup:  # nginx: these methods have no backup servers
                raise d.error('balancing method does not support parameter "backup"')
    ld.upstreams[name] = Upstream(
        name, servers,
        keepalive=up.local.get("keepalive", 32),
        keepalive_timeout=up.local.get("keepalive_timeout", 60.0),
        keepalive_requests=up.local.get("keepalive_requests", 1000),
        keepalive_time=up.local.get("keepalive_time", 3600.0),
        balance=balance,
    )


def upstream_server(ld: Context, lvl: Level, d: Directive) -> None:
    add_server(ld, lvl, d, 80)


def add_server(ld: Context, lvl: Level, d: Directive, default_port: int | None) -> None:
    """``server ADDRESS [weight=] [max_conns=] [max_fails=] [fail_timeout=] [backup]
    [down]`` of an
    upstream block (HTTP's, whose port is 80 by default; the stream block's, which
    needs one); ``unix:PATH``, a socket (HTTP's)."""
    unix: str | None = None
    if d.args[0].startswith("unix:"):
        if not d.args[0][5:]:
            raise d.error(f'no path in the unix domain socket in upstream "{d.args[0]}"')
        host, port, unix = "localhost", 0, ld.path_of(d.args[0][5:])
    else:
        host, port = parse_host_port(d, d.args[0], default_port, upstream=True)
        if not host:
            raise d.error(f'invalid host in upstream "{d.args[0]}"')
        ld.check_host(host, port, d.args[0], d)
    params: dict[str, Any] = {}
    for arg in d.args[1:]:
        key, eq, value = arg.partition("=")
        if key == "weight" and eq:
            params["weight"] = parse_number(d, value, minimum=1)
        elif key == "max_fails" and eq:
            params["max_fails"] = parse_number(d, value)
        elif key == "max_conns" and eq:
            params["max_conns"] = parse_number(d, value)
        elif key == "fail_timeout" and eq:
            params["fail_timeout"] = parse_time(d, value, seconds_only=True)
        elif arg in ("backup", "down"):
            params[arg] = True
        else:
            raise d.error(f'invalid parameter "{arg}"')
    lvl.local["servers"] = lvl.local.get("servers", ()) + (
        UpstreamServer(host, port, written=d.args[0], unix=unix, **params),)


def _balance(ld: Context, lvl: Level, d: Directive, balance: Balance) -> None:
    if "balance" in lvl.local:
        ld.warn("load balancing method redefined", d)
    lvl.local["balance"] = balance


def least_conn(ld: Context, lvl: Level, d: Directive) -> None:
    _balance(ld, lvl, d, Balance("least_conn"))


def ip_hash(ld: Context, lvl: Level, d: Directive) -> None:
    _balance(ld, lvl, d, Balance("ip_hash"))


def hash_key(ld: Context, lvl: Level, d: Directive) -> None:
    if len(d.args) == 2 and d.args[1] != "consistent":
        raise d.error(f'invalid parameter "{d.args[1]}"')
    _balance(ld, lvl, d, Balance("hash", key=ld.compile(d.args[0], d),
                                 consistent=len(d.args) == 2))


def random(ld: Context, lvl: Level, d: Directive) -> None:
    if d.args and d.args[0] != "two":
        raise d.error(f'invalid parameter "{d.args[0]}"')
    if len(d.args) == 2 and d.args[1] != "least_conn":
        raise d.error(f'invalid parameter "{d.args[1]}"')
    _balance(ld, lvl, d, Balance("random", two=bool(d.args)))


def upstream_number(name: str) -> Handler:
    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        lvl.once(d)
        lvl.local[name] = parse_number(d, d.args[0])

    return handle


def upstream_time(name: str) -> Handler:
    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        lvl.once(d)
        lvl.local[name] = parse_time(d, d.args[0])

    return handle


SPECS = [
    Spec("upstream", frozenset({HTTP}), 1, 1, upstream_block, block=True),
]

UPSTREAM_TABLE: dict[str, Spec] = {s.name: s for s in [
    Spec("server", frozenset({UPSTREAM}), 1, None, upstream_server),
    Spec("keepalive", frozenset({UPSTREAM}), 1, 1, upstream_number("keepalive")),
    Spec("keepalive_requests", frozenset({UPSTREAM}), 1, 1, upstream_number("keepalive_requests")),
    Spec("keepalive_timeout", frozenset({UPSTREAM}), 1, 1, upstream_time("keepalive_timeout")),
    Spec("keepalive_time", frozenset({UPSTREAM}), 1, 1, upstream_time("keepalive_time")),
    Spec("least_conn", frozenset({UPSTREAM}), 0, 0, least_conn),
    Spec("ip_hash", frozenset({UPSTREAM}), 0, 0, ip_hash),
    Spec("hash", frozenset({UPSTREAM}), 1, 2, hash_key),
    Spec("random", frozenset({UPSTREAM}), 0, 2, random),
]}
