"""The limit_req and limit_conn modules: zones and limits."""

from __future__ import annotations

import re

from fastgate.config.context import (
    HSL,
    HTTP,
    Context,
    Handler,
    Level,
    Spec,
)
from fastgate.config.directives.args import appending, flag_arg, log_level, setting, status_code
from fastgate.config.model import (
    LimitConn,
    LimitReq,
    LimitZone,
)
from fastgate.config.parser import Directive
from fastgate.config.values import (
    parse_number,
    parse_size,
)

MIN_ZONE = 32 * 1024


def zone_arg(d: Directive, arg: str) -> tuple[str, int]:
    spec = arg[5:]
    name, colon, size_text = spec.partition(":")
    if not name or not colon:
        raise d.error(f'invalid zone size "{arg}"')
    size = parse_size(d, size_text)
    if size < MIN_ZONE:
        raise d.error(f'zone "{name}" is too small')
    return name, size


def limit_zone(kind: str) -> Handler:
    """``limit_req_zone KEY zone=NAME:SIZE rate=R`` and ``limit_conn_zone KEY zone=NAME:SIZE``."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        key = ld.compile(d.args[0], d)
        name = size = None
        rate = 0
        sync = False
        for arg in d.args[1:]:
            if arg.startswith("zone="):
                name, size = zone_arg(d, arg)
            elif arg.startswith("rate=") and kind == "req":
                m = re.fullmatch(r"rate=([0-9]+)r/([sm])", arg)
                if m is None or int(m.group(1)) == 0:
                    raise d.error(f'invalid rate "{arg}"')
                rate = int(m.group(1)) * 1000 // (1 if m.group(2) == "s" else 60)
                rate = max(rate, 1)
            elif arg == "sync":  # NGINX Plus's: shared by the fleet (fastgate_cluster)
                sync = True
                ld.sync_refs.append(d)
            else:
                raise d.error(f'invalid parameter "{arg}"')
        if name is None or size is None:
            raise d.error(f'"{d.name}" must have "zone" parameter')
        if kind == "req" and not rate:
            raise d.error(f'"{d.name}" must have "rate" parameter')
        if name in ld.zones:
            raise d.error(f'duplicate zone "{name}"')
        if name in ld.ocsp_caches:
            raise d.error(f'the shared memory zone "{name}" is already declared for a '
                          "different use")
        uses_jwt = any(v.lower().startswith("jwt_") for v in key.variables)
        ld.zones[name] = LimitZone(name, kind, key, size, rate, uses_jwt, sync)

    return handle


def limit_req(ld: Context, d: Directive) -> LimitReq:
    zone = None
    burst = 0
    delay: int | None = 0
    for arg in d.args:
        if arg.startswith("zone="):
            zone = arg[5:]
        elif arg.startswith("burst="):
            burst = parse_number(d, arg[6:])
        elif arg == "nodelay":
            delay = None
        elif arg.startswith("delay="):
            delay = parse_number(d, arg[6:])
        else:
            raise d.error(f'invalid parameter "{arg}"')
    if not zone:
        raise d.error(f'"{d.name}" must have "zone" parameter')
    ld.zone_refs.append(("req", zone, d))
    return LimitReq(zone, burst * 1000, None if delay is None else delay * 1000)


def limit_conn(ld: Context, d: Directive) -> LimitConn:
    ld.zone_refs.append(("conn", d.args[0], d))
    return LimitConn(d.args[0], parse_number(d, d.args[1], minimum=1))


SPECS = [
    Spec("limit_req_zone", frozenset({HTTP}), 3, 4, limit_zone("req")),
    Spec("limit_conn_zone", frozenset({HTTP}), 2, 3, limit_zone("conn")),
    Spec("limit_req", HSL, 1, 3, appending("limit_req", limit_req)),
    Spec("limit_req_status", HSL, 1, 1, setting("limit_req_status", status_code)),
    Spec("limit_req_log_level", HSL, 1, 1, setting("limit_req_log_level", log_level)),
    Spec("limit_req_dry_run", HSL, 1, 1, setting("limit_req_dry_run", flag_arg)),
    Spec("limit_conn", HSL, 2, 2, appending("limit_conn", limit_conn)),
    Spec("limit_conn_status", HSL, 1, 1, setting("limit_conn_status", status_code)),
    Spec("limit_conn_log_level", HSL, 1, 1, setting("limit_conn_log_level", log_level)),
    Spec("limit_conn_dry_run", HSL, 1, 1, setting("limit_conn_dry_run", flag_arg)),
]
