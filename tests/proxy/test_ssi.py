"""SSI (fastgate.proxy.ssi) in process: nginx's parser the same however a body is cut
into reads, what it passes as text, the headers of a response it applies to, the task
path for its locations, and on both engines a proxied page whose commands span the
upstream's reads, an include the access phase refuses, a part too large to keep.
(Bytes compared with nginx: the parity test.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers import dechunk
from hypothesis import given
from hypothesis import strategies as st
from scenario import Scenario

from fastgate.config.load import load_config
from fastgate.config.model import Settings
from fastgate.proxy import ssi
from fastgate.proxy.capture import KEPT_MAX
from fastgate.proxy.ssi import Command, Parser
from fastgate.proxy.status import error_body


def _parsed(chunks: list[bytes]) -> tuple[bytes, list[tuple[bytes, list[tuple[bytes, bytes]],
                                                               str | None]]]:
    """The text a parser passes (joined) and the commands it finds."""
    p = Parser(255)
    text = b""
    commands = []
    for chunk in chunks:
        for item in p.feed(chunk):
            if isinstance(item, Command):
                commands.append((item.name, item.params, item.error))
            else:
                text += item
    return text, commands


def _cut(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(body)})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


@pytest.mark.parametrize("body,text,commands", [
    (b"plain <b>", b"plain <b>", []),
    (b'a<!--#echo var="x" -->b', b"ab", [(b"echo", [(b"var", b"x")], None)]),
    (b"a<!--# include virtual='/v' wait=\"yes\"-->", b"a",
     [(b"include", [(b"virtual", b"/v"), (b"wait", b"yes")], None)]),
    (b'<<!--#x-->', b"<", [(b"x", [], None)]),
    (b'<!--#set value="a\\"b"-->', b"", [(b"set", [(b"value", b'a\\"b')], None)]),
    (b"<!-- comment --><!-x", b"<!-- comment --><!-x", []),
    (b'T<!--#echo var="uri"', b"T", []),  # cut by the end: dropped, as nginx
    (b"T<!--", b"T", []),
    (b'<!--#echo var=uri-->z', b"z",
     [(b"echo", [(b"var", b"")], 'unexpected "u" symbol before value of "var" parameter '
                                  'in "echo" SSI command')]),
    (b"<!--#" + b"e" * 33 + b"-->", b"",
     [(b"e" * 32, [], f'the "{"e" * 32}e..." SSI command is too long')]),
])
def test_the_parser(body: bytes, text: bytes,
                    commands: list[tuple[bytes, list[tuple[bytes, bytes]], str | None]]) -> None:
    assert _parsed([body]) == (text, commands)


@given(st.text(alphabet='ab<!-#="\' \\>', max_size=200).map(str.encode),
       st.lists(st.integers(0, 200), max_size=8))
def test_the_same_however_the_body_is_cut(body: bytes, cuts: list[int]) -> None:
    assert _parsed(_cut(body, cuts)) == _parsed([body])


@given(st.text(alphabet="ab<!->x \n", max_size=200).map(str.encode))
def test_text_without_commands_passes_as_it_is(body: bytes) -> None:
    text, commands = _parsed([body])
    assert commands == []
    # (but what could still begin a command at the very end: nginx drops it too)
    held = next((h for h in (b"<!--", b"<!-", b"<!", b"<") if body.endswith(h)), b"")
    assert text == body[:len(body) - len(held)]


def test_a_value_longer_than_ssi_value_length_is_an_error() -> None:
    p = Parser(4)
    [cmd] = p.feed(b'<!--#echo var="abcde"-->')
    assert isinstance(cmd, Command)
    assert cmd.error == 'too long "abcde..." value of "var" parameter in "echo" SSI command'


def _settings(**kw: object) -> Settings:
    return Settings(ssi=True, **kw)  # type: ignore[arg-type]


class _Req:
    def __init__(self) -> None:
        self.memo: dict[object, object] = {}


def test_the_headers_of_a_response_it_applies_to() -> None:
    headers = [(b"Content-Type", b"text/html; charset=utf-8"), (b"Content-Length", b"9"),
               (b"Last-Modified", b"x"), (b"ETag", b'"e"'), (b"Accept-Ranges", b"bytes")]
    req = _Req()
    applies, out, length = ssi.start(req, _settings(), headers, 9)  # type: ignore[arg-type]
    assert applies and length == -1
    assert out == [(b"Content-Type", b"text/html; charset=utf-8")]
    applies, out, _ = ssi.start(req, _settings(ssi_last_modified=True),  # type: ignore[arg-type]
                                headers, 9)
    assert out == [(b"Content-Type", b"text/html; charset=utf-8"),
                   (b"Last-Modified", b"x"), (b"ETag", b'W/"e"')]
    # not text/html nor one of ssi_types, or a body known to be empty: left alone
    plain = [(b"Content-Type", b"text/plain"), (b"Content-Length", b"9")]
    assert ssi.start(req, _settings(), plain, 9) == (False, plain, 9)  # type: ignore[arg-type]
    assert ssi.start(req, _settings(ssi_types=("text/plain",)), plain,  # type: ignore[arg-type]
                     9)[0]
    assert ssi.start(req, _settings(), headers, 0) == (False, headers, 0)  # type: ignore[arg-type]


def test_ssi_locations_take_the_task_path(tmp_path: Path) -> None:
    conf = tmp_path / "f.conf"
    conf.write_text("""http { server { listen 127.0.0.1:8080;
      location /a/ { ssi on; proxy_pass http://127.0.0.1:9; }
      location /b/ { proxy_pass http://127.0.0.1:9;
                     if ($arg_x) { ssi on; proxy_pass http://127.0.0.1:9; } }
      location /c/ { proxy_pass http://127.0.0.1:9; } } }""")
    server = load_config(str(conf)).servers[0]

    def loc(uri: str):  # type: ignore[no-untyped-def]
        found, _ = server.locations.find(uri)
        return found

    assert not loc("/a/").proxy_pass.as_is
    assert loc("/c/").proxy_pass.as_is
    nested = [op for op in loc("/b/").rewrites if hasattr(op, "location")]
    assert nested and not nested[0].location.proxy_pass.as_is


def block(root: Path) -> str:
    return f"""upstream be {{ server 127.0.0.1:9; }}
server {{ listen 127.0.0.1:8080; root {root}; ssi on;
  location /api/ {{ proxy_pass http://be; }}
  location /page/ {{ }}
  location /parts/ {{ }}
  location /denied/ {{ alias {root}/parts/; deny all; }} }}"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "page").mkdir(parents=True)
    (r / "parts").mkdir()
    (r / "parts" / "p.html").write_bytes(b"<p>")
    (r / "parts" / "huge.html").write_bytes(b"h" * (KEPT_MAX + 1))
    (r / "page" / "denied.html").write_bytes(
        b'[<!--#include virtual="/denied/p.html"-->]')
    (r / "page" / "huge.html").write_bytes(b'[<!--#include virtual="/parts/huge.html"-->]')
    return r


def _body(response: bytes) -> bytes:
    head, _, rest = response.partition(b"\r\n\r\n")
    assert b"chunked" in head.lower() and b"content-length" not in head.lower()
    return dechunk(rest)


def test_commands_spanning_the_upstreams_reads(tmp_path: Path, root: Path,
                                               engine: str) -> None:
    page = b'<a><!--#echo var="uri"--><!--#include virtual="/parts/p.html"--></a>'

    async def main() -> bytes:
        sc = Scenario(tmp_path, engine, block(root))
        try:
            sc.pool()
            assert sc.upstream is not None and sc.upstream_out is not None
            up = sc.upstream_out
            sc.client.data_received(b"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n")
            await sc.settle(lambda: bool(up.out))
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(page))
            for piece in (head + page[:9], page[9:30], page[30:]):  # (cut in commands)
                sc.upstream.data_received(piece)
                await sc.settle(lambda: False, 0.05)
            await sc.settle(lambda: not sc.busy())
            return sc.client_out.bytes()
        finally:
            sc.close()
    assert _body(asyncio.run(main())) == b"<a>/api/x<p></a>"


def test_an_include_runs_its_locations_access_phase(tmp_path: Path, root: Path,
                                                     engine: str) -> None:
    async def main() -> bytes:
        sc = Scenario(tmp_path, engine, block(root))
        try:
            return await sc.get("/page/denied.html")
        finally:
            sc.close()
    # the part's location refuses this client for the include too (nginx would not ask)
    assert _body(asyncio.run(main())) == b"[" + error_body(403) + b"]"


def test_a_part_that_cannot_be_had_whole_cuts_the_response(
        tmp_path: Path, root: Path, engine: str) -> None:
    async def main() -> tuple[bytes, bool]:
        sc = Scenario(tmp_path, engine, block(root))
        try:
            return await sc.get("/page/huge.html", 5.0), sc.client_out.aborted
        finally:
            sc.close()
    out, aborted = asyncio.run(main())
    assert aborted
    assert out.startswith(b"HTTP/1.1 200 ") and not out.endswith(b"0\r\n\r\n")
    assert b"hhhh" not in out


_WORDS = st.sampled_from([
    "<!--#", "-->", "echo", "set", "if", "elif", "else", "endif", "block", "endblock",
    "include", "config", "var=", "value=", "expr=", "name=", "stub=", "virtual=", "set=",
    "wait=", "encoding=", "errmsg=", "timefmt=", '"', "'", "\\", "$a", "${b}", "$1", "$",
    "${", "/(a)(?<n>b)/", "/(/", " = ", " != ", "/p", "yes", "url", " ", "x", "<", "!",
    "-", "%s", "%Y"])


class _Fake:
    def __init__(self) -> None:
        self.memo: dict[object, object] = {}
        self.uri = "/dir/page.html"
        self.captures = ()


@given(st.lists(_WORDS, max_size=60), st.lists(st.integers(0, 400), max_size=5))
def test_no_page_makes_it_fail(words: list[str], cuts: list[int]) -> None:
    """Whatever a page holds, SSI gives bytes (an error message where a command fails)
    and raises nothing; includes are asked for by URI, never past the page's own
    errors."""
    from fastgate.proxy.capture import Capture

    asked: list[str] = []

    async def fetch(conn: object, req: object, uri: str, memo: object = None) -> Capture:
        asked.append(uri)
        kept = Capture.__new__(Capture)
        kept.out, kept.cut, kept.page, kept.status = bytearray(b"[part]"), False, False, 200
        kept.output_max, kept.request, kept.headers = 4096, None, []
        return kept

    body = "".join(words).encode()
    run = ssi.Ssi(_Fake(), _settings(), object(), fetch,  # type: ignore[arg-type]
                  {"a": lambda r: "A", "b": lambda r: ""}, "text/html", lambda m: None)

    async def main() -> bytes:
        out = b""
        for piece in _cut(body, cuts):
            out += await run.feed(piece)
        return out + await run.finish()
    out = asyncio.run(main())
    assert isinstance(out, bytes)
    assert all(not uri.startswith("..") and "/../" not in uri for uri in asked)
