"""Header rules for proxying: hop-by-hop headers (RFC 9110 section 7.6.1) stay on their
hop, ``proxy_set_header`` replaces or removes, ``Host`` defaults to the upstream's, and
no value computed from a variable may carry a control byte to the backend.

What is decided per location (the names dropped, the plan of set headers, the redirect
rules) is here; the per-request part runs in C: ``fastgate.proxy._headers``
(``upstream_headers`` with ``request_drop`` and ``set_plan`` from here, and
``response_head`` with ``response_drop``), except a 101's head (``switching_headers``)."""

from __future__ import annotations

import re
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from fastgate._wire import field_value
from fastgate.config.expires import ExpiresError, parse_expires
from fastgate.config.model import Expires, Settings
from fastgate.http.engine import Headers
from fastgate.proxy.ranges import http_time
from fastgate.variables import Template, set_named_captures

if TYPE_CHECKING:
    from fastgate.config.model import Location

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
    b"transfer-encoding", b"upgrade", b"proxy-authenticate",
})
# set by the proxy itself on the upstream request
_REQUEST_OWNED = frozenset({b"host", b"content-length", b"expect"})

# RFC 9110 section 5.5: field values are visible characters, SP and HTAB (and obs-text);
# every other control byte, CR and LF above all, is refused.
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def is_safe_value(value: str) -> bool:
    return _UNSAFE.search(value) is None


def kind_of(headers: Headers) -> str | None:
    """A response's media type, lowercased and without parameters (None: no type)."""
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.split(b";", 1)[0].strip().lower().decode("latin-1")
    return None


def html_or_of(kind: str | None, types: tuple[str, ...]) -> bool:
    """Whether a filter whose ``*_types`` are ``types`` takes a response of media type
    ``kind``: text/html always, any with ``*`` (nginx's ngx_http_test_content_type with
    ngx_http_html_default_types: sub_filter, addition, SSI)."""
    return kind == "text/html" or "*" in types or (kind is not None and kind in types)


def changed_body_head(headers: Headers, drop: tuple[bytes, ...], validators: bool
                      ) -> Headers:
    """The headers of a response whose body a filter changes, as nginx's filters leave
    them: ``drop`` (lowercased names: Content-Length, Accept-Ranges...) go; Last-Modified
    and ETag go too unless ``validators``, and then the ETag is made weak."""
    out: Headers = []
    for name, value in headers:
        low = name.lower()
        if low in drop:
            continue
        if low in (b"last-modified", b"etag") and not validators:
            continue
        if low == b"etag" and not value.startswith(b"W/"):
            value = b"W/" + value
        out.append((name, value))
    return out


def connection_tokens(headers: Headers) -> set[bytes]:
    """Header names listed in Connection: they are hop-by-hop too."""
    out: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            out.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return out


def request_drop(set_headers: tuple[tuple[str, Template], ...]) -> tuple[bytes, ...]:
    """Lower-case names of client headers never passed upstream: hop-by-hop ones, those
    the proxy sets itself, and those ``proxy_set_header`` replaces."""
    overridden = {name.lower().encode("latin-1") for name, _ in set_headers}
    return tuple(sorted(HOP_BY_HOP | _REQUEST_OWNED | overridden))


# the request's framing is the proxy's own (the body's length, or chunked): set by
# proxy_set_header too, a second framing would go beside it, maybe another (the loader
# warns); nginx's own value replaces its, which fastgate's already is
_FRAMING = frozenset({"content-length", "transfer-encoding"})


def set_plan(set_headers: tuple[tuple[str, Template], ...]
             ) -> tuple[tuple[str, bytes, bool, Template], ...]:
    """``proxy_set_header`` as the hot path wants it: (name, name as bytes, whether it
    is Host, value), the framing headers left out."""
    return tuple((name, name.encode("latin-1"), name.lower() == "host", template)
                 for name, template in set_headers if name.lower() not in _FRAMING)


# nginx's proxy_hide_header defaults: the proxy answers with its own Server and Date
_HIDDEN = frozenset({b"content-length", b"server", b"date", b"x-pad", b"x-accel-expires",
                     b"x-accel-redirect", b"x-accel-limit-rate", b"x-accel-buffering",
                     b"x-accel-charset"})
RESPONSE_DROP = tuple(sorted(HOP_BY_HOP | _HIDDEN))


