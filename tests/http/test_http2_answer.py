"""An answer as the request path writes it for an HTTP/2 stream, read back into HTTP/2
fields (fastgate.http.http2): the fields HTTP/2 cannot carry dropped — never the whole
stream reset — and nothing an upstream could send, having passed the upstream parser
of either engine, that the read-back refuses."""

from __future__ import annotations

import asyncio

import h11
import httptools
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgate.http.http2 import Stream, _carried


class Owner:
    """The HTTP/2 connection as a stream's answer reaches it."""

    def __init__(self) -> None:
        self.heads: list[list[tuple[bytes, bytes]]] = []
        self.resets = 0

    def send_head(self, s: Stream, fields: list[tuple[bytes, bytes]]) -> None:
        self.heads.append(fields)

    def flush(self, s: Stream) -> None:
        pass

    def reset(self, s: Stream, code: object) -> None:
        self.resets += 1

    def settle(self, s: Stream) -> None:
        pass


def _stream_reads(raw: bytes) -> Owner:
    async def main() -> Owner:
        owner = Owner()
        Stream(owner, 1, b"GET", 0).write(raw)  # type: ignore[arg-type]
        return owner
    return asyncio.run(main())


def test_connection_fields_and_a_te_other_than_trailers_are_dropped() -> None:
    fields = [(b"x-a", b"1"), (b"te", b"gzip"), (b"upgrade", b"h2c"), (b"keep-alive", b"5"),
              (b"connection", b"close"), (b"transfer-encoding", b"chunked"),
              (b"proxy-connection", b"x"), (b"x-b", b"2")]
    assert _carried(fields) == [(b"x-a", b"1"), (b"x-b", b"2")]
    assert _carried([(b"te", b"Trailers")]) == [(b"te", b"Trailers")]


Head = tuple[bytes, list[tuple[bytes, bytes]]]


def _llhttp_reads(raw: bytes) -> Head | None:
    """The reason and fields llhttp (the httptools engine's upstream parser) reads."""
    class Sink:
        def __init__(self) -> None:
            self.reason = b""
            self.fields: list[tuple[bytes, bytes]] = []

        def on_status(self, reason: bytes) -> None:
            self.reason += reason

        def on_header(self, name: bytes, value: bytes) -> None:
            self.fields.append((name, value))
    sink = Sink()
    try:
        httptools.HttpResponseParser(sink).feed_data(raw)
    except httptools.HttpParserError:
        return None
    return sink.reason, sink.fields


def _h11_reads(raw: bytes) -> Head | None:
    """The reason and fields h11 (the h11 engine's upstream parser) reads."""
    c = h11.Connection(h11.CLIENT)
    c.send(h11.Request(method="GET", target="/", headers=[("host", "-")]))
    c.send(h11.EndOfMessage())
    try:
        c.receive_data(raw)
        ev = c.next_event()
    except h11.RemoteProtocolError:
        return None
    if not isinstance(ev, h11.Response):
        return None
    return bytes(ev.reason), [(bytes(n), bytes(v)) for n, v in ev.headers.raw_items()]


def _written(head: Head) -> bytes:
    """The answer's head as the request path writes it from what the parser read."""
    reason, fields = head
    return (b"HTTP/1.1 200 " + reason + b"\r\n"
            + b"".join(n + b": " + v + b"\r\n" for n, v in fields
                       if n.lower() != b"content-length")
            + b"content-length: 0\r\n\r\n")


# mostly what a field may hold, with the bytes at the edges of what parsers allow
_EDGES = [0, 1, 9, 11, 12, 13, 10, 0x20, 0x22, 0x28, 0x2c, 0x3a, 0x7b, 0x7f, 0x80, 0xff]
_BYTES = st.one_of(st.integers(0x21, 0x7e), st.sampled_from(_EDGES))


def _text(min_size: int = 0) -> st.SearchStrategy[bytes]:
    return st.lists(_BYTES, min_size=min_size, max_size=8).map(bytes)


@settings(max_examples=1000, deadline=None)
@given(name=_text(1), value=_text(), reason=_text())
def test_what_the_upstream_parser_reads_the_read_back_reads(
        name: bytes, value: bytes, reason: bytes) -> None:
    """The answer's head is the upstream's fields and reason as its parser read them:
    whatever llhttp (the httptools engine) or h11 (the h11 engine) takes, the stream
    reads back as a head, never a reset."""
    raw = (b"HTTP/1.1 200 " + reason + b"\r\n" + name + b": " + value
           + b"\r\ncontent-length: 0\r\n\r\n")
    for read in (_llhttp_reads(raw), _h11_reads(raw)):
        if read is None:
            continue
        owner = _stream_reads(_written(read))
        assert owner.resets == 0 and len(owner.heads) == 1, raw
        assert owner.heads[0][0] == (b":status", b"200")


def test_a_reason_h11_refuses_is_not_a_reset() -> None:
    """A NUL in an upstream's reason phrase (llhttp and nginx take it; HTTP/2 has no
    reason phrase): the answer goes, its status and fields whole; after a 100 line the
    final one is read too."""
    owner = _stream_reads(b"HTTP/1.1 200 O\x00K\r\nx-a: 1\r\ncontent-length: 0\r\n\r\n")
    assert owner.resets == 0
    assert owner.heads == [[(b":status", b"200"), (b"x-a", b"1"), (b"content-length", b"0")]]

    async def continued() -> Owner:
        owner = Owner()
        s = Stream(owner, 1, b"POST", 0)  # type: ignore[arg-type]
        s.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.write(b"HTTP/1.1 404 \x0b\r\ncontent-length: 0\r\n\r\n")
        return owner
    owner = asyncio.run(continued())
    assert owner.resets == 0 and [h[0] for h in owner.heads] == [
        (b":status", b"100"), (b":status", b"404")]
