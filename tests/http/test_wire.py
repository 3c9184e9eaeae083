"""The fast lane (``fastgate._wire``): whatever it accepts, h11 and llhttp accept too and
read the same way — method, target, version, every header as received, framing and
keep-alive. It may only decline (and llhttp then decides)."""

from __future__ import annotations

from typing import Any

import httptools
import pytest
from helpers import fuzz_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine_differential import STREAMS
from test_engine_fuzz import mutated

from fastgate._wire import (
    escape_past_ascii,
    forwarded,
    host_of,
    parse_request,
    parse_response,
    serialize,
)
from fastgate.http.engine import ProtocolError, RequestHead
from fastgate.http.h11_engine import H11Server
from fastgate.http.httptools_engine import HttptoolsClient

MAX_HEADERS, MAX_LINE = 32768, 8192


class Heads:
    def __init__(self) -> None:
        self.heads: list[RequestHead] = []
        self.ended = 0
        self.error = False

    def on_request(self, head: RequestHead) -> None:
        self.heads.append(head)

    def on_body(self, data: bytes) -> None:
        pass

    def on_end(self) -> None:
        self.ended += 1

    def on_error(self, error: ProtocolError) -> None:
        self.error = True

    def on_eof(self) -> None:
        pass


def h11_read(data: bytes) -> Heads:
    rec = Heads()
    H11Server(rec, MAX_HEADERS, MAX_LINE).feed(data)
    return rec


def llhttp_read(data: bytes) -> dict[str, Any] | None:
    """llhttp's own reading of one request (what the slow lane is built on)."""
    class P:
        def __init__(self) -> None:
            self.headers: list[tuple[bytes, bytes]] = []
            self.url = b""
            self.done = 0

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers.append((name, value))

        def on_headers_complete(self) -> None:
            self.keep_alive = self.parser.should_keep_alive()  # as the engine asks it

        def on_message_complete(self) -> None:
            self.done += 1

    p = P()
    parser = p.parser = httptools.HttpRequestParser(p)
    try:
        parser.feed_data(data)
    except httptools.HttpParserError:
        return None
    if p.done != 1:
        return None
    return {"method": parser.get_method(), "target": p.url, "headers": p.headers,
            "version": parser.get_http_version().encode(),
            "keep_alive": p.keep_alive}


def check_agrees(data: bytes) -> bool:
    """If the fast lane accepts ``data``, both parsers read exactly the same request."""
    head = parse_request(data, MAX_HEADERS, MAX_LINE)
    if head is None:
        return False
    ref = h11_read(data)
    assert not ref.error and len(ref.heads) == 1 and ref.ended == 1, data
    assert head == ref.heads[0], data
    ll = llhttp_read(data)
    assert ll is not None, data
    assert (ll["method"], ll["target"], ll["version"], ll["headers"], ll["keep_alive"]) == (
        head.method, head.target, head.version, head.headers, head.keep_alive), data
    return True


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_differential_streams(name: str) -> None:
    check_agrees(STREAMS[name])


def test_it_takes_the_common_request() -> None:
    data = (b"GET /api/x?y=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nUser-Agent: wrk\r\n"
            b"Authorization: Bearer a.b.c\r\nAccept: */*\r\n\r\n")
    assert check_agrees(data)
    head = parse_request(data, MAX_HEADERS, MAX_LINE)
    assert head.method == b"GET" and head.target == b"/api/x?y=1" and head.keep_alive
    assert host_of(head.headers) == "example.com"


@pytest.mark.parametrize("data,keep_alive", [
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n", True),
    (b"GET / HTTP/1.0\r\n\r\n", False),
    (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    (b"DELETE /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", True),
])
def test_keep_alive_as_both_parsers(data: bytes, keep_alive: bool) -> None:
    assert check_agrees(data)
    assert parse_request(data, MAX_HEADERS, MAX_LINE).keep_alive is keep_alive


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: a\r\n",  # incomplete
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  # pipelined
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",  # a body
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a \r\n\r\n",  # trailing whitespace
    b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",  # obs-fold
    b"GET / HTTP/1.1\nHost: a\n\n",  # bare LF
    b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",  # space before the colon
    b"GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n",  # obs-text: llhttp decides
    b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",  # absolute-form
    b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a\"b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, x\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  # leading CRLF
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",  # over the line limit
    b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 9000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 70 + b"\r\n",  # many headers
])
def test_it_declines_anything_else(data: bytes) -> None:
    assert parse_request(data, MAX_HEADERS, MAX_LINE) is None


