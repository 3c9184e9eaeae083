"""The Cookie request header as nginx reads a cookie from it
(ngx_http_parse_multi_header_lines): every Cookie line in order, the first cookie of
that name (case-insensitive), for ``$cookie_NAME`` and the userid module alike."""

from __future__ import annotations


def cookie_of(headers: list[tuple[str, str]], name: str) -> str | None:
    """The value of cookie ``name`` (lower-case) in ``headers`` ([(lower-cased name,
    value)]), or None when there is none."""
    for n, v in headers:
        if n != "cookie":
            continue
        for part in v.split(";"):
            key, eq, value = part.strip().partition("=")
            if eq and key.lower() == name:
                return value
    return None