# what no *_pass_header brings back: the client engine frames the body, and a CGI
# application's Status is read, never passed
_NEVER_SHOWN = frozenset({b"content-length", b"status"})


def response_drop(hide: tuple[str, ...], passed: tuple[str, ...],
                  hidden_by_default: frozenset[bytes] = _HIDDEN) -> tuple[bytes, ...]:
    """The upstream response headers a location does not pass on: hop-by-hop ones,
    the module's hidden ones (``hidden_by_default``: proxy_pass's unless given) unless
    ``*_pass_header`` names them (never Content-Length or Status), and those
    ``*_hide_header`` names."""
    if not hide and not passed and hidden_by_default is _HIDDEN:
        return RESPONSE_DROP
    shown = {p.encode("latin-1") for p in passed} - _NEVER_SHOWN
    hidden = (hidden_by_default - shown) | {h.encode("latin-1") for h in hide}
    return tuple(sorted(HOP_BY_HOP | hidden))


# (a literal prefix, a prefix with variables or a regex; the replacement)
RedirectRules = tuple[tuple["str | Template | re.Pattern[str]", "Template | str"], ...]


def redirect_rules(loc: Location) -> RedirectRules:
    """``proxy_redirect`` as a location applies it: prefixes (or regexes) and their
    replacements, in order. ``default`` (nginx's default) replaces the proxy_pass URL
    with the location's name (``http://be/base/`` → ``/x/``; without a URI part
    ``http://be/`` → ``/``, in a regex or named location too, which cannot have one);
    none for a proxy_pass with variables. ``off`` anywhere in the list: none."""
    entries = loc.settings.proxy_redirect
    if any(p == "off" for p, _ in entries):
        return ()
    pp = loc.proxy_pass
    out: list[tuple[str | Template | re.Pattern[str], Template | str]] = []
    for pattern, replacement in entries:
        if pattern != "default":
            assert replacement is not None
            out.append((pattern, replacement))
        elif pp is not None and pp.template is None:
            base = f"{pp.scheme}://{pp.host_header}"
            out.append((base + pp.uri, loc.pattern) if pp.uri is not None else (base + "/", "/"))
    return tuple(out)


def redirected(headers: Headers, rules: RedirectRules, req: Any, s: Settings) -> Headers:
    """The response headers with Location and Refresh's URL rewritten by ``rules``. A
    Location a rule rewrote into a path is made absolute, as nginx's header filter
    does; one no rule applied to stays as the upstream sent it, relative too (nginx's
    ngx_http_upstream_rewrite_location leaves r->headers_out.location unset then)."""
    out: Headers = []
    for name, value in headers:
        low = name.lower()
        if low == b"location":
            text = _replace(value.decode("utf-8", "surrogateescape"), rules, req)
            if text is not None:
                if text.startswith("/"):
                    text = absolute(s, req, text)
                value = _field(text, value)
        elif low == b"refresh":
            text = value.decode("utf-8", "surrogateescape")
            i = text.lower().find("url=")
            if i >= 0:
                url = _replace(text[i + 4:], rules, req)
                if url is not None:
                    value = _field(text[:i + 4] + url, value)
        out.append((name, value))
    return out


def absolute(s: Settings, req: Any, path: str) -> str:
    """A redirect to ``path`` as nginx's header filter writes it: with ``absolute_redirect
    on`` an absolute URL of the request's scheme, its Host (``server_name_in_redirect
    on``: the server's name; no Host: the address it came to) and, with
    ``port_in_redirect on``, the port when it is not the scheme's own."""
    if not s.absolute_redirect:
        return path
    scheme = req.scheme
    if s.server_name_in_redirect:
        host = req.server_name
    else:
        host = req.host
        if req.header(b"host") is None and host == req.server_name:
            # $host fell back to the server's name: nginx writes the local address
            addr = req.server_addr
            host = f"[{addr}]" if ":" in addr else addr
    port = req.server_port
    if s.port_in_redirect and port and port != (443 if scheme == "https" else 80):
        return f"{scheme}://{host}:{port}{path}"
    return f"{scheme}://{host}{path}"


