"""The counters: the C writer (request, verified, cache, idle) and the Python ones land
in the right places of the slot, and the exposition sums every slot."""

from __future__ import annotations

import bisect
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgate.ops.stats import BUCKETS, SharedCounters, Stats


def metric(text: str, line: str) -> float:
    m = re.search(r"^" + re.escape(line) + r" (\S+)$", text, re.M)
    assert m is not None, line
    return float(m.group(1))


def test_requests_by_class_and_latency_histogram() -> None:
    s = Stats()
    for status, seconds in ((200, 0.0004), (204, 0.0005), (404, 0.003), (502, 20.0), (101, 0.0)):
        s.request(status, seconds)
    s.request(700, 0.1)  # no class: only the latency counts
    out = s.exposition().decode()
    assert metric(out, 'fastgate_requests_total{status="2xx"}') == 2
    assert metric(out, 'fastgate_requests_total{status="4xx"}') == 1
    assert metric(out, 'fastgate_requests_total{status="5xx"}') == 1
    assert metric(out, 'fastgate_requests_total{status="1xx"}') == 1
    assert metric(out, 'fastgate_request_duration_seconds_bucket{le="0.0005"}') == 3
    assert metric(out, 'fastgate_request_duration_seconds_bucket{le="0.005"}') == 4
    assert metric(out, 'fastgate_request_duration_seconds_bucket{le="10.0"}') == 5
    assert metric(out, 'fastgate_request_duration_seconds_bucket{le="+Inf"}') == 6
    assert metric(out, "fastgate_request_duration_seconds_count") == 6
    assert metric(out, "fastgate_request_duration_seconds_sum") == pytest.approx(20.1039)


@settings(max_examples=200, deadline=None)
@given(seconds=st.floats(min_value=0, max_value=100, allow_nan=False)
       | st.sampled_from(BUCKETS))
def test_latency_bucket_is_bisect_left(seconds: float) -> None:
    s = Stats()
    s.request(200, seconds)
    want = bisect.bisect_left(BUCKETS, seconds)
    out = s.exposition().decode()
    for i, bound in enumerate(BUCKETS):
        assert metric(out, f'fastgate_request_duration_seconds_bucket{{le="{bound}"}}') == (
            1 if i >= want else 0)


def test_token_and_connection_counters() -> None:
    s = Stats()
    s.verified(True)
    s.verified(False)
    s.cache(True)
    s.jwt("JWT: invalid signature")
    s.jwt("something unheard of")
    s.connection(+1)
    s.connection(+1)
    s.connection(-1)
    s.idle(1)
    s.idle(1)
    s.idle(-1)
    s.upstream_error("timeout")
    s.unsafe_header()
    s.jwks_fetch(False)
    out = s.exposition().decode()
    assert metric(out, 'fastgate_jwt_total{outcome="ok"}') == 2
    assert metric(out, 'fastgate_jwt_cache_total{result="hit"}') == 2
    assert metric(out, 'fastgate_jwt_cache_total{result="miss"}') == 1
    assert metric(out, 'fastgate_jwt_total{outcome="bad_signature"}') == 1
    assert metric(out, 'fastgate_jwt_total{outcome="other"}') == 1
    assert metric(out, 'fastgate_connections{state="idle"}') == 1
    assert metric(out, 'fastgate_connections{state="active"}') == 0
    assert metric(out, "fastgate_connections_total") == 2
    assert metric(out, 'fastgate_upstream_errors_total{kind="timeout"}') == 1
    assert metric(out, "fastgate_unsafe_headers_total") == 1
    assert metric(out, 'fastgate_jwks_fetches_total{result="failed"}') == 1


def test_slots_are_separate_and_summed() -> None:
    region = SharedCounters(3)
    a, b = region.slot(0), region.slot(2)
    a.request(200, 0.01)
    b.request(200, 0.01)
    b.verified(True)
    assert metric(a.exposition().decode(), 'fastgate_requests_total{status="2xx"}') == 2
    assert a.v[0:len(a.v)].tolist() != b.v[0:len(b.v)].tolist()
    assert sum(region.slot(1).v.tolist()) == 0


def test_add_refuses_an_index_outside_the_slot() -> None:
    s = Stats()
    with pytest.raises(IndexError):
        s.add(len(s.v))
    with pytest.raises(IndexError):
        s.add(-1)


def test_jwks_age_and_labels_are_escaped() -> None:
    import time as _time

    from fastgate.ops.stats import Stats

    text = Stats().exposition("h11", None, {'https://idp/"x"': _time.time() - 30,
                                            "https://never": 0.0}).decode()
    line = next(line for line in text.splitlines()
                if line.startswith("fastgate_jwks_age_seconds{"))
    assert line.startswith('fastgate_jwks_age_seconds{url="https://idp/\\"x\\""} ')
    assert 29 <= float(line.split()[-1]) < 40
    assert "https://never" not in text  # no keys fetched yet: no age
