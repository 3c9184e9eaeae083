"""The gzip filter (fastgate.proxy.gzip): which answers nginx compresses, for which
requests, the head they get, and zlib's bytes with nginx's parameters."""

from __future__ import annotations

import dataclasses
import gzip
import re
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastgate._wire import RequestHead
from fastgate.config.model import Settings
from fastgate.errors import OutputFailed
from fastgate.proxy.gzip import Gunzip, Gzip, accepts_gzip, gunzip_start, start
from fastgate.proxy.request import Request
from fastgate.proxy.subrequest import WorkerMade
from fastgate.variables import BUILTIN, SUBREQUEST_KEY

ON = dataclasses.replace(Settings(), gzip=True)


def _req(*headers: tuple[bytes, bytes], version: bytes = b"1.1") -> Request:
    head = RequestHead(b"GET", b"/", version, [(b"Host", b"x"), *headers], 0, True,
                       False, None)
    return Request(head, ("/", "", None), WorkerMade(1))


GZ = (b"Accept-Encoding", b"gzip, deflate, br")
HTML = [(b"Content-Type", b"text/html"), (b"Content-Length", b"3000"),
        (b"ETag", b'"abc"'), (b"Accept-Ranges", b"bytes")]


@pytest.mark.parametrize("value,wanted", [
    (b"gzip", True), (b"gzip, deflate", True), (b"deflate, gzip", True),
    (b"deflate,gzip", True), (b"GZIP", True), (b"br;q=1.0, gzip;q=0.8", True),
    (b"gzip;q=0.001", True), (b"gzip; q=1", True), (b"gzip ;Q=0.5", True),
    (b"gzip;q=1.000", True),
    (b"x-gzip", False), (b"gzipped", False), (b"identity", False), (b"gzip;q=0", False),
    (b"gzip;q=0.000", False), (b"gzip;q=1.001", False), (b"gzip;q=0.0001", False),
    (b"gzip;q=", False), (b"gzip;level=1", False), (b"gzip;q=2", False),
    (b"deflate", False),
])
def test_accept_encoding_as_nginx_reads_it(value: bytes, wanted: bool) -> None:
    assert accepts_gzip(value) is wanted


