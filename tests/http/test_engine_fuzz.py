"""Fuzzing the request path's parsers: arbitrary bytes and mutated requests fed to both
engines, whole or in pieces. Nothing may escape but the engine's error callback, and the
fast engine never accepts what the reference (h11) refuses, nor reads an accepted
request differently: it may only be stricter (llhttp refuses, for instance, an empty
chunk extension that h11 lets pass). The curated table in test_engine_differential
asks for exact agreement.

A short fixed-seed run is part of ``make test``; ``make fuzz`` runs many more examples.
"""

from __future__ import annotations

import re

import pytest
from helpers import fuzz_examples
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_engine_differential import run

from fastgate.http.h11_engine import H11Server
from fastgate.http.httptools_engine import HttptoolsServer

pytestmark = pytest.mark.fuzz

BASE = [
    b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
]
TOKENS = [b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b"0", b"-1", b"chunked", b"identity",
          b"Content-Length: ", b"Transfer-Encoding: ", b"Host: ", b"HTTP/1.1", b"\x00",
          b"\xff", b"ffffffff", b";", b",", b"GET ", b"/", b"%", b"%00", b"=", b"FOO ",
          b"X_Y ", b"@", b"{", b"\"", b"X@Y: "]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(BASE)) * draw(st.integers(1, 2)))
    for _ in range(draw(st.integers(1, 5))):
        pos = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        tok = draw(st.sampled_from(TOKENS))
        if action == "insert":
            data[pos:pos] = tok
        elif action == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        else:
            data[pos:pos + len(tok)] = tok
    return bytes(data)


@settings(max_examples=fuzz_examples(300), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated() | st.binary(max_size=300), split=st.sampled_from([None, 1, 3, 64]))
def test_engines_survive_and_agree(data: bytes, split: int | None) -> None:
    # One known difference that is not about framing: llhttp takes several spaces
    # between the parts of a request line (both read the same method and target), h11
    # refuses them. Such inputs are left out; everything else must match.
    assume(not re.search(rb"[A-Z-] {2,}\S|[^ ] {2,}HTTP/", data))
    fast, fast_failed = run(HttptoolsServer, data, split)
    ref, ref_failed = run(H11Server, data, split)
    assert fast == ref[:len(fast)]  # what the fast engine accepts, it reads identically
    if len(fast) < len(ref) or ref_failed:
        assert fast_failed  # it stops short of the reference only by refusing
