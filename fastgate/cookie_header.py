"""The Cookie request header as nginx reads a cookie from it
(ngx_http_parse_cookie_lines, nginx 1.23+; 1.22 also took "," for ";"): every Cookie
line in order, the first cookie of that name (ASCII case-insensitive), for
``$cookie_NAME`` and the userid module alike."""

from __future__ import annotations

# nginx's ngx_strncasecmp lowers ASCII letters only
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def cookie_of(headers: list[tuple[str, str]], name: str) -> str | None:
    """The value of cookie ``name`` (lower-case) in ``headers`` ([(lower-cased name,
    value)]), or None when there is none. As nginx's parser: a cookie starts a line or
    follows a ";" and the spaces after it; spaces may stand around its "="; its value
    runs to the next ";" (spaces before it kept). A name not followed by "=" takes the
    byte after it with it (nginx's ``*start++``), so in "a;a=2" no "a" is found."""
    n = len(name)
    for key, v in headers:
        if key != "cookie" or n > len(v):
            continue
        start, end = 0, len(v)
        while start < end:
            if v[start:start + n].translate(_ASCII_LOWER) == name:
                p = start + n
                while p < end and v[p] == " ":
                    p += 1
                if p < end and v[p] == "=":
                    p += 1
                    while p < end and v[p] == " ":
                        p += 1
                    last = v.find(";", p)
                    return v[p:] if last < 0 else v[p:last]
                start = p + 1  # (the byte that was not "=" goes too)
                if start >= end:
                    break
            semi = v.find(";", start)
            if semi < 0:
                break
            start = semi + 1
            while start < end and v[start] == " ":
                start += 1
    return None


def cookie_count(headers: list[tuple[str, str]], name: str) -> int:
    """How many cookies named ``name`` the Cookie lines hold, read loosely (any
    whitespace around a name, ASCII case-insensitive): at least every one nginx's
    parser could take, and those another reader would."""
    seen = 0
    for key, v in headers:
        if key == "cookie":
            for part in v.split(";"):
                cookie, eq, _ = part.partition("=")
                if eq and cookie.strip().translate(_ASCII_LOWER) == name:
                    seen += 1
    return seen