@settings(max_examples=fuzz_examples(400), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated())
def test_mutated_requests_accepted_only_as_both_read_them(data: bytes) -> None:
    check_agrees(data)


# --- responses -----------------------------------------------------------------------------

class Events:
    def __init__(self) -> None:
        self.log: list[Any] = []

    def on_response(self, head: Any) -> None:
        self.log.append(("head", head))

    def on_informational(self, head: Any) -> None:
        self.log.append(("info", head))

    def on_body(self, data: bytes) -> None:
        if self.log and self.log[-1][0] == "body":
            self.log[-1] = ("body", self.log[-1][1] + data)
        else:
            self.log.append(("body", data))

    def on_end(self) -> None:
        self.log.append(("end",))

    def on_error(self, error: ProtocolError) -> None:
        self.log.append(("error",))

    def on_whole(self, head: Any, body: bytes) -> None:
        self.on_response(head)
        if body:
            self.on_body(body)
        self.on_end()


def client_events(data: bytes, method: bytes, whole: bool) -> list[Any]:
    """The engine's callbacks for ``data``: in one read (the fast lane may take it) or a
    byte first and then the rest (always llhttp)."""
    ev = Events()
    engine = HttptoolsClient(ev)
    engine.send_head(method, b"/", [(b"Host", b"a")], 0)
    engine.send_end()
    if whole:
        engine.feed(data)
    else:
        engine.feed(data[:1])
        engine.feed(data[1:])
    return [e if e[0] != "head" else ("head", e[1]._fields()) for e in ev.log]


RESPONSES = [
    (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\n\r\nhello", b"GET", True),
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", b"GET", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"HEAD", True),
    (b"HTTP/1.1 204 No Content\r\nX: y\r\n\r\n", b"GET", True),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi", b"GET", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", b"GET", True),
    (b"HTTP/1.1 200 Whatever\r\nContent-Length: 2\r\n\r\nhi", b"GET", True),
    # declined: llhttp reads these
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", b"GET", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiGARBAGE", b"GET", False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", b"GET", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", b"GET", False),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"GET", False),
    (b"HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n", b"GET", False),
    (b"HTTP/1.1 200 OK\r\n\r\nclose-delimited", b"GET", False),
    (b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", b"GET", False),
]


@pytest.mark.parametrize("data,method,taken", RESPONSES)
def test_responses_read_as_llhttp_does(data: bytes, method: bytes, taken: bool) -> None:
    assert (parse_response(data, method == b"HEAD") is not None) is taken
    if taken:
        assert client_events(data, method, True) == client_events(data, method, False)


def test_an_upstream_values_whitespace_at_its_ends_is_not_its() -> None:
    """An upstream's header value without its trailing whitespace (as h11's client
    reads it): the fast lane leaves such a head to llhttp, which kept it."""
    data = b"HTTP/1.1 200 OK\r\nX-A: v \t\r\nX-B:  w\r\nContent-Length: 0\r\n\r\n"
    assert parse_response(data, False) is None
    for whole in (True, False):
        (head,) = [e[1] for e in client_events(data, b"GET", whole) if e[0] == "head"]
        assert head[3][:2] == [(b"X-A", b"v"), (b"X-B", b"w")], head


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 200 OK\nX-A: 1\nContent-Length: 2\n\nhi",
    b"HTTP/1.1 200 OK\nX-A: 1\r\nTransfer-Encoding: chunked\n\r\n2\r\nhi\r\n0\r\n\r\n"])
