"""``X-Accel-Redirect``: an upstream (proxied, FastCGI, uwsgi, SCGI) that answers with
this header hands the request to another location — a URI, or ``@name`` — and its own
answer is dropped (nginx's ngx_http_upstream_process_headers). The application decides
who may have a file; the gateway serves it from an ``internal`` location.

As nginx: the header is acted on whatever the status, unless ``*_ignore_headers
X-Accel-Redirect``; after proxy_intercept_errors (an intercepted error goes to
error_page instead). A URI is decoded with nginx's unsafe-URI check (a ".." segment, a
NUL or an empty one: 404) and may carry arguments; the method becomes GET (HEAD stays);
a named location keeps the method. The upstream's Content-Type, Set-Cookie (as
proxy_cookie_* rewrites it), Content-Disposition, Cache-Control, Expires and
Accept-Ranges go with the request and into the response that answers it: the new
location's own Content-Type yields to the carried one for a file or a ``return`` (not
for an error page or a proxied answer, which name their own), as nginx's headers_out
does. The upstream connection is closed: its body is not read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.http.uri import encode_args, encode_path, unsafe_uri
from fastgate.proxy.cookies import rewrite_set_cookies

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastgate.config.model import Location
    from fastgate.http.engine import Headers
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request
    from fastgate.proxy.steps import Fail, Outcome

    # an internal redirect as error_page makes one (a URI: GET; @name: the method kept)
    Redirect = Callable[[ClientSide, Request, Location, str], Outcome]

CARRIED = frozenset({b"content-type", b"set-cookie", b"content-disposition",
                     b"cache-control", b"expires", b"accept-ranges"})
_NAME = b"x-accel-redirect"


def target(headers: Headers, ignored: frozenset[str]) -> bytes | None:
    """The X-Accel-Redirect an upstream's headers hold (the first), unless ignored."""
    for name, value in headers:
        if len(name) == 16 and name.lower() == _NAME:
            return None if "x-accel-redirect" in ignored else value
    return None


def follow(conn: ClientSide, req: Request, loc: Location, headers: Headers, value: bytes,
           internal: Redirect, fail: Fail, log: Callable[[str], None]) -> Outcome:
    """The request handed to X-Accel-Redirect's target, with the headers it carries."""
    carried = [(n, v) for n, v in headers if n.lower() in CARRIED]
    s = loc.settings
    if carried and (s.proxy_cookie_path or s.proxy_cookie_domain or s.proxy_cookie_flags):
        carried = rewrite_set_cookies(carried, s, req)
    req.carried = carried or None
    text = value.decode("utf-8", "surrogateescape")
    if text.startswith("@"):
        return internal(conn, req, loc, text)
    path, _, args = text.partition("?")
    uri = unsafe_uri(path)
    if uri is None:
        log(f'X-Accel-Redirect "{text}" is not a safe URI')
        return fail(conn, req, loc, 404)
    if req.method != "HEAD":
        req.method = "GET"
    return internal(conn, req, loc, encode_path(uri) + ("?" + encode_args(args) if args
                                                        else ""))


def carry(headers: Headers, carried: Headers, own_type: bool, page: bool = False
          ) -> Headers:
    """A response's headers with what an X-Accel-Redirect carried: its Accept-Ranges
    and (unless ``own_type``: a file's, named already, or a proxied answer's) its
    Content-Type in place of the response's, the rest added. A ``page`` (an error page
    or a redirect's) keeps its own type and takes no Accept-Ranges, as nginx's special
    responses clear it."""
    if own_type or page:
        dropped = {b"content-type", b"accept-ranges"} if page else {b"content-type"}
        carried = [(n, v) for n, v in carried if n.lower() not in dropped]
    replaced = {n.lower() for n, _ in carried} & {b"accept-ranges", b"content-type"}
    return [*((n, v) for n, v in headers if n.lower() not in replaced), *carried]


__all__ = ["CARRIED", "carry", "follow", "target"]
