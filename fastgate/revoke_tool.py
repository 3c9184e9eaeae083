"""``fastgate revoke``: put a token, or every token of a user issued before a time, on the
cluster's revocation list; every gateway of the cluster refuses it within a second.

    fastgate revoke --jti ID [--ttl TIME] -c FILE
    fastgate revoke --sub SUB [--before TIME] [--ttl TIME] -c FILE

The store is the one ``fastgate_cluster`` names in FILE. ``--before`` is ``now`` (the
default), seconds since the epoch, or an ISO 8601 time (``2026-12-03T12:00:00Z``).
``--ttl`` (nginx's time syntax: ``3600``, ``12h``, ``7d``; default ``1d``) is how long
the entry is kept: give the longest lifetime your tokens have, since a token that is
still valid when its entry expires is accepted again.
"""

from __future__ import annotations

import asyncio
import datetime
import sys
import time

from fastgate.config.values import time_value
from fastgate.errors import FastgateError

USAGE = """\
usage: fastgate revoke --jti ID [--ttl TIME] -c FILE
       fastgate revoke --sub SUB [--before TIME] [--ttl TIME] -c FILE
"""
DEFAULT_TTL = 86400.0


class RevokeUsageError(FastgateError):
    pass


def _when(text: str, now: float) -> float:
    if text == "now":
        return now
    try:
        return float(text)
    except ValueError:
        pass
    try:
        at = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RevokeUsageError(f'invalid time "{text}" (now, seconds since the epoch, or '
                               "ISO 8601 such as 2026-12-03T12:00:00Z)") from None
    if at.tzinfo is None:
        raise RevokeUsageError(f'time "{text}" has no time zone (add Z or +HH:MM)')
    return at.timestamp()


def parse(argv: list[str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            opts["help"] = ""
            i += 1
            continue
        if a not in ("--jti", "--sub", "--before", "--ttl", "-c", "-p"):
            raise RevokeUsageError(f'invalid option: "{a}"')
        if i + 1 >= len(argv):
            raise RevokeUsageError(f'option "{a}" requires a value')
        if a.lstrip("-") in opts:
            raise RevokeUsageError(f'option "{a}" is given twice')
        opts[a.lstrip("-")] = argv[i + 1]
        i += 2
    if "help" in opts:
        return opts
    if ("jti" in opts) == ("sub" in opts):
        raise RevokeUsageError("give one of --jti ID and --sub SUB")
    if "before" in opts and "sub" not in opts:
        raise RevokeUsageError("--before goes with --sub (a jti names one token)")
    if "c" not in opts:
        raise RevokeUsageError('option "-c FILE" is required: the configuration that names '
                               "the cluster store")
    for name in ("jti", "sub"):
        if name in opts and not opts[name]:
            raise RevokeUsageError(f"--{name} is empty")
    return opts


def main(argv: list[str]) -> int:
    from fastgate.config import ConfigError, load_config
    from fastgate.ops.cluster import StoreError, revoke
    from fastgate.proxy.revocation import JTI, SUB, Entry

    def err(message: str) -> None:
        print(f"fastgate: {message}", file=sys.stderr)

    try:
        opts = parse(argv)
        if "help" in opts:
            print(USAGE, end="")
            return 0
        now = time.time()
        ttl = DEFAULT_TTL
        if "ttl" in opts:
            value = time_value(opts["ttl"])
            if not value:
                raise RevokeUsageError(f'invalid --ttl "{opts["ttl"]}" (such as 3600, 12h, 7d)')
            ttl = value
    except RevokeUsageError as e:
        err(str(e))
        print(USAGE, file=sys.stderr, end="")
        return 1
    try:
        config = load_config(opts["c"], opts.get("p"))
    except ConfigError as e:
        err(f"[emerg] {e}")
        return 1
    if config.cluster is None:
        err(f'{opts["c"]} has no "fastgate_cluster": there is no store to revoke in')
        return 1
    try:
        if "jti" in opts:
            entry = Entry(JTI, opts["jti"], now + ttl)
        else:
            before = _when(opts.get("before", "now"), now)
            entry = Entry(SUB, opts["sub"], max(now, before) + ttl, before)
    except RevokeUsageError as e:
        err(str(e))
        return 1
    try:
        heard = asyncio.run(revoke(config.cluster, entry))
    except StoreError as e:
        err(f"{e.reason}: nothing was revoked")
        return 1
    until = datetime.datetime.fromtimestamp(entry.until, datetime.UTC)
    what = f'jti "{entry.id}"' if entry.kind == JTI else (
        f'sub "{entry.id}", tokens issued before '
        f"{datetime.datetime.fromtimestamp(entry.before, datetime.UTC):%Y-%m-%d %H:%M:%S} UTC,")
    print(f"fastgate: revoked {what} until {until:%Y-%m-%d %H:%M:%S} UTC "
          f"in {config.cluster.shown} ({heard} gateway worker(s) listening)")
    return 0