def test_an_upstream_may_end_its_lines_with_a_bare_lf(data: bytes) -> None:
    """As nginx's upstream parser (and h11's client) read it: an application that
    writes "\\n" after its head's lines works behind fastgate as behind nginx (a
    client's request may not). (llhttp still wants CRLF around a chunk's size.)"""
    for whole in (True, False):
        events = client_events(data, b"GET", whole)
        (head,) = [e[1] for e in events if e[0] == "head"]
        assert (b"X-A", b"1") in head[3] and ("body", b"hi") in events, events
        assert events[-1] == ("end",)


def test_an_upstream_trailer_is_no_header_of_its_response() -> None:
    """A chunked response's trailer fields are dropped, as nginx's proxy drops them:
    never in the head that $upstream_http_* (auth_request_set's too) read."""
    data = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-User: bob\r\n\r\n"
            b"2\r\nhi\r\n0\r\nX-User: admin\r\nX-Up: t\r\n\r\n")
    for whole in (True, False):
        events = client_events(data, b"GET", whole)
        (head,) = [e[1] for e in events if e[0] == "head"]
        assert events[-1] == ("end",) and head[3] == [(b"Transfer-Encoding", b"chunked"),
                                                       (b"X-User", b"bob")], head


# --- headers on their way through --------------------------------------------------------

def test_forwarded_drops_listed_and_connection_named_headers() -> None:
    headers = [(b"Host", b"a"), (b"Keep-Alive", b"5"), (b"X-A", b"1"),
               (b"Connection", b"X-B, close"), (b"x-b", b"2"), (b"X-C", b"3")]
    assert forwarded(headers, (b"connection", b"host", b"keep-alive")) == [
        (b"X-A", b"1"), (b"X-C", b"3")]
    assert forwarded([], (b"host",)) == []


_VALUE_BYTES = st.sampled_from([b"a", b"B", b"-", b",", b" ", b"\t", b"\x0b", b"\x0c",
                                b"Z", b"z", b"\x80", b"0"])


@given(st.lists(st.tuples(st.sampled_from([b"Connection", b"connection", b"CONNECTION",
                                           b"X-A", b"Keep-Alive", b"aBc"]),
                          st.lists(_VALUE_BYTES, max_size=24).map(b"".join)),
                max_size=6))
@settings(max_examples=400, deadline=None)
def test_forwarded_reads_connection_as_split_strip_lower(headers: list[tuple[bytes, bytes]]
                                                         ) -> None:
    """The Connection tokens found in C: each value split at commas, stripped as
    bytes.strip strips, lower-cased as bytes.lower does; a header they name (any case)
    is not forwarded."""
    named = {tok.strip().lower() for name, value in headers if name.lower() == b"connection"
             for tok in value.split(b",") if tok.strip()}
    assert forwarded(headers, ()) == [(n, v) for n, v in headers if n.lower() not in named]


def test_serialize() -> None:
    assert serialize([(b"A", b"1"), (b"Bb", b"")]) == b"A: 1\r\nBb: \r\n"
    assert serialize([]) == b""


@pytest.mark.parametrize("value,host", [
    (b"Example.com", "example.com"), (b"a:80", "a"), (b"[::1]:8080", "[::1]"),
    (b"api.example.com.", "api.example.com"), (b"API.Example.COM.:8443", "api.example.com"),
    # (ASCII letters lowered only, as nginx's; bytes past ASCII read as UTF-8, kept as
    # they came: "BÜCHER" is "bÜcher", and a byte no UTF-8 is stays that byte)
    (b"B\xc3\x9cCHER.example", "b\xdccher.example"), (b"caf\xc9.example", "caf\udcc9.example"),
    # invalid as ngx_http_validate_host says (and stricter on stray brackets): None
    (b"", None), (b":80", None), (b".", None), (b"a..b", None), (b"a/b", None),
    (b"a\\b", None), (b"a b", None), (b"a\tb", None), (b"a\x00b", None), (b"a\x7fb", None),
    (b"a[b", None), (b"[::1", None), (b"..", None), (b"u@a", None), (b"[::1]a", None),
    (b"a:8o", None), (b"a:", "a"), (b"[::1]:", "[::1]")])
