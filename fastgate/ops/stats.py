"""Counters for the ``fastgate_status`` page, in Prometheus text exposition format.

The counters live in a shared memory region that the master creates before it forks:
one slot of doubles per worker, written only by that worker, so no lock is needed; the
status page (served by any worker) sums every slot. A replaced worker takes over its
slot and keeps counting from where the dead one stopped.
"""

from __future__ import annotations

import mmap
import os
import platform
import resource
import time
from typing import Any

from fastgate import __version__
from fastgate.config.directives.core import MAX_WORKERS
from fastgate.ops.counters import SlotWriter

# request latency histogram buckets, seconds
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
JWT_OUTCOMES = (
    "ok",
    "JWT: failed to find a jwt",
    "JWT: failed to parse jwt",
    "JWT: invalid algorithm",
    "JWT: invalid signature",
    "JWT: the jwt has expired",
    "JWT: the jwt is not yet valid",
    "JWT: unsupported critical header",
    "JWT: no key matches the token's kid",
    "JWT: requirement not met",
    "JWT: invalid issuer",
    "JWT: invalid audience",
    "JWT: keys not available yet",
    "JWT: token revoked",
    "other",
)
# the label of each outcome: short and stable (the sentence stays in the log)
JWT_LABELS = ("ok", "missing", "malformed", "algorithm", "bad_signature", "expired",
              "not_yet_valid", "critical_header", "unknown_kid", "requirement_not_met",
              "issuer", "audience", "keys_unavailable", "revoked", "other")
UPSTREAM_KINDS = ("connect", "timeout", "invalid", "reset", "no_live")
JWKS_RESULTS = ("ok", "failed")

# the layout of one slot: name -> index of its first double
_FIELDS: dict[str, int] = {}


def _layout() -> int:
    i = 0
    for name, size in (("requests", len(STATUS_CLASSES)), ("jwt", len(JWT_OUTCOMES)),
                       ("cache_hit", 1), ("cache_miss", 1), ("upstream", len(UPSTREAM_KINDS)),
                       ("unsafe", 1), ("conn_open", 1), ("conn_idle", 1), ("conn_total", 1),
                       ("latency", len(BUCKETS) + 1), ("latency_sum", 1), ("latency_count", 1),
                       ("jwks", len(JWKS_RESULTS)), ("reloads", 1), ("reload_failures", 1),
                       ("last_reload", 1), ("last_reload_ok", 1), ("cluster_errors", 1)):
        _FIELDS[name] = i
        i += size
    return i


SLOT_DOUBLES = _layout()
# a slot per worker, for two generations (the one serving and the one a reload starts),
# and one more for the master (its reloads)
MAX_SLOTS = 2 * MAX_WORKERS
MASTER_SLOT = MAX_SLOTS
_JWT_INDEX = {reason: i for i, reason in enumerate(JWT_OUTCOMES)}


