"""The two client engines read an upstream's response alike where it matters for what
reaches the client and for the connection's next request: what llhttp refuses in a
response head h11 is made to refuse too, and neither pools a connection whose last
answer's framing could not see a body sent anyway."""

from __future__ import annotations

from typing import Any

import pytest
from test_wire import Events

from fastgate.http.h11_engine import H11Client
from fastgate.http.httptools_engine import HttptoolsClient

ENGINES = [H11Client, HttptoolsClient]


def _statuses(ev: Events) -> list[Any]:
    """The events, a head said by its status."""
    return [(e[0], e[1].status) if e[0] in ("head", "info") else e for e in ev.log]


def _read(engine_cls: type, data: bytes, method: bytes = b"GET",
          piece: int | None = None) -> tuple[Any, Events]:
    ev = Events()
    engine = engine_cls(ev)
    engine.send_head(method, b"/", [(b"Host", b"a")], 0)
    engine.send_end()
    if piece is None:
        engine.feed(data)
    else:
        for at in range(0, len(data), piece):
            engine.feed(data[at:at + piece])
    return engine, ev


REFUSED = {
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: b\r\n folded\r\nContent-Length: 0\r\n\r\n",
    "obs-fold, tab": b"HTTP/1.1 200 OK\r\nX-A: b\r\n\tfolded\r\nContent-Length: 0\r\n\r\n",
    "obs-fold after a 100": b"HTTP/1.1 100 Continue\r\n\r\n"
                            b"HTTP/1.1 200 OK\r\nX-A: b\r\n folded\r\nContent-Length: 0\r\n\r\n",
    "control byte": b"HTTP/1.1 200 OK\r\nX-A: \x01\r\nContent-Length: 0\r\n\r\n",
    "DEL": b"HTTP/1.1 200 OK\r\nX-A: b\x7f\r\nContent-Length: 0\r\n\r\n",
    "length list": b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
    "length twice": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "length twice, bare LF": b"HTTP/1.1 200 OK\nContent-Length: 5\nContent-Length: 5\n\nhello",
    "signed length": b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
    "status 099": b"HTTP/1.1 099 X\r\nContent-Length: 2\r\n\r\nhi",
    "status 000": b"HTTP/1.1 000 X\r\nContent-Length: 2\r\n\r\nhi",
}


@pytest.mark.parametrize("engine_cls", ENGINES)
@pytest.mark.parametrize("piece", [None, 1, 7])
@pytest.mark.parametrize("name", list(REFUSED))
def test_a_head_llhttp_refuses_is_refused_by_both(engine_cls: type, piece: int | None,
                                                   name: str) -> None:
    engine, ev = _read(engine_cls, REFUSED[name], piece=piece)
    assert ("error",) in ev.log and not any(e[0] == "head" for e in ev.log), ev.log
    assert not engine.reusable


TAKEN = {
    "bare LF": (b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", [("head", 200),
                                                              ("body", b"hello"), ("end",)]),
    "a 100 first": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2"
                    b"\r\nX: a b\r\n\r\nhi", [("info", 100), ("head", 200), ("body", b"hi"),
                                            ("end",)]),
    # a body byte that looks like a fold or a control byte is the body's
    "body like a fold": (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\n \x01\x7f",
                         [("head", 200), ("body", b"\n \x01\x7f"), ("end",)]),
}


@pytest.mark.parametrize("engine_cls", ENGINES)
@pytest.mark.parametrize("piece", [None, 1, 7])
@pytest.mark.parametrize("name", list(TAKEN))
def test_heads_both_take(engine_cls: type, piece: int | None, name: str) -> None:
    data, events = TAKEN[name]
    engine, ev = _read(engine_cls, data, piece=piece)
    assert _statuses(ev) == events
    assert engine.reusable


@pytest.mark.parametrize("engine_cls", ENGINES)
@pytest.mark.parametrize(("method", "data", "reusable"), [
    (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", False),
    (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    (b"GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", False),
    (b"GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", False),
    (b"GET", b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", False),
    (b"GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n", True),
    (b"GET", b"HTTP/1.1 204 No Content\r\n\r\n", True),
    (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
])
def test_a_connection_is_pooled_only_when_its_answer_s_framing_is_whole(
        engine_cls: type, method: bytes, data: bytes, reusable: bool) -> None:
    """A HEAD's answer, or a 204/304 that claims a body, ends at its head: a body sent
    anyway would be the next request's answer."""
    engine, ev = _read(engine_cls, data, method)
    assert ev.log[-1] == ("end",), ev.log
    assert engine.reusable is reusable


@pytest.mark.parametrize("engine_cls", ENGINES)
def test_the_next_request_on_a_pooled_connection_is_checked_afresh(engine_cls: type) -> None:
    engine, ev = _read(engine_cls, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert engine.reusable
    engine.start_next()
    engine.send_head(b"GET", b"/", [(b"Host", b"a")], 0)
    engine.send_end()
    engine.feed(REFUSED["obs-fold"])
    assert ev.log[-1] == ("error",)
