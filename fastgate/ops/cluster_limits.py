"""Limit zones a fleet shares (``limit_req_zone ... sync``, ``limit_conn_zone ... sync``,
with ``fastgate_cluster``): every instance admits against its own table at once, and the
tables are reconciled in the background, so a request never waits on the store.

- limit_req: each instance tells the others, every ``SYNC_EVERY`` seconds, how many
  requests it admitted per key since it last did (``LimitTable.drain``); each takes them
  into its own leaky bucket as if it had admitted them (``absorb``). Every bucket then
  holds the fleet's requests, one interval late: over time the fleet admits the
  configured rate, and a burst spread over the gateways gets past ``burst`` by at most
  what they admit in one interval.
- limit_conn: each instance tells the others the requests it has in progress per key
  (when that changed, and every half second anyway); each counts the others' sum beside
  its own (``set_remote``). An instance not heard from for ``STALE_AFTER`` seconds is
  forgotten (it stopped, or the store is out of reach).

Keys travel as the table's 64-bit hash of the key; one worker per instance does the
exchange (``LimitTable.lead``: a lease in the table, taken over when it lapses). The
store out of reach: each instance limits on its own; what it admitted meanwhile is not
told late (``forget``), since the buckets would count old requests as new.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastgate.config.model import LimitZone
    from fastgate.ops.limit_table import LimitTable

SYNC_EVERY = 0.05  # seconds between exchanges
LEASE_MS = 1000  # a worker that stops exchanging (it ended) is replaced after this
HEARTBEAT = 0.5  # in-progress counts are sent at least this often
STALE_AFTER = 1.5  # another instance's in-progress counts are forgotten after this silence


class LimitSync:
    """One worker's part in sharing its instance's synced zones with the fleet."""

    def __init__(self, zones: dict[str, LimitZone], tables: Any, instance: str) -> None:
        self.zones: dict[str, tuple[LimitZone, LimitTable]] = {
            z.name: (z, tables[z.name]) for z in zones.values() if z.sync}
        self.instance = instance
        # this worker, among every worker (of every generation) sharing the tables
        self.me = int.from_bytes(os.urandom(7), "big") or 1
        # zone -> other instance -> (when heard, {key hash: requests in progress})
        self._remote: dict[str, dict[str, tuple[float, dict[int, int]]]] = {}
        self._written: dict[str, dict[int, int]] = {}  # what set_remote holds, per zone
        self._local: dict[str, dict[int, int]] = {}  # this instance's in progress, per zone
        self._sent: dict[str, float] = {}  # when this worker last sent a zone's
        self._leading: set[str] = set()  # the zones this worker exchanged last tick

    def __bool__(self) -> bool:
        return bool(self.zones)

    def outgoing(self, now: float) -> list[str]:
        """What to publish now, for the zones this worker exchanges."""
        now_ms = int(now * 1000)
        out = []
        for name, (zone, table) in self.zones.items():
            if not table.lead(self.me, now_ms, LEASE_MS):
                self._leading.discard(name)
                continue
            taking_over = name not in self._leading
            self._leading.add(name)
            if zone.kind == "req":
                counts = table.drain()
            else:
                # a worker taking over has no picture yet: the whole table once
                whole, changed = table.changes(taking_over)
                local = self._local.setdefault(name, {})
                if whole:
                    local.clear()
                for h, n in changed:
                    if n > 0:
                        local[h] = n
                    else:
                        local.pop(h, None)
                self._expire(name, table, now)
                if not changed and now - self._sent.get(name, 0.0) < HEARTBEAT:
                    continue
                self._sent[name] = now
                counts = sorted(local.items())
            if counts or zone.kind == "conn":
                out.append(json.dumps({"from": self.instance, "zone": name, "kind": zone.kind,
                                       "n": counts}, separators=(",", ":")))
        return out

    def receive(self, raw: bytes, now: float) -> bool:
        """Another instance's message taken in (False when it is not one: counted by the
        caller as a store error)."""
        try:
            msg = json.loads(raw)
        except ValueError:
            return False
        if not isinstance(msg, dict):
            return False
        sender, name, kind, counts = msg.get("from"), msg.get("zone"), msg.get("kind"), msg.get("n")
        if not (isinstance(sender, str) and isinstance(name, str) and kind in ("req", "conn")
                and isinstance(counts, list)):
            return False
        pairs = []
        for item in counts:
            if not (isinstance(item, list) and len(item) == 2
                    and all(type(x) is int for x in item)):
                return False
            pairs.append((item[0], item[1]))
        if sender == self.instance:
            return True
        entry = self.zones.get(name)
        if entry is None or entry[0].kind != kind:
            return True  # a zone this instance does not share (another configuration)
        zone, table = entry
        now_ms = int(now * 1000)
        if not table.lead(self.me, now_ms, LEASE_MS):
            return True  # another worker of this instance takes it in
        if kind == "req":
            for h, n in pairs:
                if 0 < h < 1 << 64:
                    table.absorb(h, now_ms, zone.rate, n)
        else:
            self._remote.setdefault(name, {})[sender] = (
                now, {h: n for h, n in pairs if 0 < h < 1 << 64 and n > 0})
            self._expire(name, table, now)
        return True

    def forget(self) -> None:
        """After an outage: what was admitted meanwhile stays this instance's own."""
        for zone, table in self.zones.values():
            if zone.kind == "req":
                table.drain()
        for name in list(self._remote):
            self._remote[name].clear()

    def release(self, now: float) -> None:
        """This worker ends: its leases lapse now rather than in ``LEASE_MS``."""
        for _, table in self.zones.values():
            if table.lead(self.me, int(now * 1000), LEASE_MS):
                table.lead(self.me, 0, 0)

    def _expire(self, name: str, table: LimitTable, now: float) -> None:
        """The others' in-progress counts summed into the table (stale senders left out),
        writing only what changed."""
        senders = self._remote.get(name, {})
        for sender in [s for s, (at, _) in senders.items() if now - at > STALE_AFTER]:
            del senders[sender]
        totals: dict[int, int] = {}
        for _, counts in senders.values():
            for h, n in counts.items():
                totals[h] = totals.get(h, 0) + n
        written = self._written.get(name, {})
        for h in written.keys() - totals.keys():
            table.set_remote(h, 0)
        for h, n in totals.items():
            if written.get(h) != n:
                table.set_remote(h, min(n, 1 << 30))
        self._written[name] = totals
