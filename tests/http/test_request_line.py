"""A request line as nginx reads it, on both engines: how long it may be (CRLF included,
one of large_client_header_buffers), what a refused one leaves for $request (its bytes
as they came: nginx's r->request_line), and that bytes no request line begins with
are refused as they come, not once a line's end or a buffer's worth has arrived."""

from __future__ import annotations

import pytest
from helpers import Told

from fastgate.http.h11_engine import H11Server
from fastgate.http.httptools_engine import HttptoolsServer

ENGINES = [HttptoolsServer, H11Server]
MAX_LINE = 1024


def feed(engine_cls: type, *pieces: bytes) -> Told:
    told = Told()
    engine = engine_cls(told, 32768, MAX_LINE)
    for piece in pieces:
        engine.feed(piece)
    return told


def line_of(method: bytes, size: int) -> bytes:
    """A request line of ``size`` bytes, its CRLF included."""
    start, end = method + b" /", b" HTTP/1.1\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


@pytest.mark.parametrize("engine_cls", ENGINES)
@pytest.mark.parametrize("method", [b"GET", b"DELETE", b"OPTIONS", b"PROPFIND", b"M-SEARCH"])
@pytest.mark.parametrize("split", [None, 100])
def test_a_line_may_fill_a_buffer_and_no_more(engine_cls: type, method: bytes,
                                              split: int | None) -> None:
    # nginx 1.22: a line of 8192 bytes with its CRLF under the default 8k buffers is
    # served, one of 8193 is a 414, whatever its method
    for size, served in ((MAX_LINE, True), (MAX_LINE + 1, False)):
        data = line_of(method, size) + b"Host: a\r\n\r\n"
        pieces = [data] if split is None else [data[i:i + split]
                                               for i in range(0, len(data), split)]
        told = feed(engine_cls, *pieces)
        if served:
            assert [h.method for h in told.heads] == [method] and not told.errors
        else:
            assert not told.heads and [e.status for e in told.errors] == [414]
            # nginx logs the buffer the line did not end in, not the line read whole
            assert told.errors[0].unread == data[:MAX_LINE]
            assert told.errors[0].line is None and told.errors[0].host is None


@pytest.mark.parametrize("engine_cls", ENGINES)
def test_a_line_too_long_is_refused_as_it_grows(engine_cls: type) -> None:
    # (no line end has come, nor a Host: nginx says 414 once a buffer is full)
    told = feed(engine_cls, b"GET /" + b"a" * 600, b"a" * 600)
    assert [e.status for e in told.errors] == [414]
    assert told.errors[0].unread == (b"GET /" + b"a" * 1200)[:MAX_LINE]


@pytest.mark.parametrize("engine_cls", ENGINES)
@pytest.mark.parametrize(("data", "status", "unread"), [
    (b"GARBAGE\r\n\r\n", 400, b"GARBAGE"),
    (b"\r\n\r\nGARBAGE x\r\n\r\n", 400, b"GARBAGE x"),
    (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, b"GET /a b HTTP/1.1"),
    (b"GET / FOO/1.1\r\nHost: a\r\n\r\n", 400, b"GET / FOO/1.1"),
    (b"get / HTTP/1.1\r\nHost: a\r\n\r\n", 400, b"get / HTTP/1.1"),
    (b"G\x01T / HTTP/1.1\r\n\r\n", 400, b"G\x01T / HTTP/1.1"),
    (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505, b"GET / HTTP/3.0"),
])
def test_a_line_refused_is_kept_as_it_came(engine_cls: type, data: bytes, status: int,
                                           unread: bytes) -> None:
    told = feed(engine_cls, data)
    assert not told.heads and [e.status for e in told.errors] == [status]
    error = told.errors[0]
    assert error.unread == unread
    assert error.line is None and error.host is None  # (no Host chooses its server)


@pytest.mark.parametrize("engine_cls", ENGINES)
def test_a_line_read_before_a_bad_header_is_no_unread_line(engine_cls: type) -> None:
    told = feed(engine_cls, b"GET /x HTTP/1.1\r\nHost: a\r\nBad\x01: y\r\n\r\n")
    error = told.errors[0]
    assert error.line == (b"GET", b"/x", b"1.1") and error.host == b"a"
    assert error.unread is None


@pytest.mark.parametrize("engine_cls", ENGINES)
@pytest.mark.parametrize("start", [b"\x16\x03\x01\x00\xa5\x01\x00", b" GET", b"G\x01",
                                   b"get", b"GET\t"])
def test_bytes_no_line_begins_with_are_refused_at_once(engine_cls: type,
                                                       start: bytes) -> None:
    # a TLS ClientHello on a plain port: nginx answers 400 as it reads it; waiting for
    # a line end left such a client hanging until client_header_timeout
    told = feed(engine_cls, start)
    assert [e.status for e in told.errors] == [400]
    assert told.errors[0].unread == start


@pytest.mark.parametrize("engine_cls", ENGINES)
@pytest.mark.parametrize("start", [b"GET", b"M-SEARCH", b"GET ", b"GET /x", b"\r\nPOST /x HTT"])
def test_a_line_that_may_yet_be_one_is_waited_for(engine_cls: type, start: bytes) -> None:
    told = feed(engine_cls, start)
    assert not told.errors and not told.heads
