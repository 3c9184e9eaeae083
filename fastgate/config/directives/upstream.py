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
    ld.upstreams[name] = Upstream(
        name, servers,
        keepalive=up.local.get("keepalive", 32),
        keepalive_timeout=up.local.get("keepalive_timeout", 60.0),
        keepalive_requests=up.local.get("keepalive_requests", 1000),
        keepalive_time=up.local.get("keepalive_time", 3600.0),
    )


def upstream_server(ld: Context, lvl: Level, d: Directive) -> None:
    host, port = parse_host_port(d, d.args[0], 80)
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
        elif key == "fail_timeout" and eq:
            params["fail_timeout"] = parse_time(d, value)
        elif arg == "backup":
            params["backup"] = True
        elif arg == "down":
            params["down"] = True
        else:
            raise d.error(f'invalid parameter "{arg}"')
    lvl.local["servers"] = lvl.local.get("servers", ()) + (UpstreamServer(host, port, **params),)


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
]}
