"""nginx's header buffers (client_header_buffer_size, then large_client_header_buffers):
how a head is placed in them, line by line, and what both engines answer when it does
not fit — nginx 1.22's answers, compared with it in tests/e2e/test_nginx_parity_e2e."""

from __future__ import annotations

import pytest
from helpers import Told
from hypothesis import example, given
from hypothesis import strategies as st

from fastgate.http.engine import buffers_overflow, head_overflow
from fastgate.http.h11_engine import H11Server
from fastgate.http.httptools_engine import HttptoolsServer

ENGINES = [HttptoolsServer, H11Server]


@pytest.mark.parametrize("lines,spot", [
    ([16, 9, 2], None),  # all in the first buffer
    ([16, 9, 907, 907, 2], None),  # a line each to two large buffers
    ([16, 9, 907, 907, 907, 19, 2], None),
    ([16, 9, 907, 907, 907, 907, 2], (5, 117)),
    # the line (616) moves to the first large buffer, each of the next two moves to one
    # of its own, and the fourth finds none: 2,767 bytes outgrow 3 x 1k + 256
    ([616, 9, 907, 907, 307, 2], (4, 117)),
    ([616, 9, 907, 907, 19, 2], None),
    ([1025, 2], (0, 1024)),  # a line longer than a buffer: nginx's 414
    ([16, 1025, 2], (1, 1024)),
    ([16, 1024, 2], None),
    # a head that ends where a buffer does leaves its final CRLF a buffer of its own
    ([256, 1024, 1024, 1024, 2], (4, 0)),
])
def test_lines_move_whole_to_the_next_buffer(lines: list[int],
                                             spot: tuple[int, int] | None) -> None:
    got = head_overflow(lines, 256, 1024, 3)
    assert got == spot


@given(st.lists(st.integers(1, 3000), min_size=2, max_size=30),
       st.integers(0, 2048), st.integers(64, 2048), st.integers(1, 6))
def test_what_always_fits_and_what_never_does(lines: list[int], first: int, size: int,
                                              count: int) -> None:
    spot = head_overflow(lines, first, size, count)
    total = sum(lines)
    if total <= max(first, size):
        assert spot is None
    if any(n > max(first, size) for n in lines) or total > first + count * size:
        assert spot is not None
    if spot is not None:
        i, shown = spot
        assert 0 <= i < len(lines) and 0 <= shown <= max(first, size)


def _head(path: bytes, *fields: bytes) -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n" + b"".join(
        f + b"\r\n" for f in fields) + b"\r\n"


@pytest.mark.parametrize("engine_cls", ENGINES)
@pytest.mark.parametrize("split", [None, 300])
def test_a_head_that_adds_up_but_does_not_pack_is_a_494(engine_cls: type,
                                                        split: int | None) -> None:
    packed = _head(b"/" + b"a" * 600, b"X-1: " + b"c" * 900, b"X-2: " + b"c" * 900,
                   b"X-3: " + b"c" * 300)
    fits = _head(b"/" + b"a" * 600, b"X-1: " + b"c" * 900, b"X-2: " + b"c" * 900)
    for data, refused in ((packed, True), (fits, False)):
        told = Told()
        engine = engine_cls(told, 3 * 1024, 1024, 256)
        for i in range(0, len(data), split or len(data)):
            engine.feed(data[i:i + (split or len(data))])
        if refused:
            assert not told.heads and [e.status for e in told.errors] == [494]
            error = told.errors[0]
            # nginx's words, with the bytes of the line its last buffer held; the line
            # and the headers before it were read (the Host chooses the error's server)
            assert error.log_line == ('client sent too long header line: "X-3: %s..." while '
                                      "reading client request headers" % ("c" * 112))
            assert error.host == b"t"
        else:
            assert [h.target for h in told.heads] == [b"/" + b"a" * 600]
            assert not told.errors


def test_the_final_crlf_may_need_a_buffer_of_its_own() -> None:
    # (the line and a header fill the first buffer, a header the one large buffer)
    error = buffers_overflow((b"GET", b"/", b"1.1"),
                             [(b"X", b"y" * 235), (b"Y", b"z" * 251)], 256, 256, 1)
    assert error is not None and error.status == 494
    assert error.log_line == "client sent too large request while reading client request headers"


@given(st.lists(st.tuples(st.integers(1, 300), st.booleans()), min_size=1, max_size=8),
       st.integers(1, 600), st.sampled_from([None, 97]), st.sampled_from([1, 2]))
# (512 bytes as they came, 513 as nginx keeps them: the 300-byte line takes the one
# large buffer, and the rest does not fit beside it)
@example(fields=[(195, False)], path=284, split=None, count=1)
@example(fields=[(195, True)], path=284, split=None, count=1)
def test_heads_near_a_buffer_are_measured_as_nginx_keeps_them(
        fields: list[tuple[int, bool]], path: int, split: int | None, count: int) -> None:
    """The h11 engine measures a header line as nginx keeps it, "NAME: VALUE", a byte
    longer than one that came without the space (h11 gives no raw lines): heads around
    the buffers' sizes, with and without it, are refused exactly where
    ``buffers_overflow`` says, also now that a head no longer than a buffer is taken
    without measuring its lines."""
    lines = [b"X-%d:%s%s" % (i, b" " if spaced else b"", b"v" * n)
             for i, (n, spaced) in enumerate(fields)]
    data = _head(b"/" + b"a" * path, *lines)
    fits = buffers_overflow((b"GET", b"/" + b"a" * path, b"1.1"),
                            [(b"Host", b"t")] + [tuple(line.split(b":", 1)) for line in
                                                 [b"X-%d:%s" % (i, b"v" * n)
                                                  for i, (n, _) in enumerate(fields)]],
                            256, 512, count) is None
    told = Told()
    engine = H11Server(told, count * 512, 512, 256)
    for i in range(0, len(data), split or len(data)):
        engine.feed(data[i:i + (split or len(data))])
    assert (len(told.heads), len(told.errors)) == ((1, 0) if fits else (0, 1))
