"""The sub filter (fastgate.proxy.sub_filter): replacements as nginx makes them, the
same however the body is cut into reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastgate.proxy.sub_filter import SubFilter


def _whole(pairs: list[tuple[bytes, bytes]], once: bool, body: bytes) -> bytes:
    f = SubFilter(pairs, once)
    return f.feed(body) + f.finish()


@pytest.mark.parametrize("pairs,once,body,want", [
    ([(b"cat", b"dog")], True, b"a cat, a CAT", b"a dog, a CAT"),
    ([(b"cat", b"dog")], False, b"a cat, a CAT", b"a dog, a dog"),  # case-insensitive
    ([(b"ab", b"1"), (b"b", b"2")], False, b"abb", b"12"),  # leftmost, then in order
    ([(b"b", b"2"), (b"ab", b"1")], False, b"abb", b"12"),  # leftmost wins
    ([(b"a", b"aa")], False, b"aaa", b"aaaaaa"),  # a replacement is not searched again
    ([(b"x", b"y")], True, b"", b""),
    ([(b"</body>", b"<script/></body>")], True, b"<html><BODY>x</Body></html>",
     b"<html><BODY>x<script/></body></html>"),
    # at the body's end nginx's parser stops where a string tried first could still
    # begin (the body ends inside it), and the rest goes unreplaced (compared with
    # nginx 1.22: fuzz/nginx_filters.py found it)
    ([(b"ab", b"R"), (b"a", b"X")], False, b"xa b aab a", b"xX b XR a"),
    ([(b"a", b"X"), (b"ab", b"R")], False, b"xa", b"xX"),  # ("a" is tried first)
    ([(b"abc", b"R"), (b"b", b"X")], False, b"ab", b"ab"),
    ([(b"abc", b"R"), (b"b", b"X")], False, b"abx", b"aXx"),
])
def test_replacements(pairs: list[tuple[bytes, bytes]], once: bool, body: bytes,
                      want: bytes) -> None:
    assert _whole(pairs, once, body) == want


@given(st.text(alphabet="abcAB<>/ ", max_size=300).map(str.encode),
       st.lists(st.integers(0, 300), max_size=6), st.booleans())
def test_the_same_however_the_body_is_cut(body: bytes, cuts: list[int], once: bool) -> None:
    pairs = [(b"abc", b"X"), (b"b<", b"YY"), (b"</a>", b"")]
    f = SubFilter(pairs, once)
    out = b""
    last = 0
    for cut in sorted(c for c in cuts if c <= len(body)):
        out += f.feed(body[last:cut])
        last = cut
    out += f.feed(body[last:]) + f.finish()
    assert out == _whole(pairs, once, body)
