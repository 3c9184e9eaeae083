# cython: language_level=3
# cython: embedsignature=True
"""The headers the proxy reads and writes, in C: the bearer token a location checks,
the header block a proxied request carries upstream, and the head of the proxied
response the client gets (one builder for both exchange paths). They run on every
proxied request; the HTTP rules they rest on (which names are hop-by-hop, what a field
value may hold) are ``fastgate._wire``'s, cimported from it.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize

from fastgate._core cimport ClaimGetter
from fastgate._wire cimport RequestHead, ResponseHead, _field_value, _forward_into, header_is
from fastgate.http.exchange cimport Exchange
from fastgate.proxy.page cimport may_chunk
from fastgate.proxy.request cimport Request

from fastgate.proxy.headers import (
    RESPONSE_DROP,
    redirected,
    without_expires,
)
from fastgate.proxy.accel import carry as _carry
from fastgate.proxy.charset import apply as _charset
from fastgate.proxy.cookies import response_cookies
from fastgate.proxy.status import reason
from fastgate.proxy.transforms import transformed

cdef tuple _RESPONSE_DROP = RESPONSE_DROP


cdef bint _names_a_target(list headers):
    """Whether a Location or Refresh header is among ``headers`` (a C scan: most
    responses have neither)."""
    cdef tuple pair
    cdef bytes name
    cdef Py_ssize_t n
    for pair in headers:
        name = pair[0]
        n = PyBytes_GET_SIZE(name)
        if (n == 8 and header_is(<const unsigned char*>PyBytes_AS_STRING(name), 8,
                                 b"location", 8)) or \
                (n == 7 and header_is(<const unsigned char*>PyBytes_AS_STRING(name), 7,
                                      b"refresh", 7)):
            return True
    return False


cdef list _own_headers(list upstream, tuple drop, bytes date):
    """Our Server and Date, but where proxy_pass_header passes the upstream's and it
    sent one (then it is the only one, as nginx's)."""
    cdef list own = []
    cdef tuple pair
    passed_server = b"server" not in drop
    passed_date = b"date" not in drop
    sent = {pair[0].lower() for pair in upstream} if passed_server or passed_date else ()
    if not (passed_server and b"server" in sent):
        own.append((b"Server", b"fastgate"))
    if not (passed_date and b"date" in sent):
        own.append((b"Date", date))
    return own


cpdef bearer_of(list headers):
    """The token of the first ``Authorization: Bearer <token>``: the scheme is
    case-insensitive (RFC 9110 section 11.1), one or more spaces follow it (RFC 6750
    section 2.1: SP only, a tab is refused); None when there is no such header or no
    token. (A second Authorization header never gets here: the request is a 400.)"""
    cdef tuple pair
    cdef bytes name, value
    cdef const unsigned char* p
    cdef Py_ssize_t n, i, j
    for pair in headers:
        name = pair[0]
        if PyBytes_GET_SIZE(name) == 13 and header_is(
                <const unsigned char*>PyBytes_AS_STRING(name), 13, b"authorization", 13):
            value = pair[1]
            p = <const unsigned char*>PyBytes_AS_STRING(value)
            n = PyBytes_GET_SIZE(value)
            if n < 8 or not header_is(p, 6, b"bearer", 6) or p[6] != 32:
                return None
            i = 7
            while i < n and p[i] == 32:
                i += 1
            if i < n and p[i] == 9:
                return None
            j = n
            while j > i and (p[j - 1] == 32 or p[j - 1] == 9):
                j -= 1
            if j == i:
                return None
            return PyBytes_FromStringAndSize(<const char*>p + i, j - i)
    return None


cpdef tuple upstream_headers(list client_headers, tuple plan, tuple drop, bytes host,
                             request):
    """The headers a proxied request carries upstream, and the names of the
    ``proxy_set_header`` values dropped because they would carry a control byte (None
    when there are none; the request still goes, without them). The rules are
    ``fastgate.proxy.headers``'s: ``plan`` is its ``set_plan(proxy_set_header)``
    (name, name as bytes, whether it is Host, template), ``drop`` its ``request_drop``;
    a value that renders empty removes the header; ``host`` (the upstream's) is the Host
    unless the plan sets one. Upgrade and Connection are hop-by-hop: they go upstream
    only as the plan sets them (the usual WebSocket configuration). In nginx's order
    (ngx_http_proxy_create_request): the plan's, then the Host if the plan has none,
    then the client's."""
    cdef list out = []
    cdef list unsafe = None
    cdef tuple item, parts
    cdef str value
    cdef bint host_set = False
    for item in plan:
        # Template.render, inline for the usual one-part value ($jwt_claim_sub)
        parts = item[3].parts
        if len(parts) == 1:
            part = parts[0]
            if type(part) is str:
                value = part
            elif type(part) is ClaimGetter and type(request) is Request:  # (a C call)
                value = (<ClaimGetter>part).text((<Request>request).token,
                                                 (<Request>request).jwt_plus)
            else:
                value = part(request)
        else:
            value = item[3].render(request)
        raw = _field_value(value) if value else None
        if item[2]:
            host_set = True
        if raw is None:
            if value:
                if unsafe is None:
                    unsafe = []
                unsafe.append(item[0])
            continue
        out.append((item[1], raw))
    if not host_set and host is not None:
        out.append((b"Host", host))
    return _forward_into(out, client_headers, drop), unsafe


cpdef tuple upstream_request_head(Request req, pp, tuple plan):
    """What a proxied request carries upstream, for both exchange paths: its headers
    (``plan``: the location's ``UpstreamExchange.header_plan``), the names of the
    proxy_set_header values dropped for a control byte (None: none), and its target
    when that is the client's as it came — a proxy_pass without a URI part, nothing
    rewritten (None otherwise: ``UpstreamExchange.upstream_target`` makes it). Sets
    ``$proxy_host`` and ``$proxy_port``."""
    cdef RequestHead head = req.head
    req.proxy_host = pp.host_header
    req.proxy_port = pp.port
    headers, unsafe = upstream_headers(head.headers if plan[5] else [], plan[1], plan[2],
                                       pp.host_bytes, req)
    target = head.target
    if pp.uri is not None or req.uri_remade or not target.startswith(b"/"):
        target = None
    return headers, unsafe, target


cpdef bytes response_head(Exchange exchange, respond, Request req, loc, ResponseHead rhead,
                          bytes date, tuple drop, tuple rules, bint head_only):
    """The head of a proxied response as the client gets it, on either exchange path:
    ``req.status`` (the caller has set it: the upstream's, or error_page's ``=code``),
    our Server and Date, the upstream's headers but those named in ``drop`` (hop-by-hop
    and framing, and proxy_hide_header's: the client's exchange frames the body), ``expires``
    in place of the upstream's Expires and Cache-Control, ``add_header``'s; Location and
    Refresh as ``proxy_redirect``'s ``rules`` rewrite them (a Location that is a path made
    absolute; ``rules`` None, FastCGI's: left as they are, as nginx leaves an upstream's
    relative Location without a rewrite handler), Set-Cookie as ``proxy_cookie_*`` do,
    what an X-Accel-Redirect carried (``proxy.accel``), Content-Type with ``charset``'s
    (``proxy.charset``). Raises
    ProtocolError when the engine refuses a header of the upstream's."""
    if exchange is None:  # (a C method call on None would not raise)
        raise TypeError("response_head needs the client's exchange")
    cdef int status = req.status
    if drop is _RESPONSE_DROP:  # the usual case: no proxy_hide_header/proxy_pass_header
        own = [(b"Server", b"fastgate"), (b"Date", date)]
    else:
        own = _own_headers(rhead.headers, drop, date)
    headers = _forward_into(own, rhead.headers, drop)
    s = loc.settings
    if rules is not None and _names_a_target(headers):
        headers = redirected(headers, rules, req, s)
    cdef bint edits = s.edits_response  # (the usual location: none of what follows)
    if edits and s.edits_set_cookie:
        headers = response_cookies(headers, s, req, respond.client_error(req))
    if req.carried is not None:  # an X-Accel-Redirect's (a file's type: static.py's)
        headers = _carry(headers, req.carried, True)
    req.upstream_headers = rhead.headers
    if edits and (s.add_header or s.expires is not None):
        # $sent_http_NAME reads the headers as they stand (Responder.add_headers)
        if s.expires is not None:
            req.sent_headers = headers
            expiry = respond.expires_for(req, loc, status)
            if expiry:  # replaces the upstream's
                headers = without_expires(headers)
                headers.extend(expiry)
        if s.add_header:
            req.sent_headers = headers
            respond.headers_added(req, loc, status, headers)
    if edits and s.charset is not None and not transformed(s, status, headers):
        # (a response the image filter or XSLT makes anew: named after, proxy.output)
        headers = _charset(headers, status, s, req)
    length = rhead.content_length if rhead.content_length >= 0 else None
    # (chunked_transfer_encoding off: a body of unknown length ends with the connection,
    # and no trailers follow, as nginx's chunked filter leaves it; an HTTP/2 stream is
    # framed by HTTP/2 — asked only of a body whose length is not known)
    if (edits and s.add_trailer and may_chunk(req, s)
            and respond.expects_trailers(req, loc, status, head_only)):
        length = None  # chunked, for the trailers to follow
    req.sent_headers = headers
    # the upstream's own words for its own status, none if it wrote none (as nginx's
    # status_line, but for the space after the code, which it keeps); an error page's
    # code, a range's 206, has nginx's
    said = rhead.reason if status == rhead.status else reason(status)
    return exchange.respond(status, said, headers, length, head_only,
                            length is not None or may_chunk(req, s))