def test_a_compressed_head() -> None:
    req = _req(GZ)
    gz, headers, length = start(req, ON, HTML, 3000, 200, False)
    assert gz is not None and length == -1
    # no length, no ranges, a weak ETag, and Content-Encoding last (nginx pushes it
    # after the headers the answer has)
    assert headers == [(b"Content-Type", b"text/html"), (b"ETag", b'W/"abc"'),
                       (b"Content-Encoding", b"gzip")]
    body = b"<p>hello</p>" * 250
    out = gz.feed(body[:1000]) + gz.feed(body[1000:]) + gz.finish()
    assert zlib.decompress(out, 47) == body
    # (the window and hash nginx takes for 3000 bytes: 12 bits, memory level 5)
    z = zlib.compressobj(1, zlib.DEFLATED, 12 + 16, 5)
    assert out == z.compress(body) + z.flush()
    assert out[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\x03"
    assert BUILTIN["gzip_ratio"](req) == gz.ratio() != ""


@pytest.mark.parametrize("headers,length,status,why", [
    (HTML, 3000, 301, "a status but 200, 403 and 404"),
    (HTML, 19, 200, "shorter than gzip_min_length"),
    ([(b"Content-Type", b"text/plain")], -1, 200, "a type not in gzip_types"),
    ([], -1, 200, "no type"),
    ([(b"Content-Type", b"text/html"), (b"Content-Encoding", b"br")], -1, 200,
     "already encoded"),
])
def test_answers_left_alone(headers: list[tuple[bytes, bytes]], length: int, status: int,
                            why: str) -> None:
    vary = dataclasses.replace(ON, gzip_vary=True)
    assert start(_req(GZ), vary, headers, length, status, False) == (None, headers, length)


def test_forbidden_and_not_found_pages_are_compressed() -> None:
    for status in (403, 404):
        gz, _, _ = start(_req(GZ), ON, [(b"Content-Type", b"text/html")], 150, status, False)
        assert gz is not None


@pytest.mark.parametrize("headers,version", [
    ((), b"1.1"), (((b"Accept-Encoding", b"deflate"),), b"1.1"),
    ((GZ,), b"1.0"),  # gzip_http_version 1.1
    ((GZ, (b"Via", b"1.1 cdn")), b"1.1"),  # gzip_proxied off
    ((GZ, (b"User-Agent", b"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0)")),
     b"1.1"),
    ((GZ, (b"User-Agent", b"curl/8.0")), b"1.1"),
])
def test_requests_that_may_not_have_it(headers: tuple[tuple[bytes, bytes], ...],
                                       version: bytes) -> None:
    s = dataclasses.replace(ON, gzip_vary=True, gzip_disable_msie6=True,
                            gzip_disable=(re.compile("^CURL/", re.I),))
    gz, out, length = start(_req(*headers, version=version), s, HTML, 3000, 200, False)
    # not compressed, but Vary says that it could have been
    assert gz is None and length == 3000 and out == [*HTML, (b"Vary", b"Accept-Encoding")]


def test_msie6_with_sv1_or_as_opera_may() -> None:
    s = dataclasses.replace(ON, gzip_disable_msie6=True)
    for agent in (b"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
                  b"Mozilla/4.0 (compatible; MSIE 5.5; Windows 98) Opera 7.0",
                  b"Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)"):
        assert start(_req(GZ, (b"User-Agent", agent)), s, HTML, 3000, 200, False)[0]


@pytest.mark.parametrize("words,extra,request_extra,wanted", [
    ({"any"}, [], [], True),
    ({"auth"}, [], [(b"Authorization", b"Bearer x")], True),
    ({"auth"}, [], [], True),  # nothing else to decline it: nginx's "ok"
    ({"expired"}, [(b"Expires", b"Thu, 01 Jan 1970 00:00:01 GMT")], [], True),
    ({"expired"}, [(b"Expires", b"Fri, 01 Jan 2100 00:00:00 GMT")], [], False),
    ({"no-cache"}, [(b"Expires", b"Thu, 01 Jan 1970 00:00:01 GMT")], [], False),
    ({"no-cache"}, [(b"Cache-Control", b"private, no-cache")], [], True),
    ({"no-store"}, [(b"Cache-Control", b"no-cache")], [], False),
    ({"private"}, [(b"Cache-Control", b"max-age=0, Private")], [], True),
    ({"no_last_modified"}, [(b"Last-Modified", b"Thu, 01 Jan 1970 00:00:01 GMT")], [],
     False),
    ({"no_etag"}, [], [], False),  # (HTML has an ETag)
])
def test_gzip_proxied(words: set[str], extra: list[tuple[bytes, bytes]],
                      request_extra: list[tuple[bytes, bytes]], wanted: bool) -> None:
    s = dataclasses.replace(ON, gzip_proxied=frozenset(words))
    req = _req(GZ, (b"Via", b"1.1 proxy"), *request_extra)
    assert (start(req, s, [*HTML, *extra], 3000, 200, False)[0] is not None) is wanted


def test_head_only_and_subrequests() -> None:
    gz, headers, length = start(_req(GZ), ON, HTML, 3000, 200, True)
    assert gz is None and (b"Content-Encoding", b"gzip") in headers and length == -1
    sub = _req(GZ)
    sub.memo[SUBREQUEST_KEY] = object()
    assert start(sub, ON, HTML, 3000, 200, False) == (None, HTML, 3000)


def test_an_etag_it_cannot_weaken_goes() -> None:
    headers = [(b"Content-Type", b"text/html"), (b"ETag", b"abc")]
    _, out, _ = start(_req(GZ), ON, headers, -1, 200, False)
    assert out == [(b"Content-Type", b"text/html"), (b"Content-Encoding", b"gzip")]


def test_types_star_and_levels() -> None:
    s = dataclasses.replace(ON, gzip_types=("*",), gzip_comp_level=9, gzip_min_length=0)
    # (nginx's "*" takes an answer without a Content-Type too)
    assert start(_req(GZ), s, [], 100, 200, False)[0] is not None
    gz, _, _ = start(_req(GZ), s, [(b"Content-Type", b"application/x-anything")], 0, 200,
                     False)
    assert gz is not None
    out = gz.finish()  # an empty body: the empty gzip stream
    assert zlib.decompress(out, 47) == b"" and out[8] == 2  # (XFL: the best level)


@given(st.binary(max_size=5000), st.lists(st.integers(0, 5000), max_size=5))
def test_flushed_pieces_decompress_as_they_come(body: bytes, cuts: list[int]) -> None:
    gz = Gzip(1, 15, 8)
    gz.flushing = True
    d = zlib.decompressobj(47)
    seen = b""
    last = 0
    for cut in sorted(c for c in cuts if c <= len(body)):
        # each piece is whole at the client once its bytes are out (Z_SYNC_FLUSH)
        seen += d.decompress(gz.feed(body[last:cut]))
        assert seen == body[:cut]
        last = cut
    seen += d.decompress(gz.feed(body[last:]) + gz.finish())
    assert seen == body and d.eof


@given(st.lists(st.binary(max_size=3000), max_size=6))
def test_buffered_pieces_make_one_stream_without_a_lone_header(pieces: list[bytes]) -> None:
    """Unflushed, the gzip header zlib gives at once waits for the deflated bytes: no
    piece is the header alone (a chunk of its own, where nginx's buffers send one)."""
    gz = Gzip(6, 15, 8)
    out = [gz.feed(piece) for piece in pieces] + [gz.finish()]
    assert all(len(o) == 0 or len(o) > 10 for o in out)
    assert zlib.decompress(b"".join(out), 47) == b"".join(pieces)
    assert gz.given == len(b"".join(out)) and gz.taken == len(b"".join(pieces))


@pytest.mark.parametrize("taken,given,text", [
    (1000, 300, "3.33"), (1000, 333, "3.00"), (999, 1000, "1.00"), (1995, 1000, "2.00"),
    (12345, 1000, "12.35"), (100, 0, ""),
])
def test_ratio_as_nginx_prints_it(taken: int, given: int, text: str) -> None:
    gz = Gzip(1, 15, 8)
    gz.taken, gz.given = taken, given
    assert gz.ratio() == text


def test_gunzip_inflates_for_a_client_that_does_not_take_gzip() -> None:
    s = dataclasses.replace(Settings(), gunzip=True, gzip_vary=True)
    headers = [(b"Content-Type", b"text/html"), (b"Content-Encoding", b"gzip"),
               (b"Content-Length", b"99"), (b"ETag", b'"e"'), (b"Accept-Ranges", b"bytes")]
    gun, out, length = gunzip_start(_req(), s, headers, 99, False)
    assert gun is not None and length == -1
    assert out == [(b"Content-Type", b"text/html"), (b"ETag", b'W/"e"'),
                   (b"Vary", b"Accept-Encoding")]
    # members one after the other, cut anywhere
    packed = gzip.compress(b"first ", mtime=0) + gzip.compress(b"second", mtime=0)
    assert b"".join(gun.feed(packed[i:i + 7]) for i in range(0, len(packed), 7)) \
        + gun.finish() == b"first second"
    # a client that takes gzip gets it as it is (Vary said so)
    kept, out, length = gunzip_start(_req(GZ), s, headers, 99, False)
    assert kept is None and (b"Content-Encoding", b"gzip") in out and length == 99
    # not gzip: left alone
    assert gunzip_start(_req(), s, [(b"Content-Encoding", b"br")], 5, False)[0] is None


@pytest.mark.parametrize("body,message", [
    (b"not gzip at all", "inflate() failed: 0, -3"),
    (gzip.compress(b"x" * 500, mtime=0)[:-10], "inflate() returned -5 on response end"),
    (gzip.compress(b"hello", mtime=0) + b"garbage!", "inflate() failed: 0, -3"),
], ids=["not-gzip", "cut", "garbage-after"])  # (the same on every xdist worker)
def test_gunzip_refuses_what_does_not_inflate(body: bytes, message: str) -> None:
    gun = Gunzip()
    with pytest.raises(OutputFailed, match=re.escape(message)):
        gun.feed(body)
        gun.finish()


@given(st.binary(max_size=60) | st.lists(st.sampled_from(
    [b"gzip", b"GZIP", b",", b" ", b";", b"q", b"=", b"0", b"1", b".", b"5", b"x-", b"br"]),
    max_size=12).map(b"".join))
def test_any_accept_encoding_is_read_without_error(value: bytes) -> None:
    """Whatever the header holds, a yes or a no: never an exception, never a yes
    without "gzip" in it, and a quality of 0 is a no."""
    got = accepts_gzip(value)
    assert isinstance(got, bool)
    if b"gzip" not in value.lower():
        assert got is False
    if value.lower() in (b"gzip;q=0", b"gzip; q=0.000"):
        assert got is False
