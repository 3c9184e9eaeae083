# cython: language_level=3
# cython: embedsignature=True
"""The request headers the proxy reads and writes, in C: the bearer token a location
checks, and the header block a proxied request carries upstream. Both run on every
proxied request; the HTTP rules they rest on (which names are hop-by-hop, what a field
value may hold) are ``fastgate._wire``'s, cimported from it.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize

from fastgate._wire cimport _field_value, _forward_into, header_is


def bearer_of(list headers):
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


def upstream_headers(list client_headers, tuple plan, tuple drop, bytes host, request):
    """The headers a proxied request carries upstream, and the names of the
    ``proxy_set_header`` values dropped because they would carry a control byte (None
    when there are none; the request still goes, without them). The rules are
    ``fastgate.proxy.headers``'s: ``plan`` is its ``set_plan(proxy_set_header)``
    (name, name as bytes, whether it is Host, template), ``drop`` its ``request_drop``;
    a value that renders empty removes the header; ``host`` (the upstream's) is the Host
    unless the plan sets one. Upgrade and Connection are hop-by-hop: they go upstream
    only as the plan sets them (the usual WebSocket configuration)."""
    cdef list out = _forward_into([], client_headers, drop)
    cdef list unsafe = None
    cdef tuple item
    cdef str value
    for item in plan:
        value = item[3].render(request)
        raw = _field_value(value) if value else None
        if raw is None:
            if value:
                if unsafe is None:
                    unsafe = []
                unsafe.append(item[0])
            if item[2]:
                host = None
            continue
        if item[2]:
            host = raw
        else:
            out.append((item[1], raw))
    if host is not None:
        out.insert(0, (b"Host", host))
    return out, unsafe
