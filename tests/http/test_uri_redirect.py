"""The two text rules of a rewrite's redirect (fastgate.http.uri), as nginx 1.22's
ngx_escape_uri (NGX_ESCAPE_ARGS) and ngx_unescape_uri (NGX_UNESCAPE_REDIRECT) apply
them; tests/e2e/test_nginx_parity_e2e.py compares whole redirects with nginx."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastgate.http.uri import escape_capture, unescape_redirect


@pytest.mark.parametrize(("text", "want"), [
    ("a b?\u00fc", "a%20b%3F%C3%BC"),
    ("/x/y~z", "/x/y~z"),  # "/" and visible ASCII outside the set stay
    ('"#%&+;<>\\^`{|}', "%22%23%25%26%2B%3B%3C%3E%5C%5E%60%7B%7C%7D"),
    ("\udcfc\x7f\t", "%FC%7F%09"),  # an undecodable byte goes back as it came
])
def test_escape_capture(text: str, want: str) -> None:
    assert escape_capture(text) == want


@pytest.mark.parametrize(("text", "want"), [
    ("/a%20b", "/a%20b"),  # a space stays escaped (not past "%")
    ("/a%41b%7e", "/aAb~"),  # visible characters are unescaped
    ("/a%25b", "/a%25b"),  # "%" itself stays escaped
    ("/x%3Fy%41", "/x?y%41"),  # an escaped "?" ends the unescaping
    ("/x?%41", "/x?%41"),
    ("/%zz", "/zz"),  # a bad first digit: the "%" goes
    ("/%%41", "/%41"),  # the byte after it stays, even a "%"
    ("/%4zq", "/q"),  # a bad second digit: the three go
    ("/end%4", "/end"), ("/end%", "/end"),
    ("/%FC%80", "/%FC%80"),
])
def test_unescape_redirect(text: str, want: str) -> None:
    assert unescape_redirect(text) == want


@given(st.text())
def test_a_capture_never_brings_a_space_a_control_or_a_raw_byte(text: str) -> None:
    # escaped, then unescaped as a redirect is: what would break the Location header or
    # be read differently by a client stays escaped
    out = unescape_redirect(escape_capture(text)).encode("utf-8", "surrogateescape")
    assert all(0x21 <= b < 0x7F for b in out)
