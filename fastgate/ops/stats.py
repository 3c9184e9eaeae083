"""Counters for the ``fastgate_status`` page, in Prometheus text exposition format."""

from __future__ import annotations

import bisect
from collections import Counter

# request latency histogram buckets, seconds
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()  # by status class "2xx"...
        self.jwt_outcomes: Counter[str] = Counter()
        self.cache_hits = 0
        self.cache_misses = 0
        self.upstream_errors: Counter[str] = Counter()
        self.unsafe_headers = 0
        self.connections_active = 0
        self.connections_total = 0
        self.latency = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0

    def request(self, status: int, seconds: float) -> None:
        self.requests[f"{status // 100}xx"] += 1
        self.latency[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum += seconds
        self.latency_count += 1

    def jwt(self, reason: str) -> None:
        self.jwt_outcomes[reason] += 1

    def cache(self, hit: bool) -> None:
        if hit:
            self.cache_hits += 1
        else:
            self.cache_misses += 1

    def upstream_error(self, kind: str) -> None:
        self.upstream_errors[kind] += 1

    def exposition(self) -> bytes:
        lines = [
            "# HELP fastgate_requests_total Requests answered, by status class.",
            "# TYPE fastgate_requests_total counter",
        ]
        for cls in ("1xx", "2xx", "3xx", "4xx", "5xx"):
            lines.append(f'fastgate_requests_total{{status="{cls}"}} {self.requests[cls]}')
        lines += ["# HELP fastgate_jwt_total Token checks, by outcome.",
                  "# TYPE fastgate_jwt_total counter"]
        for reason, n in sorted(self.jwt_outcomes.items()):
            label = reason.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'fastgate_jwt_total{{outcome="{label}"}} {n}')
        lines += [
            "# HELP fastgate_jwt_cache_total Verified-token cache lookups.",
            "# TYPE fastgate_jwt_cache_total counter",
            f'fastgate_jwt_cache_total{{result="hit"}} {self.cache_hits}',
            f'fastgate_jwt_cache_total{{result="miss"}} {self.cache_misses}',
            "# HELP fastgate_upstream_errors_total Upstream failures, by kind.",
            "# TYPE fastgate_upstream_errors_total counter",
        ]
        for kind in ("connect", "timeout", "invalid", "reset", "no_live"):
            lines.append(f'fastgate_upstream_errors_total{{kind="{kind}"}} '
                         f"{self.upstream_errors[kind]}")
        lines += [
            "# HELP fastgate_unsafe_headers_total Header values dropped for control bytes.",
            "# TYPE fastgate_unsafe_headers_total counter",
            f"fastgate_unsafe_headers_total {self.unsafe_headers}",
            "# HELP fastgate_connections Open client connections.",
            "# TYPE fastgate_connections gauge",
            f"fastgate_connections {self.connections_active}",
            "# HELP fastgate_connections_total Client connections accepted.",
            "# TYPE fastgate_connections_total counter",
            f"fastgate_connections_total {self.connections_total}",
            "# HELP fastgate_request_duration_seconds Time from request head to last byte.",
            "# TYPE fastgate_request_duration_seconds histogram",
        ]
        acc = 0
        for bound, n in zip(BUCKETS, self.latency):
            acc += n
            lines.append(f'fastgate_request_duration_seconds_bucket{{le="{bound}"}} {acc}')
        acc += self.latency[-1]
        lines.append(f'fastgate_request_duration_seconds_bucket{{le="+Inf"}} {acc}')
        lines.append(f"fastgate_request_duration_seconds_sum {self.latency_sum:.6f}")
        lines.append(f"fastgate_request_duration_seconds_count {self.latency_count}")
        return ("\n".join(lines) + "\n").encode()