def test_host_of(value: bytes, host: str | None) -> None:
    assert host_of([(b"X", b"y"), (b"HOST", value)]) == host
    assert host_of([]) == ""


def _nginx_host(value: bytes) -> str | None:
    """ngx_http_validate_host, written plainly, and stricter where RFC 9110 is: "["
    only first and closed, nothing but ":port" after it, a port of digits, no "@"."""
    host_len, dot, state = len(value), -2, "usual"
    for i, c in enumerate(value):
        if state == "port":
            if not 0x30 <= c <= 0x39:
                return None
        elif state == "after-literal":
            if c != 0x3A:
                return None
            state = "port"
        elif c == 0x2E:
            if dot == i - 1:
                return None
            dot = i
        elif c == 0x3A:
            if state == "usual":
                host_len, state = i, "port"
        elif c == 0x5B:
            if i:
                return None
            state = "literal"
        elif c == 0x5D:
            if state == "literal":
                host_len, state = i + 1, "after-literal"
        elif c <= 0x20 or c == 0x7F or c in b"/\\@":
            return None
    if state == "literal":
        return None
    if host_len and dot == host_len - 1:
        host_len -= 1
    return value[:host_len].lower().decode("utf-8", "surrogateescape") if host_len else None


@settings(max_examples=fuzz_examples(1000), deadline=None)
@given(value=st.lists(st.sampled_from([b"a", b"Z", b"0", b".", b":", b"[", b"]", b" ", b"\t",
                                       b"\x0b", b"\x1c", b"\x85", b"\xa0", b"\xc9", b"-",
                                       b"/", b"\\", b"@", b"8"]),
                      max_size=20).map(b"".join)
       | st.binary(max_size=300))
def test_host_of_reads_as_nginx(value: bytes) -> None:
    """The C pass agrees with the plain definition on every value."""
    assert host_of([(b"Host", value)]) == _nginx_host(value)


TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
PATH = "-._~!$&'()*+,;=:@/?%0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@st.composite
def simple_requests(draw: st.DrawFn) -> bytes:
    """Requests of the shape the fast lane is for, with random names, values, targets."""
    method = draw(st.sampled_from(["GET", "HEAD", "DELETE", "OPTIONS", "POST"]))
    target = "/" + draw(st.text(PATH, max_size=40))
    version = draw(st.sampled_from(["1.1", "1.0"]))
    lines = [f"{method} {target} HTTP/{version}"]
    headers = draw(st.lists(st.tuples(st.text(TCHAR, min_size=1, max_size=12),
                                      st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                              max_size=30)), max_size=6))
    headers.insert(draw(st.integers(0, len(headers))), ("Host", "example.com"))
    for name, value in headers:
        if name.lower() in ("host", "content-length", "transfer-encoding", "connection",
                            "upgrade", "expect") and value != "example.com":
            continue
        lines.append(f"{name}:{draw(st.sampled_from(['', ' ', '  ', chr(9)]))}{value.strip()}")
    if draw(st.booleans()):
        lines.append(f"Connection: {draw(st.sampled_from(['close', 'keep-alive', 'Close']))}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@settings(max_examples=fuzz_examples(400), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=simple_requests())
def test_simple_requests_taken_and_read_as_both_read_them(data: bytes) -> None:
    assert check_agrees(data), data  # the fast lane takes every one of them


@pytest.mark.parametrize("value,token", [
    (b"Bearer a.b.c", b"a.b.c"), (b"bearer   a.b.c  ", b"a.b.c"),
    (b"BEARER\ta.b.c", None), (b"Bearer \ta.b.c", None),  # RFC 6750: SP only
    (b"Bearer ", None), (b"Bearer      ", None), (b"Basic dXNlcjpwdw==", None),
    (b"Bearera.b.c", None), (b"Bear", None), (b"", None)])
def test_bearer_of(value: bytes, token: bytes | None) -> None:
    from fastgate.proxy._headers import bearer_of

    assert bearer_of([(b"Host", b"a"), (b"AUTHORIZATION", value),
                      (b"Authorization", b"Bearer second")]) == token
    assert bearer_of([(b"Host", b"a")]) is None


@settings(max_examples=fuzz_examples(500), deadline=None, derandomize=True)
@given(raw=st.lists(st.sampled_from([b"/", b"a", b".", b"..", b"?", b"#", b"%", b"%2e", b"%00",
                                     b"=", b"&", b"\xe9", b"\x00", b"~", b"-"]),
                    max_size=12).map(b"".join).map(lambda b: b"/" + b))
def test_split_target_reads_as_the_full_parser(raw: bytes) -> None:
    from fastgate._wire import split_target
    from fastgate.http.uri import parse_target_fully

    simple = split_target(raw)
    if simple is not None:
        assert simple == tuple(parse_target_fully(raw)), raw


@pytest.mark.parametrize("raw,uri,args", [
    # (nginx 1.22's $uri and $args of each, read from its answers)
    (b"/?a=1#frag", "/", "a=1"), (b"/?#", "/", ""), (b"/#x?a=1", "/", ""),
    (b"/x#frag?a=1/..", "/x", ""), (b"/%3fx.php#fragexact?a=1", "/?x.php", ""),
    (b"/?a=1%2e#%61dmin", "/", "a=1%2e"), (b"/;#%~?/..'", "/;", ""),
    (b"/%2E?&#!a(x.php", "/", "&"), (b"/a%2fb?x=1#?y=2", "/a/b", "x=1"),
    (b"http://h/p?q=1#f", "/p", "q=1"), (b"http://h?q#f", "/", "q")])
def test_a_hash_ends_the_path_and_the_arguments_as_nginx_s(raw: bytes, uri: str,
                                                            args: str) -> None:
    """nginx's request-line parser ends $uri at a "#", and $args too: a "?" after a "#"
    starts no arguments (the target still goes upstream whole, as $request_uri)."""
    from fastgate._wire import split_target
    from fastgate.http.uri import parse_target

    assert tuple(parse_target(raw))[:2] == (uri, args)
    assert split_target(raw) in (None, (uri, args, None))


@pytest.mark.parametrize("raw", [b"*", b"*/x", b"a/b", b"http://u@h/x", b"http://a_b/",
                                 b"http://a$/", b"http://a:8x/", b"1http://a/", b"/%2e%2e/x",
                                 b"/a%00b"])
def test_targets_nginx_refuses(raw: bytes) -> None:
    """A 400, as nginx's request-line parser gives: no asterisk-form (an OPTIONS * is
    no request for a location, nor for a backend), no relative authority, no host
    but of letters, digits, "." and "-" (or an IP literal), no port but digits."""
    from fastgate.http.uri import parse_target

    with pytest.raises(ProtocolError) as refused:
        parse_target(raw)
    assert refused.value.status == 400

@settings(max_examples=fuzz_examples(300), deadline=None, derandomize=True)
@given(path=st.binary(min_size=1, max_size=16).filter(
    lambda b: not set(b) & set(b"\x00%#?/.")).map(lambda b: b"/" + b))
def test_a_path_reads_the_same_raw_or_percent_encoded(path: bytes) -> None:
    """$uri of bytes past ASCII is one text whichever way they came (so one location
    matches both, and a header or a file path gets the bytes back, not a re-encoding)."""
    from fastgate.http.uri import parse_target

    encoded = b"".join(b"%%%02X" % c if c >= 0x80 else bytes([c]) for c in path)
    raw = parse_target(path).path
    assert parse_target(encoded).path == raw
    assert parse_target(b"/x/.." + path).path == raw  # the full parser too
    assert raw.encode("utf-8", "surrogateescape") == path
    assert parse_target(b"/caf\xc3\xa9").path == "/caf\u00e9"

@pytest.mark.parametrize("value,raw", [
    ("plain value", b"plain value"), ("tab\tok", b"tab\tok"), ("caf\u00e9", b"caf\xc3\xa9"),
    ("\udcff from a path", b"\xff from a path"),  # undecodable bytes go back as they came
    ("a\r\nX-Injected: 1", None), ("a\nb", None), ("nul\x00", None), ("del\x7f", None)])
def test_field_value(value: str, raw: bytes | None) -> None:
    from fastgate._wire import field_value

    assert field_value(value) == raw


def test_upstream_headers_follow_the_proxy_rules() -> None:
    from types import SimpleNamespace

    from fastgate.proxy._headers import upstream_headers
    from fastgate.proxy.headers import request_drop, set_plan
    from fastgate.variables import Template

    def tpl(getter):  # a template of one variable
        return Template("$v", (getter,))

    set_headers = (("X-User", tpl(lambda r: r.user)), ("X-Gone", tpl(lambda r: "")),
                   ("X-Bad", tpl(lambda r: "a\r\nInjected: 1")))
    client = [(b"Host", b"client.example"), (b"Connection", b"close, X-Hop"), (b"X-Hop", b"1"),
              (b"Accept", b"*/*"), (b"X-User", b"forged"), (b"X-Gone", b"client")]
    r = SimpleNamespace(user="alice")
    out, unsafe = upstream_headers(client, set_plan(set_headers), request_drop(set_headers),
                                   b"backend:8080", r)
    # (nginx's order: the location's, then the Host unless it sets one, then the client's)
    assert out == [(b"X-User", b"alice"), (b"Host", b"backend:8080"), (b"Accept", b"*/*")]
    assert unsafe == ["X-Bad"]

    # Upgrade and Connection are hop-by-hop: the client's never pass on their own...
    host_set = (("Host", tpl(lambda r: r.user + ".internal")),)
    client = [(b"Upgrade", b"websocket"), (b"Connection", b"upgrade")]
    out, unsafe = upstream_headers(client, set_plan(host_set), request_drop(host_set),
                                   b"backend", r)
    assert out == [(b"Host", b"alice.internal")]
    assert unsafe is None
    # ...only as the location sets them (the usual WebSocket configuration)
    ws = (("Upgrade", tpl(lambda r: "websocket")), ("Connection", tpl(lambda r: "upgrade")))
    out, _ = upstream_headers(client, set_plan(ws), request_drop(ws), b"backend", r)
    assert out == [(b"Upgrade", b"websocket"), (b"Connection", b"upgrade"),
                   (b"Host", b"backend")]

    host_removed = (("Host", tpl(lambda r: "")),)
    out, _ = upstream_headers([(b"A", b"1")], set_plan(host_removed), request_drop(host_removed),
                              b"backend", r)
    assert out == [(b"A", b"1")]


def test_bytes_past_ascii_escaped_for_the_parsers() -> None:
    assert escape_past_ascii(b"GET /caf\xc3\xa9?q=\xff%41 HTTP/1.1") == (
        b"GET /caf%C3%A9?q=%FF%41 HTTP/1.1")
    assert escape_past_ascii(b"/plain") == b"/plain"


@pytest.mark.parametrize("raw,target", [
    (b"http://a/b?c", ("/b", "c", "a")),
    (b"HTTPS://A.example:8443", ("/", "", "A.example:8443")),
    (b"http://a?x=1", ("/", "x=1", "a")),  # (the query straight after the authority)
    (b"ftp://a/b", ("/b", "", "a")),  # (any scheme of letters, as nginx's and llhttp's)
    (b"http://a:/b", ("/b", "", "a:")),  # (an empty port)
    (b"http://[::1]:80/b", ("/b", "", "[::1]:80")),
    (b"http:///b", ("/b", "", "")),  # (no host: the request's Host check refuses it)
])
def test_absolute_form_targets_as_nginx_reads_them(raw: bytes,
                                                   target: tuple[str, str, str]) -> None:
    from fastgate.http.uri import parse_target

    assert tuple(parse_target(raw)) == target
