"""``fastgate revoke``: put a token, or every token of a user issued before a time, on the
cluster's revocation list; every gateway of the cluster refuses it within a second.

    fastgate revoke --jti ID [--ttl TIME] -c FILE
    fastgate revoke --sub SUB [--before TIME] [--ttl TIME] -c FILE

The store is the one ``fastgate_cluster`` names in FILE. ``--before`` is ``now`` (the
default), seconds since the epoch, or an ISO 8601 time (``2026-12-03T12:00:00Z``).
The entry is kept until every token it can match has expired, as far as the fleet
knows: the gateways tell the store the longest lifetime of the tokens they accept
(``exp`` and leeway from ``iat``; a token without ``exp`` makes it "never"), and the
entry lasts that long past now (or past ``--before``). ``--ttl`` (nginx's time syntax:
``3600``, ``12h``, ``7d``) sets it instead; with no lifetime told yet it is one day.
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
DEFAULT_TTL = 86400.0  # when no gateway has told the store how long tokens live
MARGIN = 60.0  # seconds beyond the longest lifetime (clocks differ)


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
    from fastgate.ops.cluster import StoreError, longest_lifetime, revoke
    from fastgate.proxy.revocation import JTI, SUB, Entry

    def err(message: str) -> None:
        print(f"fastgate: {message}", file=sys.stderr)

    try:
        opts = parse(argv)
        if "help" in opts:
            print(USAGE, end="")
            return 0
        now = time.time()
        ttl: float | None = None  # None: as long as the fleet's tokens live
        if "ttl" in opts:
            ttl = time_value(opts["ttl"])
            if not ttl:
                raise RevokeUsageError(f'invalid --ttl "{opts["ttl"]}" (such as 3600, 12h, 7d)')
        before = _when(opts.get("before", "now"), now) if "sub" in opts else 0.0
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
    cluster = config.cluster

    async def go() -> tuple[Entry, int, str]:
        kept, why = ttl, "--ttl"
        if kept is None:
            longest = await longest_lifetime(cluster)
            if longest:
                # every token it can match was issued before now (or --before) and
                # lives at most this long
                kept, why = longest + MARGIN, "the longest a token the fleet accepted lives"
            else:
                kept, why = DEFAULT_TTL, "no gateway has told how long its tokens live yet"
        start = now if "jti" in opts else max(now, before)
        entry = (Entry(JTI, opts["jti"], start + kept) if "jti" in opts
                 else Entry(SUB, opts["sub"], start + kept, before))
        return entry, await revoke(cluster, entry), why

    try:
        entry, heard, why = asyncio.run(go())
    except StoreError as e:
        err(f"{e.reason}: nothing was revoked")
        return 1
    until = datetime.datetime.fromtimestamp(entry.until, datetime.UTC)
    what = f'jti "{entry.id}"' if entry.kind == JTI else (
        f'sub "{entry.id}", tokens issued before '
        f"{datetime.datetime.fromtimestamp(entry.before, datetime.UTC):%Y-%m-%d %H:%M:%S} UTC,")
    print(f"fastgate: revoked {what} until {until:%Y-%m-%d %H:%M:%S} UTC ({why}) "
          f"in {cluster.shown} ({heard} gateway worker(s) listening)")
    return 0
