"""The agents nginx's request parser tells apart (msie, chrome) and what
msie_padding/msie_refresh make of nginx's pages for them."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastgate.browsers import is_chrome, is_msie
from fastgate.proxy.status import MSIE_PADDING, pads, refresh_page

CHROME = (b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          b"Chrome/120.0 Safari/537.36")
EDGE = CHROME + b" Edg/120.0"
FIREFOX = b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
SAFARI = (b"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
          b"(KHTML, like Gecko) Version/17.1 Safari/605.1.15")


@pytest.mark.parametrize(("agent", "msie", "chrome"), [
    (b"Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1)", True, False),
    (b"MSIE 6.0", True, False),
    (b"MSIE 6.", False, False),  # (three characters after "MSIE " and one more)
    (b"Opera/9.80 (Windows NT 6.1; MSIE 9.0) Presto/2.12", False, False),
    (CHROME, False, True),
    (EDGE, False, True),
    (CHROME.replace(b"Chrome/", b"Chrome/ Gecko/"), False, False),  # (a Gecko first)
    (b"Mozilla/4.0 (compatible; MSIE 8.0) Chrome/1", True, False),  # (MSIE first)
    (FIREFOX, False, False),
    (SAFARI, False, False),
    (b"curl/8", False, False),
    (None, False, False),
])
def test_agents_as_nginx_tells_them(agent: bytes | None, msie: bool, chrome: bool) -> None:
    assert (is_msie(agent), is_chrome(agent)) == (msie, chrome)


def test_only_error_pages_are_padded() -> None:
    assert [s for s in (301, 302, 304, 399, 400, 401, 404, 499, 500, 503) if pads(s, CHROME)] \
        == [400, 401, 404, 499, 500, 503]
    assert not pads(404, FIREFOX) and not pads(404, None)
    assert len(MSIE_PADDING) == 402  # (nginx's: six lines, past MSIE's 512-byte threshold)


def test_refresh_page_escapes_as_nginx() -> None:
    assert refresh_page(b"/x y'<>%41~\"") == (
        b'<html><head><meta http-equiv="Refresh" content="0; URL=/x%20y%27%3C%3E%41%7E%22">'
        b"</head><body></body></html>\r\n")


@given(st.binary(max_size=64))
def test_refresh_page_keeps_its_attribute_closed(url: bytes) -> None:
    page = refresh_page(url)
    inside = page[len(b'<html><head><meta http-equiv="Refresh" content="0; URL='):
                  -len(b'"></head><body></body></html>\r\n')]
    assert not any(c < 0x21 or c > 0x7E or c in b"\"'<>" for c in inside)
    if b"%" not in url:  # (nginx leaves a % as it is: the URL's own escapes stay)
        assert unquote_to_bytes(inside) == url
