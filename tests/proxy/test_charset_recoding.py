"""The charset module's recoding: charset_map's tables and their errors, the recoders
(a body cut anywhere recodes as the whole does), the check at load, and a recoded
response in process on both engines. (Bytes compared with nginx: the parity test.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scenario import ENGINES, Scenario

from fastgate.config import load_config
from fastgate.config.errors import ConfigError
from fastgate.proxy.charset import FromUtf8, ToUtf8, recoder

MAPS = """charset_map koi8-r utf-8 { C1 D0B0; C2 D0B1; 80 E282AC; }
charset_map koi8-r windows-1251 { C1 E0; C2 E1; }"""


def load(tmp: Path, http: str, location: str = "") -> object:
    path = tmp / "t.conf"
    path.write_text(f"http {{ {http}\nserver {{ listen 127.0.0.1:8080;\n"
                    f"location / {{ {location} }} }} }}")
    return load_config(str(path))


def settings(tmp: Path, http: str, location: str = "") -> object:
    config = load(tmp, http, location)
    return config.servers[0].locations.find("/")[0].settings  # type: ignore[attr-defined]


def test_a_map_both_ways(tmp_path: Path) -> None:
    s = settings(tmp_path, MAPS)
    maps = s.charset_maps  # type: ignore[attr-defined]
    to = recoder(maps["koi8-r", "utf-8"])
    assert to.feed(b"a\xc1\xc2\x80\xff") == "a\u0430\u0431\u20ac?".encode()
    back = recoder(maps["utf-8", "koi8-r"])
    assert back.feed("a\u0430\u20ac\u0432\U0001f600".encode()) == b"a\xc1\x80&#1074;&#128512;"
    win = recoder(maps["koi8-r", "windows-1251"])
    assert win.feed(b"\xc1\xc2\xc3x") == b"\xe0\xe1?x"
    assert recoder(maps["windows-1251", "koi8-r"]).feed(b"\xe0\xe1\xe2") == b"\xc1\xc2?"


@pytest.mark.parametrize("http,message", [
    ("charset_map koi8-r KOI8-R { }", '"charset_map" between the same charsets'),
    ("charset_map utf-8 koi8-r { }", 'with "utf-8" charset should be given in the second'),
    (MAPS + " charset_map windows-1251 koi8-r { }", 'duplicate "charset_map" between'),
    ("charset_map a b { 100 01; }", 'invalid value "100"'),
    ("charset_map a b { zz 01; }", 'invalid value "zz"'),
    ("charset_map a b { 01 01 02; }", "invalid parameters number"),
    ("charset_map a utf-8 { C1 D0; }", 'invalid value "D0"'),
    ("charset_map a utf-8 { C1 F09F9880; }", 'invalid value "F09F9880"'),
])
def test_map_errors(tmp_path: Path, http: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, http)


def test_two_charsets_without_a_map_are_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='no "charset_map" between the charsets '
                                          '"koi8-r" and "iso-8859-5"') as e:
        load(tmp_path, MAPS, "charset iso-8859-5; source_charset koi8-r;")
    assert "t.conf:4" in str(e.value)  # (MAPS is two lines)
    # the same charset, variables, or a map in either direction: loaded
    load(tmp_path, "", "charset UTF-8; source_charset utf-8;")
    load(tmp_path, "", "charset $arg_cs; source_charset koi8-r;")
    load(tmp_path, MAPS, "charset koi8-r; source_charset utf-8;")


def test_a_charset_is_named_as_first_written(tmp_path: Path) -> None:
    s = settings(tmp_path, MAPS, "charset UTF-8; source_charset KOI8-r;")
    assert s.charset.source == "utf-8"  # type: ignore[attr-defined]
    assert s.source_charset.source == "koi8-r"  # type: ignore[attr-defined]
    assert s.recodes  # type: ignore[attr-defined]
    plain = settings(tmp_path, "", "charset UTF-8;")
    assert plain.charset.source == "UTF-8" and not plain.recodes  # type: ignore[attr-defined]


TABLE = {0x430 + i: 0xC0 + i for i in range(32)}


@given(st.text(alphabet=st.characters(max_codepoint=0x1FFFF, blacklist_categories=("Cs",)),
               max_size=60),
       st.binary(max_size=8), st.lists(st.integers(0, 400), max_size=6))
def test_from_utf8_cut_anywhere_is_the_whole(text: str, junk: bytes, cuts: list[int]) -> None:
    data = text.encode() + junk + text.encode()
    whole = FromUtf8(TABLE)
    expected = whole.feed(data) + whole.finish()
    pieces = FromUtf8(TABLE)
    out = b""
    at = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        out += pieces.feed(data[at:cut])
        at = cut
    out += pieces.feed(data[at:]) + pieces.finish()
    assert out == expected
    assert b"\x80" not in expected.translate(None, bytes(range(0xC0, 0xE0)))  # (no raw UTF-8)


@given(st.binary(max_size=200))
def test_to_utf8_is_always_utf8(data: bytes) -> None:
    table = {b: chr(b) if b < 0x80 else "?" for b in range(256)}
    table[0xC1] = "\u0430"
    out = ToUtf8(table).feed(data)
    assert out.decode("utf-8").replace("\u0430", "?") == data.decode("latin-1").translate(
        {b: "?" for b in range(0x80, 0x100)})


@pytest.mark.parametrize("engine", ENGINES)
def test_a_file_recoded_in_process(tmp_path: Path, engine: str) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.html").write_bytes(b"<p>\xc1\xc2</p>")
    block = (MAPS + f"\nserver {{ listen 127.0.0.1:8080; root {site}; charset utf-8;\n"
             "source_charset koi8-r; location / { } }")

    async def main() -> bytes:
        sc = Scenario(tmp_path, engine, block)
        try:
            sc.client.data_received(b"GET /a.html HTTP/1.1\r\nHost: a\r\n\r\n")
            await sc.settle(lambda: not sc.busy() and bool(sc.client_out.out), 2.0)
            return sc.client_out.bytes()
        finally:
            sc.close()
    out = asyncio.run(main())
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"charset=utf-8" in head and b"content-length" not in head.lower()
    assert "<p>\u0430\u0431</p>".encode() in body


@pytest.mark.parametrize("engine", ENGINES)
def test_a_proxied_body_is_recoded_where_an_if_asks_for_it(tmp_path: Path,
                                                          engine: str) -> None:
    """A location whose own settings would take the callback path (which relays bodies
    as they are) and an if inside it that recodes: the if's responses are recoded."""
    block = (MAPS + "\nupstream be { server 127.0.0.1:9; }\n"
             "server { listen 127.0.0.1:8080; charset utf-8;\n"
             "location / { proxy_pass http://be;\n"
             "  if ($arg_koi) { source_charset koi8-r; } } }")
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\n"
              b"\xc1\xc2")

    async def main() -> tuple[bytes, bytes]:
        sc = Scenario(tmp_path, engine, block)
        try:
            plain = (await sc.exchange(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", answer))[0]
            sc.client_out.out.clear()
            koi = (await sc.exchange(b"GET /a?koi=1 HTTP/1.1\r\nHost: a\r\n\r\n", answer))[0]
            return plain, koi
        finally:
            sc.close()
    plain, koi = asyncio.run(main())
    assert plain.endswith(b"\r\n\r\n\xc1\xc2")  # no source_charset: as it came
    assert b"charset=utf-8" in koi
    assert "\u0430\u0431".encode() in koi and b"\xc1\xc2" not in koi