class SharedCounters:
    """The region: ``slots`` slots of ``SLOT_DOUBLES`` doubles, shared across fork."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, min(slots, MAX_SLOTS + 1))
        self._mem = mmap.mmap(-1, self.slots * SLOT_DOUBLES * 8)  # anonymous, MAP_SHARED
        self.view = memoryview(self._mem).cast("d")

    def slot(self, index: int) -> Stats:
        return Stats(self, index)


class Stats(SlotWriter):
    """One worker's view: it writes its own slot and reads all of them. The counters
    every request moves (``request``, ``verified``, ``cache``, ``jwt``, ``idle``) are
    written by the C base class; the rest are here."""

    def __init__(self, region: SharedCounters | None = None, slot: int = 0) -> None:
        self.region = region if region is not None else SharedCounters(1)
        self.index = slot
        base = slot * SLOT_DOUBLES
        self.v = self.region.view[base:base + SLOT_DOUBLES]
        at = {name: _FIELDS[name] for name in (
            "latency", "latency_sum", "latency_count", "cache_hit", "cache_miss", "conn_idle")}
        at["requests"] = _FIELDS["requests"]
        at["jwt_ok"] = _FIELDS["jwt"] + _JWT_INDEX["ok"]
        at["jwt_other"] = _FIELDS["jwt"] + len(JWT_OUTCOMES) - 1
        self.bind(self.v, at, BUCKETS,
                  {reason: _FIELDS["jwt"] + i for reason, i in _JWT_INDEX.items()})

    def reset_gauges(self) -> None:
        """A new worker process in this slot holds no connection yet."""
        self.v[_FIELDS["conn_open"]] = 0
        self.v[_FIELDS["conn_idle"]] = 0

    def cluster_error(self) -> None:
        self.add(_FIELDS["cluster_errors"])

    def upstream_error(self, kind: str) -> None:
        self.add(_FIELDS["upstream"] + UPSTREAM_KINDS.index(kind))

    def unsafe_header(self) -> None:
        self.add(_FIELDS["unsafe"])

    def connection(self, delta: int) -> None:
        self.add(_FIELDS["conn_open"], delta)
        if delta > 0:
            self.add(_FIELDS["conn_total"])

    def reloaded(self, ok: bool) -> None:
        """A reload tried (by the master, or by a process serving alone)."""
        self.add(_FIELDS["reloads" if ok else "reload_failures"])
        self.v[_FIELDS["last_reload"]] = time.time()
        self.v[_FIELDS["last_reload_ok"]] = 1.0 if ok else 0.0

    def limit_rejected(self, counts: memoryview[float]) -> None:
        """A request a limit zone refused: ``counts`` is the zone's, this slot's double."""
        counts[self.index] += 1

    def jwks_fetch(self, ok: bool) -> None:
        self.add(_FIELDS["jwks"] + (0 if ok else 1))

    def totals(self) -> list[float]:
        """Every slot summed."""
        view = self.region.view
        return [sum(view[i::SLOT_DOUBLES]) for i in range(SLOT_DOUBLES)]

    def stub_status(self) -> bytes:
        """nginx's stub_status text, summed over every worker: open connections;
        accepted, handled (the same: a connection over worker_connections is closed
        before it counts) and answered requests; Reading (fastgate does not tell a
        connection reading a head from one writing a response: 0, counted in Writing),
        Writing and Waiting (idle keep-alive)."""
        t = self.totals()
        opened = int(t[_FIELDS["conn_open"]])
        idle = int(t[_FIELDS["conn_idle"]])
        accepted = int(t[_FIELDS["conn_total"]])
        requests = int(sum(t[_FIELDS["requests"]:_FIELDS["requests"] + len(STATUS_CLASSES)]))
        return (f"Active connections: {opened} \nserver accepts handled requests\n"
                f" {accepted} {accepted} {requests} \n"
                f"Reading: 0 Writing: {opened - idle} Waiting: {idle} \n").encode()

    def exposition(self, engine: str = "", zones: Any = None,
                   jwks: dict[str, float] | None = None,
                   cluster: dict[str, float] | None = None) -> bytes:
        """The page: every slot's counters summed; ``zones`` (ZoneTables) for the
        refusals by zone, ``jwks`` the time each remote key set was fetched, ``cluster``
        the answering process's link to the cluster store (``ClusterLink.figures``); the
        ``process_*`` figures are the answering process's."""
        t = self.totals()

        def n(name: str, offset: int = 0) -> int:
            return int(t[_FIELDS[name] + offset])

        lines = ["# HELP fastgate_requests_total Requests answered, by status class.",
                 "# TYPE fastgate_requests_total counter"]
        for i, cls in enumerate(STATUS_CLASSES):
            lines.append(f'fastgate_requests_total{{status="{cls}"}} {n("requests", i)}')
        lines += ["# HELP fastgate_jwt_total Token checks, by outcome.",
                  "# TYPE fastgate_jwt_total counter"]
        for i, label in enumerate(JWT_LABELS):
            lines.append(f'fastgate_jwt_total{{outcome="{label}"}} {n("jwt", i)}')
        lines += [
            "# HELP fastgate_jwt_cache_total Verified-token cache lookups.",
            "# TYPE fastgate_jwt_cache_total counter",
            f'fastgate_jwt_cache_total{{result="hit"}} {n("cache_hit")}',
            f'fastgate_jwt_cache_total{{result="miss"}} {n("cache_miss")}',
            "# HELP fastgate_upstream_errors_total Upstream failures, by kind.",
            "# TYPE fastgate_upstream_errors_total counter",
        ]
        for i, kind in enumerate(UPSTREAM_KINDS):
            lines.append(f'fastgate_upstream_errors_total{{kind="{kind}"}} {n("upstream", i)}')
        lines += [
            "# HELP fastgate_jwks_fetches_total Remote JWKS fetches, by result.",
            "# TYPE fastgate_jwks_fetches_total counter",
            f'fastgate_jwks_fetches_total{{result="ok"}} {n("jwks", 0)}',
            f'fastgate_jwks_fetches_total{{result="failed"}} {n("jwks", 1)}',
            "# HELP fastgate_unsafe_headers_total Header values dropped for control bytes.",
            "# TYPE fastgate_unsafe_headers_total counter",
            f"fastgate_unsafe_headers_total {n('unsafe')}",
            "# HELP fastgate_connections Open client connections, by state.",
            "# TYPE fastgate_connections gauge",
            f'fastgate_connections{{state="active"}} {n("conn_open") - n("conn_idle")}',
            f'fastgate_connections{{state="idle"}} {n("conn_idle")}',
            "# HELP fastgate_connections_total Client connections accepted.",
            "# TYPE fastgate_connections_total counter",
            f"fastgate_connections_total {n('conn_total')}",
            "# HELP fastgate_request_duration_seconds Time from request head to last byte.",
            "# TYPE fastgate_request_duration_seconds histogram",
        ]
        acc = 0
        for i, bound in enumerate(BUCKETS):
            acc += n("latency", i)
            lines.append(f'fastgate_request_duration_seconds_bucket{{le="{bound}"}} {acc}')
        acc += n("latency", len(BUCKETS))
        lines.append(f'fastgate_request_duration_seconds_bucket{{le="+Inf"}} {acc}')
        lines.append(f"fastgate_request_duration_seconds_sum {t[_FIELDS['latency_sum']]:.6f}")
        lines.append(f"fastgate_request_duration_seconds_count {n('latency_count')}")
        lines += [
            "# HELP fastgate_reloads_total Configuration reloads, by result.",
            "# TYPE fastgate_reloads_total counter",
            f'fastgate_reloads_total{{result="ok"}} {n("reloads")}',
            f'fastgate_reloads_total{{result="failed"}} {n("reload_failures")}',
            "# HELP fastgate_last_reload_success Whether the last reload succeeded "
            "(1 when none was tried).",
            "# TYPE fastgate_last_reload_success gauge",
            "fastgate_last_reload_success "
            f"{n('last_reload_ok') if n('reloads') + n('reload_failures') else 1}",
            "# HELP fastgate_last_reload_timestamp_seconds When the last reload was tried "
            "(0: never).",
            "# TYPE fastgate_last_reload_timestamp_seconds gauge",
            f"fastgate_last_reload_timestamp_seconds {t[_FIELDS['last_reload']]:.3f}",
        ]
        if zones is not None and zones.rejected:
            lines += ["# HELP fastgate_limit_rejected_total Requests refused by a limit zone "
                      "(dry runs included).",
                      "# TYPE fastgate_limit_rejected_total counter"]
            for name, counts in sorted(zones.rejected.items()):
                lines.append(f'fastgate_limit_rejected_total{{zone="{_label(name)}"}} '
                             f"{int(sum(counts))}")
        if jwks:
            now = time.time()
            lines += ["# HELP fastgate_jwks_age_seconds Age of the keys in use from each "
                      "remote key set (absent until the first fetch succeeds).",
                      "# TYPE fastgate_jwks_age_seconds gauge"]
            for url, at in sorted(jwks.items()):
                if at:
                    lines.append(f'fastgate_jwks_age_seconds{{url="{_label(url)}"}} '
                                 f"{now - at:.3f}")
        if cluster is not None:
            lines += [
                "# HELP fastgate_cluster_up Whether this process reaches the cluster store.",
                "# TYPE fastgate_cluster_up gauge",
                f"fastgate_cluster_up {int(cluster['up'])}",
                "# HELP fastgate_cluster_sync_lag_seconds Time since this process last heard "
                "from the cluster store.",
                "# TYPE fastgate_cluster_sync_lag_seconds gauge",
                f"fastgate_cluster_sync_lag_seconds {cluster['lag']:.3f}",
                "# HELP fastgate_cluster_store_errors_total Failed exchanges with the cluster "
                "store, every worker's.",
                "# TYPE fastgate_cluster_store_errors_total counter",
                f"fastgate_cluster_store_errors_total {n('cluster_errors')}",
                "# HELP fastgate_revocation_entries Entries of the revocation list this "
                "process holds, by kind.",
                "# TYPE fastgate_revocation_entries gauge",
                f'fastgate_revocation_entries{{kind="jti"}} {int(cluster["jti"])}',
                f'fastgate_revocation_entries{{kind="sub"}} {int(cluster["sub"])}',
                "# HELP fastgate_revocation_stale Whether the revocation list is the last one "
                "known (1: the store is out of reach; entries revoked since are not seen).",
                "# TYPE fastgate_revocation_stale gauge",
                f"fastgate_revocation_stale {int(not cluster['up'])}",
            ]
        lines += [
            "# HELP fastgate_build_info fastgate's version, HTTP engine and Python.",
            "# TYPE fastgate_build_info gauge",
            f'fastgate_build_info{{version="{__version__}",engine="{engine}",'
            f'python="{platform.python_version()}"}} 1',
        ]
        lines += process_metrics()
        return ("\n".join(lines) + "\n").encode()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def process_metrics() -> list[str]:
    """Prometheus's standard ``process_*`` metrics, from /proc (absent without it)."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime "))
        fds = len(os.listdir("/proc/self/fd"))
    except (OSError, StopIteration, ValueError):
        return []
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    # fields after the command: state is [0], so stat(5)'s field N is [N - 3]
    cpu = (int(fields[11]) + int(fields[12])) / tick
    start = boot + int(fields[19]) / tick
    vsize, rss = int(fields[20]), int(fields[21]) * page
    max_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return [
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
        "# TYPE process_cpu_seconds_total counter",
        f"process_cpu_seconds_total {cpu:.2f}",
        "# HELP process_resident_memory_bytes Resident memory size in bytes.",
        "# TYPE process_resident_memory_bytes gauge",
        f"process_resident_memory_bytes {rss}",
        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.",
        "# TYPE process_virtual_memory_bytes gauge",
        f"process_virtual_memory_bytes {vsize}",
        "# HELP process_open_fds Number of open file descriptors.",
        "# TYPE process_open_fds gauge",
        f"process_open_fds {fds}",
        "# HELP process_max_fds Maximum number of open file descriptors.",
        "# TYPE process_max_fds gauge",
        f"process_max_fds {max_fds}",
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
        "# TYPE process_start_time_seconds gauge",
        f"process_start_time_seconds {start:.2f}",
    ]