def _replace(url: str, rules: RedirectRules, req: Any) -> str | None:
    """The first rule that applies: a prefix is replaced, a regex that finds something
    replaces the whole URL (its captures are ``$1``... from then on, as nginx's); None
    when none applies."""
    for pattern, replacement in rules:
        if isinstance(pattern, re.Pattern):
            m = pattern.search(url)
            if m is None:
                continue
            req.captures = (m.group(0), *m.groups())
            set_named_captures(req, m)
            return replacement if isinstance(replacement, str) else replacement.render(req)
        prefix = pattern if isinstance(pattern, str) else pattern.render(req)
        if url.startswith(prefix):
            new = replacement if isinstance(replacement, str) else replacement.render(req)
            return new + url[len(prefix):]
    return None


def _field(text: str, original: bytes) -> bytes:
    """``text`` as a header value, or the original one if a replacement made it
    invalid (a control character from a variable never reaches the client)."""
    value = field_value(text)
    return value if value is not None else original


def switching_headers(upstream_headers: Headers, server: bytes, date: bytes) -> Headers:
    """A 101's upstream headers fit to forward: hop-by-hop ones removed but Connection
    and Upgrade, which the switch needs; our own Server and Date first. (Every other
    response head is ``_headers.response_head``'s.)"""
    out: Headers = [(b"Server", server), (b"Date", date)]
    drop = (connection_tokens(upstream_headers) | HOP_BY_HOP | _HIDDEN) - {
        b"connection", b"upgrade"}
    out.extend(p for p in upstream_headers if p[0].lower() not in drop)
    return out


# add_header (unless "always") and expires apply to responses of these statuses (nginx)
ADD_HEADER_STATUSES = frozenset({200, 201, 204, 206, 301, 302, 303, 304, 307, 308})
# expires max and epoch, as nginx writes them
_MAX_DATE = b"Thu, 31 Dec 2037 23:55:55 GMT"
_EPOCH_DATE = b"Thu, 01 Jan 1970 00:00:01 GMT"


def expires_headers(expires: Expires, now: float, req: Any) -> Headers:
    """``Expires`` and ``Cache-Control`` as nginx's ``expires`` sets them; none when a
    value with variables says ``off`` or is not one (the upstream's stay then)."""
    if expires.template is not None:
        try:
            found = parse_expires(expires.template.render(req), expires.modified)
        except ExpiresError:
            return []
        if found is None:
            return []
        expires = found
    kind = expires.kind
    if kind == "max":
        return [(b"Expires", _MAX_DATE), (b"Cache-Control", b"max-age=315360000")]
    if kind == "epoch":
        return [(b"Expires", _EPOCH_DATE), (b"Cache-Control", b"no-cache")]
    seconds = int(expires.seconds)
    whole = int(now)
    if seconds == 0 and kind != "daily":
        return [(b"Expires", formatdate(whole, usegmt=True).encode()),
                (b"Cache-Control", b"max-age=0")]
    modified = _last_modified(req) if kind == "modified" else None
    if kind == "daily":
        at = _next_time(seconds, whole)
        max_age = at - whole
    elif modified is not None:
        at = modified + seconds
        max_age = at - whole
    else:
        at, max_age = whole + seconds, seconds
    control = b"no-cache" if seconds < 0 or max_age < 0 else b"max-age=%d" % max_age
    return [(b"Expires", formatdate(at, usegmt=True).encode()), (b"Cache-Control", control)]


def _last_modified(req: Any) -> int | None:
    """The upstream response's Last-Modified, in seconds (None: none, or not a date)."""
    for name, value in req.upstream_headers or ():
        if name.lower() == b"last-modified":
            return http_time(value)
    return None


def _next_time(of_day: int, now: int) -> int:
    """ngx_next_time: the next moment (local time) that is ``of_day`` seconds after
    midnight, today's if it is still to come, else tomorrow's."""
    tm = list(time.localtime(now))
    tm[3], tm[4], tm[5] = of_day // 3600, of_day % 3600 // 60, of_day % 60
    tm[8] = -1  # the DST flag as mktime finds it
    at = int(time.mktime(tuple(tm)))  # type: ignore[arg-type]
    if at - now > 0:
        return at
    tm[2] += 1  # mktime normalises the 32nd of a month
    return int(time.mktime(tuple(tm)))  # type: ignore[arg-type]


def without_expires(headers: Headers) -> Headers:
    """The upstream's headers but its Expires and Cache-Control (``expires`` sets them)."""
    return [h for h in headers if h[0].lower() not in (b"expires", b"cache-control")]
