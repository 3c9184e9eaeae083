"""The CGI family on the wire: FastCGI records and name-value pairs (http.fastcgi),
uwsgi packets (http.uwsgi), SCGI netstrings (http.scgi), the CGI head (http.cgi), and
memcached's get (http.memcached)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastgate.http import fastcgi as wire
from fastgate.http import memcached, scgi, uwsgi
from fastgate.http.cgi import CgiHead
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
    got = CgiHead(4096).feed(raw)
    assert got is not None
    assert got[:2] == (status, reason) and got[3] == b"rest"
    assert all(n.lower() != b"status" for n, _ in got[2])


def test_the_cgi_head_may_come_in_pieces() -> None:
    head = CgiHead(4096)
    assert head.feed(b"Content-Type: a\r") is None
    assert head.feed(b"\n\r") is None
    got = head.feed(b"\nbody")
    assert got == (200, b"OK", [(b"Content-Type", b"a")], b"body")


@pytest.mark.parametrize("raw,words", [
    (b"Status: abc\r\n\r\n", "invalid status"),
    (b"Bad Header\r\n\r\n", "invalid header"),
    (b" X: y\r\n\r\n", "invalid header"),
    (b"X: a\x00b\r\n\r\n", "invalid header"),  # (nginx's parser refuses a NUL)
    (b"Status: 200 O\x00K\r\n\r\n", "invalid header"),
    (b"X-Long: " + b"a" * 5000 + b"\r\n\r\n", "too big header"),
])
def test_a_bad_cgi_head_is_a_502(raw: bytes, words: str) -> None:
    with pytest.raises(ProtocolError) as e:
        CgiHead(4096).feed(raw)
    assert e.value.status == 502 and words in e.value.reason


def test_a_head_that_never_ends_is_too_big_once_past_the_limit() -> None:
    head = CgiHead(100)
    assert head.feed(b"X: " + b"a" * 50) is None
    with pytest.raises(ProtocolError):
        head.feed(b"a" * 60)


def test_end_request_status() -> None:
    assert wire.end_status(struct.pack(">IB3x", 7, 0)) == (7, 0)
    with pytest.raises(ProtocolError):
        wire.end_status(b"\0")


# --- uwsgi and SCGI ---------------------------------------------------------------------------


@given(st.lists(st.tuples(st.binary(max_size=200), st.binary(max_size=200)), max_size=8),
       st.binary(max_size=100), st.integers(0, 255), st.integers(0, 255))
def test_uwsgi_packets_round_trip(pairs: list[tuple[bytes, bytes]], body: bytes, m1: int,
                                  m2: int) -> None:
    packet = uwsgi.request(pairs, body, m1, m2)
    assert uwsgi.read_vars(packet) == (m1, m2, pairs, body)


def test_uwsgi_string_counts_in_the_size_and_a_too_big_request_is_refused() -> None:
    packet = uwsgi.request([(b"A", b"1")], b"body", string=b"tail")
    assert struct.unpack_from("<H", packet, 1)[0] == 2 + 1 + 2 + 1 + 4
    assert packet.endswith(b"tailbody")
    with pytest.raises(uwsgi.TooBig):
        uwsgi.request([(b"A", b"x" * 40000), (b"B", b"y" * 30000)], b"")


@given(st.lists(st.tuples(st.binary(min_size=1, max_size=50).filter(lambda b: b"\0" not in b),
                          st.binary(max_size=50).filter(lambda b: b"\0" not in b)),
                max_size=8), st.binary(max_size=100))
def test_scgi_netstrings_round_trip(pairs: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers, rest = scgi.read_headers(scgi.request(pairs, body))
    assert headers == [(b"CONTENT_LENGTH", str(len(body)).encode()), *pairs]
    assert rest == body


@pytest.mark.parametrize("raw,status,reason,headers", [
    (b"HTTP/1.1 404 Nope\r\nX: 1\r\n\r\n", 404, b"Nope", [(b"X", b"1")]),
    (b"HTTP/1.0 200 OK\r\nStatus: 500 Ignored\r\n\r\n", 200, b"OK", []),
    (b"Status: 201 Made\r\n\r\n", 201, b"Made", []),
])
def test_a_status_line_may_come_first(raw: bytes, status: int, reason: bytes,
                                      headers: list[tuple[bytes, bytes]]) -> None:
    got = CgiHead(4096, status_line=True).feed(raw)
    assert got == (status, reason, headers, b"")


def test_a_bad_status_line_is_a_502_and_fastcgi_takes_none() -> None:
    with pytest.raises(ProtocolError) as e:
        CgiHead(4096, status_line=True).feed(b"HTTP/x 200 OK\r\n\r\n")
    assert "invalid status line" in e.value.reason
    with pytest.raises(ProtocolError):  # a FastCGI application must send headers
        CgiHead(4096).feed(b"HTTP/1.1 200 OK\r\n\r\n")


# --- memcached ----------------------------------------------------------------------------


def test_memcached_keys_are_escaped_as_nginx_escapes_them() -> None:
    assert memcached.request(b"/a b%c\x01\x7f") == b"get /a%20b%25c%01\x7f\r\n"


@given(st.binary(max_size=200), st.integers(0, 2**16), st.integers(1, 40))
def test_memcached_answers_however_they_are_cut(value: bytes, flags: int, step: int) -> None:
    wire_bytes = b"VALUE k %d %d\r\n%s\r\nEND\r\n" % (flags, len(value), value)
    answer = memcached.Answer(b"k", 4096)
    got = None
    for i in range(0, len(wire_bytes), step):
        assert got is None
        got = answer.feed(wire_bytes[i:i + step])
    assert got == (flags, value)


@pytest.mark.parametrize("raw,words", [
    (b"SERVER_ERROR out of memory\r\n", "invalid response"),
    (b"VALUE other 0 1\r\nx\r\nEND\r\n", "invalid key"),
    (b"VALUE k zero 1\r\nx\r\nEND\r\n", "invalid length"),
    # (thousands of digits: never handed to int())
    (b"VALUE k 0 " + b"9" * 5000 + b"\r\nx\r\nEND\r\n", "invalid length"),
    (b"VALUE k 0 1\r\nxy\r\nEND\r\n", "invalid trailer"),
    (b"END\n", "invalid response"),
])
def test_a_bad_memcached_answer_is_a_502(raw: bytes, words: str) -> None:
    with pytest.raises(ProtocolError) as e:
        memcached.Answer(b"k", 65536).feed(raw)
    assert e.value.status == 502 and words in e.value.reason


def test_a_memcached_miss() -> None:
    assert memcached.Answer(b"k", 4096).feed(b"END\r\n") == (0, None)


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_an_answer_sent_before_a_reset_is_read_before_the_reset(loop_kind: str) -> None:
    """An application that answers and resets before the gateway's write returned:
    the answer is read (as nginx, whose writev had returned), then the reset."""
    import asyncio
    import socket

    import uvloop

    from fastgate.http.cgi import AppConnection

    async def main() -> tuple[bytes, type[BaseException] | None]:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readexactly(len(b"the request"))
            writer.write(b"HTTP/1.1 200 OK\r\n\r\npart")
            await writer.drain()
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        app = await AppConnection.open("127.0.0.1", port, None)
        await app.send(b"the request", 1.0)
        await asyncio.sleep(0.2)  # the answer and the reset are both in before the read
        got, error = await app.read(1.0), None
        try:
            await app.read(1.0)
        except OSError as e:
            error = type(e)
        app.abort()
        server.close()
        return got, error

    runner = uvloop.run if loop_kind == "uvloop" else asyncio.run
    got, error = runner(main())
    assert got == b"HTTP/1.1 200 OK\r\n\r\npart"
    assert error is not None and issubclass(error, ConnectionError)


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_a_write_after_the_application_closed_is_taken_and_its_answer_read(
        loop_kind: str) -> None:
    """An application that answered and closed before the gateway wrote: the write is
    taken (as the kernel takes nginx's writev after a FIN) and the answer read; a write
    on a connection the gateway itself ended fails with an errno (a message says
    "32: Broken pipe", never "None: None")."""
    import asyncio

    import uvloop

    from fastgate.http.cgi import AppConnection

    async def main() -> tuple[bytes, bytes, int | None]:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"early answer")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        app = await AppConnection.open("127.0.0.1", port, None)
        await asyncio.sleep(0.2)  # the answer and the close are both in
        await app.send(b"the request", 1.0)
        got, end = await app.read(1.0), await app.read(1.0)
        app.abort()
        ours = await AppConnection.open("127.0.0.1", port, None)
        ours.abort()  # ended by the gateway (its connection_lost not yet run)
        errno_seen = None
        try:
            await ours.send(b"more", 1.0)
        except OSError as e:
            errno_seen = e.errno
        server.close()
        return got, end, errno_seen

    runner = uvloop.run if loop_kind == "uvloop" else asyncio.run
    got, end, errno_seen = runner(main())
    assert got == b"early answer" and end == b""
    assert errno_seen == 32
