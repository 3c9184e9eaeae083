"""A stream's fields as the HTTP/1.1 head the request path reads (fastgate.http.http2):
the pseudo-fields make the request line and Host, the cookie crumbs one Cookie field as
nginx joins them, the body's framing from content-length or the stream's end — and,
for any fields h2 lets through, either a refusal or a head the HTTP/1.1 parser reads
back as exactly those fields: nothing a client sends can add a line or a request."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastgate.http.http2 import http1_head

Fields = list[tuple[bytes, bytes]]
BASE: Fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/a?b=c"),
                (b":authority", b"example.test")]


def _parse(head: bytes) -> h11.Request:
    p = h11.Connection(h11.SERVER)
    p.receive_data(head)
    event = p.next_event()
    assert isinstance(event, h11.Request), event
    return event


def test_the_request_line_and_host() -> None:
    head, method, length = http1_head(BASE + [(b"x-a", b"1")], whole=True)
    assert (head, method, length) == (
        b"GET /a?b=c HTTP/1.1\r\nhost: example.test\r\nx-a: 1\r\n\r\n", b"GET", 0)


def test_the_clients_host_field_is_the_host() -> None:
    head, _, _ = http1_head(BASE + [(b"host", b"example.test")], whole=True)
    assert head is not None and head.count(b"host:") == 1


def test_cookie_crumbs_are_one_field_last() -> None:
    head, _, _ = http1_head(BASE + [(b"cookie", b"a=1"), (b"x-b", b"2"), (b"cookie", b"b=2")],
                            whole=True)
    assert head == (b"GET /a?b=c HTTP/1.1\r\nhost: example.test\r\nx-b: 2\r\n"
                    b"cookie: a=1; b=2\r\n\r\n")


@pytest.mark.parametrize(("extra", "whole", "length", "chunked"), [
    ([(b"content-length", b"5")], False, 5, False),
    ([], False, -1, True),  # DATA to come, no length: chunked
    ([], True, 0, False),  # the stream ended with its HEADERS
])
def test_the_bodys_framing(extra: Fields, whole: bool, length: int, chunked: bool) -> None:
    head, _, got = http1_head([(b":method", b"POST"), *BASE[1:], *extra], whole)
    assert head is not None and got == length
    assert (b"transfer-encoding: chunked\r\n" in head) == chunked


@pytest.mark.parametrize("fields", [
    [(b":method", b"G T"), *BASE[1:]],
    [(b":method", b""), *BASE[1:]],
    [(b":method", b"CONNECT"), *BASE[1:]],
    [BASE[0], BASE[1], (b":path", b"/a b"), BASE[3]],
    [BASE[0], BASE[1], (b":path", b"/a\x7f"), BASE[3]],
    [BASE[0], BASE[1], (b":path", b""), BASE[3]],
    [*BASE, (b"content-length", b"-1")],
    [*BASE, (b"content-length", b"1 2")],
])
def test_what_cannot_be_a_request_line_is_refused(fields: Fields) -> None:
    assert http1_head(fields, whole=True)[0] is None


_TOKEN = st.text("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz", min_size=1,
                 max_size=12).map(str.encode)
# what h2 passes as a value has no CR, LF or NUL and no surrounding whitespace; other
# controls it passes on are the HTTP/1.1 parser's to refuse (a 400, as over HTTP/1.1)
_VALUE = st.binary(max_size=30).map(
    lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7f or c == 0x09).strip(b" \t"))
_NAME = _TOKEN.filter(lambda n: n not in (b"host", b"content-length", b"transfer-encoding",
                                          b"connection", b"te", b"cookie"))


@given(method=st.sampled_from([b"GET", b"POST", b"PUT", b"X-Y"]) | _TOKEN.map(bytes.upper),
       path=st.binary(min_size=1, max_size=40),
       fields=st.lists(st.tuples(_NAME, _VALUE), max_size=8),
       cookies=st.lists(_VALUE.filter(bool), max_size=3))
def test_any_head_reads_back_as_its_fields(method: bytes, path: bytes, fields: Fields,
                                           cookies: list[bytes]) -> None:
    given_fields = [(b":method", method), (b":scheme", b"http"), (b":path", path),
                    (b":authority", b"h.test"), *fields,
                    *((b"cookie", c) for c in cookies)]
    head, _, _ = http1_head(given_fields, whole=True)
    if method == b"CONNECT" or any(c <= 0x20 or c == 0x7f for c in path):
        assert head is None
        return
    assert head is not None
    if not path.isascii():
        return  # h11 refuses raw bytes in the target that llhttp takes
    req = _parse(head)
    assert (req.method, req.target) == (method, path)
    expected = [(b"host", b"h.test"), *fields]
    if cookies:
        expected.append((b"cookie", b"; ".join(cookies)))
    assert [(n, v) for n, v in req.headers] == expected
