"""FastCGI framing (fastgate.http.fastcgi): records, name-value pairs, the CGI head."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastgate.http import fastcgi as wire
from fastgate.http.engine import ProtocolError


def _records(data: bytes) -> list[tuple[int, bytes]]:
    return wire.Records().feed(data)


def test_a_request_is_begin_params_and_stdin_each_closed() -> None:
    out = wire.request([(b"A", b"1")], b"body", keep_conn=False)
    kinds = [k for k, _ in _records(out)]
    assert kinds == [wire.BEGIN_REQUEST, wire.PARAMS, wire.PARAMS, wire.STDIN, wire.STDIN]
    recs = _records(out)
    assert recs[0][1] == struct.pack(">HB5x", wire.RESPONDER, 0)  # no KEEP_CONN
    assert wire.read_pairs(recs[1][1]) == [(b"A", b"1")]
    assert recs[2][1] == b"" and recs[3][1] == b"body" and recs[4][1] == b""
    assert len(out) % 8 == 0  # every record padded to 8 bytes, as nginx's


def test_an_empty_body_sends_only_the_closing_stdin() -> None:
    kinds = [k for k, _ in _records(wire.request([], b"", keep_conn=True))]
    assert kinds == [wire.BEGIN_REQUEST, wire.PARAMS, wire.STDIN]


def test_long_streams_are_split_at_65535_bytes() -> None:
    body = b"x" * (70000)
    recs = [c for k, c in _records(wire.request([], body, False)) if k == wire.STDIN]
    assert [len(c) for c in recs] == [65535, 70000 - 65535, 0]


@given(st.lists(st.tuples(st.binary(max_size=300), st.binary(max_size=300)), max_size=8))
def test_pairs_round_trip(pairs: list[tuple[bytes, bytes]]) -> None:
    assert wire.read_pairs(wire.pairs(pairs)) == pairs


@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=50))
def test_records_come_out_whole_however_the_bytes_are_cut(data: bytes, step: int) -> None:
    stream = wire.stream(wire.STDOUT, data) + wire.record(wire.END_REQUEST, b"\0" * 8)
    reader = wire.Records()
    got: list[tuple[int, bytes]] = []
    for i in range(0, len(stream), step):
        got += reader.feed(stream[i:i + step])
    assert b"".join(c for k, c in got if k == wire.STDOUT) == data
    assert got[-1][0] == wire.END_REQUEST and not reader.pending


def test_a_record_of_another_version_is_a_502() -> None:
    with pytest.raises(ProtocolError) as e:
        wire.Records().feed(b"\x02\x06\x00\x01\x00\x00\x00\x00")
    assert e.value.status == 502 and "version" in e.value.reason


@pytest.mark.parametrize("raw,status,reason", [
    (b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nrest", 404, b"Not Found"),
    (b"Content-Type: text/plain\n\nrest", 200, b"OK"),
    (b"Location: /elsewhere\r\n\r\nrest", 302, b"Moved Temporarily"),
    (b"Status: 301\r\nLocation: /x\r\n\r\nrest", 301, b""),
])
def test_the_cgi_head(raw: bytes, status: int, reason: bytes) -> None:
    got = wire.CgiHead(4096).feed(raw)
    assert got is not None
    assert got[:2] == (status, reason) and got[3] == b"rest"
    assert all(n.lower() != b"status" for n, _ in got[2])


def test_the_cgi_head_may_come_in_pieces() -> None:
    head = wire.CgiHead(4096)
    assert head.feed(b"Content-Type: a\r") is None
    assert head.feed(b"\n\r") is None
    got = head.feed(b"\nbody")
    assert got == (200, b"OK", [(b"Content-Type", b"a")], b"body")


@pytest.mark.parametrize("raw,words", [
    (b"Status: abc\r\n\r\n", "invalid status"),
    (b"Bad Header\r\n\r\n", "invalid header"),
    (b" X: y\r\n\r\n", "invalid header"),
    (b"X-Long: " + b"a" * 5000 + b"\r\n\r\n", "too big header"),
])
def test_a_bad_cgi_head_is_a_502(raw: bytes, words: str) -> None:
    with pytest.raises(ProtocolError) as e:
        wire.CgiHead(4096).feed(raw)
    assert e.value.status == 502 and words in e.value.reason


def test_a_head_that_never_ends_is_too_big_once_past_the_limit() -> None:
    head = wire.CgiHead(100)
    assert head.feed(b"X: " + b"a" * 50) is None
    with pytest.raises(ProtocolError):
        head.feed(b"a" * 60)


def test_end_request_status() -> None:
    assert wire.end_status(struct.pack(">IB3x", 7, 0)) == (7, 0)
    with pytest.raises(ProtocolError):
        wire.end_status(b"\0")
