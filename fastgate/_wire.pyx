# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""The fast lane of the httptools engine: whole HTTP/1.1 messages of the common,
simple shape parsed in one pass of C, instead of a dozen Python callbacks from llhttp.

A request qualifies when it arrives whole in one read and nothing else does: a known
method, an origin-form target of RFC 3986 characters, ``HTTP/1.1`` or ``HTTP/1.0``,
header lines ``name: value`` of printable ASCII ended by CRLF, no body (no
Content-Length but ``0``, no Transfer-Encoding), no Expect, no Upgrade, exactly one
Host on HTTP/1.1. A response qualifies when it arrives whole in one read: status 200
to 599, framed by one Content-Length (or bodiless: HEAD, 204, 304).

Anything else — a byte out of place, a limit reached, a message split over reads,
pipelining — returns ``None`` and the caller hands the same bytes to llhttp, which
decides as it always did. So this lane accepts a strict subset of what both engines
accept, and reads it the same way; ``tests/http/test_wire.py`` checks that against h11
on every stream of the differential suite and on generated ones.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from libc.string cimport memchr, memcmp, memcpy
from libc.time cimport time, time_t

cdef extern from "Python.h":
    ctypedef struct PyObject
    Py_ssize_t PyTuple_GET_SIZE(object)
    PyObject* PyTuple_GET_ITEM(object, Py_ssize_t)
    bint _bytes_exact "PyBytes_CheckExact"(PyObject*)
    Py_ssize_t _size "Py_SIZE"(PyObject*)
    const char* _chars "PyBytes_AS_STRING"(PyObject*)

import email.utils
from http import HTTPStatus


cdef class RequestHead:
    """A request's head as the engines hand it over; immutable. A C class because a
    request makes one, and a frozen dataclass cost 2 µs to build where this costs 0.1."""

    # (fields: _wire.pxd, so that the other C modules read them directly)

    def __init__(self, bytes method, bytes target, bytes version, list headers,
                 long long content_length, bint keep_alive, bint expect_continue,
                 object upgrade):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.content_length = content_length
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.upgrade = upgrade

    def _fields(self):
        return (self.method, self.target, self.version, self.headers, self.content_length,
                self.keep_alive, self.expect_continue, self.upgrade)

    def __eq__(self, other):
        if not isinstance(other, RequestHead):
            return NotImplemented
        return self._fields() == (<RequestHead>other)._fields()

    __hash__ = None

    def __repr__(self):
        return ("RequestHead(method=%r, target=%r, version=%r, headers=%r, content_length=%d, "
                "keep_alive=%r, expect_continue=%r, upgrade=%r)" % self._fields())


cdef class ConnectionInfo:
    """What a client connection tells each of its requests, fixed once the connection is
    made; the request copies it field by field (from a C struct, not by six lookups in a
    Python object)."""

    def __init__(self, str scheme, str remote_addr, int remote_port, str server_addr,
                 int server_port, long long connection_id, str ssl_protocol="",
                 proxy_protocol=None, client_certificate=None, str http2="", tls=None,
                 sock=None, double started=0.0):
        self.scheme = scheme
        self.remote_addr = remote_addr
        self.remote_port = remote_port
        self.server_addr = server_addr
        self.server_port = server_port
        self.connection_id = connection_id
        self.ssl_protocol = ssl_protocol
        self.proxy_protocol = proxy_protocol
        self.client_certificate = client_certificate
        self.http2 = http2
        self.tls = tls
        self.sock = sock
        self.started = started

    def learned(self, proxy_protocol, client_certificate):
        """The same connection once its PROXY header was read or its certificate's
        status checked (OCSP): a copy with those two, the rest kept."""
        return ConnectionInfo(self.scheme, self.remote_addr, self.remote_port,
                              self.server_addr, self.server_port, self.connection_id,
                              self.ssl_protocol, proxy_protocol, client_certificate,
                              self.http2, self.tls, self.sock, self.started)


cdef class ResponseHead:
    """A response's head as the engines hand it over; immutable."""

    # (fields: _wire.pxd)

    def __init__(self, int status, bytes reason, bytes version, list headers,
                 long long content_length, bint keep_alive):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.content_length = content_length
        self.keep_alive = keep_alive

    def _fields(self):
        return (self.status, self.reason, self.version, self.headers, self.content_length,
                self.keep_alive)

    def __eq__(self, other):
        if not isinstance(other, ResponseHead):
            return NotImplemented
        return self._fields() == (<ResponseHead>other)._fields()

    __hash__ = None

    def __repr__(self):
        return ("ResponseHead(status=%d, reason=%r, version=%r, headers=%r, "
                "content_length=%d, keep_alive=%r)" % self._fields())

# character classes, one byte each (RFC 9110 section 5.6.2, RFC 3986 section 2)
cdef unsigned char _TCHAR[256]
cdef unsigned char _FIELD[256]   # a field value's bytes: VCHAR, SP, HTAB (no obs-text)
cdef unsigned char _TARGET[256]  # origin-form: unreserved, sub-delims, ":@/?%"
cdef unsigned char _LOWER[256]

cdef int _init_tables() except -1:
    cdef int c
    for c in range(256):
        _TCHAR[c] = 0
        _FIELD[c] = 0
        _TARGET[c] = 0
        _LOWER[c] = c + 32 if 65 <= c <= 90 else c
    for c in b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
        _TCHAR[c] = 1
    for c in range(0x20, 0x7f):
        _FIELD[c] = 1
    _FIELD[9] = 1
    for c in b"-._~!$&'()*+,;=:@/?%0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
        _TARGET[c] = 1
    return 0

_init_tables()

# the methods both engines know; the returned method is one of these objects
cdef bytes _GET = b"GET"
cdef bytes _HEAD = b"HEAD"
cdef bytes _POST = b"POST"
cdef bytes _PUT = b"PUT"
cdef bytes _DELETE = b"DELETE"
cdef bytes _OPTIONS = b"OPTIONS"
cdef bytes _PATCH = b"PATCH"
cdef bytes _V11 = b"1.1"
cdef bytes _V10 = b"1.0"

cdef int MAX_HEADERS = 64

# the standard reason phrases
REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
# the same, indexed by status in C (a dict is keyed by an int object, one made per
# lookup of a status past 256)
cdef list _PHRASES = [None] * 1000
for _status, _phrase in REASONS.items():
    _PHRASES[_status] = _phrase


cdef bytes phrase_of(int status):
    """The standard reason phrase of ``status``; None for one without."""
    return <bytes>_PHRASES[status] if 0 <= status < 1000 else None


cdef inline bint _is(const unsigned char* p, Py_ssize_t n, const char* lname, Py_ssize_t ln):
    """Case-insensitive comparison of a header name with a lower-case constant."""
    cdef Py_ssize_t i
    if n != ln:
        return False
    for i in range(n):
        if _LOWER[p[i]] != <unsigned char>lname[i]:
            return False
    return True


cdef bint header_is(const unsigned char* p, Py_ssize_t n, const char* lname, Py_ssize_t ln):
    """``_is`` for the other compiled modules (an inline function does not cross them)."""
    return _is(p, n, lname, ln)


cdef enum:
    CONN_NONE = 0
    CONN_CLOSE = 1
    CONN_KEEP = 2
    CONN_OTHER = 3


cdef int _connection(const unsigned char* p, Py_ssize_t n):
    if _is(p, n, b"close", 5):
        return CONN_CLOSE
    if _is(p, n, b"keep-alive", 10):
        return CONN_KEEP
    return CONN_OTHER


cdef Py_ssize_t _headers(const unsigned char* s, Py_ssize_t pos, Py_ssize_t end,
                         list out, Py_ssize_t max_line, long long* clen, int* conn,
                         int* hosts, bint request) except -2:
    """Header lines from ``pos`` to the empty line; the offset just after it, or -1 when
    the block is not of the simple shape (the caller falls back to llhttp)."""
    cdef Py_ssize_t name0, name1, v0, v1, n, count = 0
    cdef unsigned char c
    cdef long long value
    cdef Py_ssize_t i
    clen[0] = -1
    conn[0] = CONN_NONE
    hosts[0] = 0
    while True:
        if pos + 1 >= end:
            return -1
        if s[pos] == 13:
            if s[pos + 1] != 10:
                return -1
            return pos + 2
        count += 1
        if count > MAX_HEADERS:
            return -1
        name0 = pos
        while pos < end and _TCHAR[s[pos]]:
            pos += 1
        name1 = pos
        if name1 == name0 or pos >= end or s[pos] != 58:  # ':' right after a token
            return -1
        pos += 1
        while pos < end and (s[pos] == 32 or s[pos] == 9):
            pos += 1
        v0 = pos
        while pos < end and _FIELD[s[pos]]:
            pos += 1
        if pos + 1 >= end or s[pos] != 13 or s[pos + 1] != 10:
            return -1
        v1 = pos
        if v1 > v0 and (s[v1 - 1] == 32 or s[v1 - 1] == 9):
            return -1  # trailing whitespace: llhttp's path reads it (and drops it, as h11)
        pos += 2
        if (name1 - name0) + (v1 - v0) + 4 > max_line:
            return -1
        n = name1 - name0
        if n == 14 and _is(s + name0, n, b"content-length", 14):
            if clen[0] != -1 or v1 == v0 or v1 - v0 > 15:
                return -1
            value = 0
            for i in range(v0, v1):
                c = s[i]
                if c < 48 or c > 57:
                    return -1
                value = value * 10 + (c - 48)
            clen[0] = value
        elif n == 17 and _is(s + name0, n, b"transfer-encoding", 17):
            return -1
        elif n == 10 and _is(s + name0, n, b"connection", 10):
            if conn[0] != CONN_NONE:
                return -1
            conn[0] = _connection(s + v0, v1 - v0)
            if conn[0] == CONN_OTHER:
                return -1
        elif request and n == 4 and _is(s + name0, n, b"host", 4):
            hosts[0] += 1
        elif request and ((n == 7 and _is(s + name0, n, b"upgrade", 7))
                          or (n == 6 and _is(s + name0, n, b"expect", 6))):
            return -1
        out.append((PyBytes_FromStringAndSize(<const char*>s + name0, name1 - name0),
                     PyBytes_FromStringAndSize(<const char*>s + v0, v1 - v0)))


cdef bytes _HEX = b"0123456789ABCDEF"


cpdef bytes escape_past_ascii(bytes line):
    """``line`` with each byte past ASCII percent-encoded: what the engines' parsers
    (llhttp, h11) are given of a request line or target that has them, as they take
    only ASCII in a target (nginx takes the bytes)."""
    cdef const unsigned char* p = line
    cdef Py_ssize_t i, n = len(line)
    cdef bytearray out = bytearray()
    for i in range(n):
        if p[i] >= 128:
            out += b"%"
            out.append(_HEX[p[i] >> 4])
            out.append(_HEX[p[i] & 15])
        else:
            out.append(p[i])
    return bytes(out)


cpdef parse_request(bytes data, Py_ssize_t max_header_bytes, Py_ssize_t max_line):
    """One whole, simple, bodiless request that is all of ``data``, as a RequestHead;
    None for anything else (llhttp then parses it)."""
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t end = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t pos = 0, t0, t1
    cdef bytes method
    cdef bytes version
    cdef long long clen
    cdef int conn, hosts
    cdef list headers
    if end < 18 or end > max_header_bytes:
        return None
    while pos < end and 65 <= s[pos] <= 90:
        pos += 1
    if pos >= end or s[pos] != 32:
        return None
    if pos == 3 and memcmp(s, b"GET", 3) == 0:
        method = _GET
    elif pos == 4 and memcmp(s, b"HEAD", 4) == 0:
        method = _HEAD
    elif pos == 4 and memcmp(s, b"POST", 4) == 0:
        method = _POST
    elif pos == 3 and memcmp(s, b"PUT", 3) == 0:
        method = _PUT
    elif pos == 6 and memcmp(s, b"DELETE", 6) == 0:
        method = _DELETE
    elif pos == 7 and memcmp(s, b"OPTIONS", 7) == 0:
        method = _OPTIONS
    elif pos == 5 and memcmp(s, b"PATCH", 5) == 0:
        method = _PATCH
    else:
        return None
    pos += 1
    t0 = pos
    if pos >= end or s[pos] != 47:  # origin-form only
        return None
    while pos < end and _TARGET[s[pos]]:
        pos += 1
    t1 = pos
    # (the line, CRLF included, is t1 + 11 bytes: a longer one is llhttp's 414)
    if t1 + 11 > max_line or pos + 10 > end or s[pos] != 32:
        return None
    pos += 1
    if memcmp(s + pos, b"HTTP/1.1\r\n", 10) == 0:
        version = _V11
    elif memcmp(s + pos, b"HTTP/1.0\r\n", 10) == 0:
        version = _V10
    else:
        return None
    pos += 10
    headers = []
    pos = _headers(s, pos, end, headers, max_line, &clen, &conn, &hosts, True)
    if pos != end:
        return None
    if clen > 0:
        return None
    if hosts > 1 or (hosts == 0 and version is _V11):
        return None
    cdef RequestHead head = RequestHead.__new__(RequestHead)
    head.method = method
    head.target = PyBytes_FromStringAndSize(<const char*>s + t0, t1 - t0)
    head.version = version
    head.headers = headers
    head.content_length = 0
    head.keep_alive = conn != CONN_CLOSE if version is _V11 else conn == CONN_KEEP
    head.expect_continue = False
    head.upgrade = None
    return head


cpdef parse_response(bytes data, bint head_request):
    """One whole, simple response that is all of ``data``: (ResponseHead, offset of the
    body); None for anything else (llhttp then parses it)."""
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t end = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t pos, body
    cdef int status
    cdef bytes version
    cdef long long clen
    cdef int conn, hosts
    cdef list headers
    if end < 19:
        return None
    if memcmp(s, b"HTTP/1.1 ", 9) == 0:
        version = _V11
    elif memcmp(s, b"HTTP/1.0 ", 9) == 0:
        version = _V10
    else:
        return None
    if not (49 <= s[9] <= 57 and 48 <= s[10] <= 57 and 48 <= s[11] <= 57) or s[12] != 32:
        return None
    status = (s[9] - 48) * 100 + (s[10] - 48) * 10 + (s[11] - 48)
    if status < 200 or status > 599:
        return None
    pos = 13
    while pos < end and _FIELD[s[pos]]:
        pos += 1
    if pos + 1 >= end or s[pos] != 13 or s[pos + 1] != 10:
        return None
    cdef Py_ssize_t said = pos - 13
    # the upstream's own phrase goes on to the client, as nginx's status_line; the
    # usual one is the standard phrase, shared rather than copied
    reason = phrase_of(status)
    if (reason is None or PyBytes_GET_SIZE(reason) != said
            or memcmp(PyBytes_AS_STRING(reason), s + 13, said) != 0):
        reason = PyBytes_FromStringAndSize(<const char*>s + 13, said)
    pos += 2
    headers = []
    body = _headers(s, pos, end, headers, 65536, &clen, &conn, &hosts, False)
    if body < 0:
        return None
    if head_request or status == 204 or status == 304:
        # (a 204/304 that claims a body: llhttp's lane, which keeps it from the pool)
        if body != end or (clen > 0 and not head_request):
            return None
    elif clen < 0 or body + clen != end:
        return None
    cdef ResponseHead head = ResponseHead.__new__(ResponseHead)
    head.status = status
    head.reason = reason
    head.version = version
    head.headers = headers
    head.content_length = clen
    head.keep_alive = conn != CONN_CLOSE if version is _V11 else conn == CONN_KEEP
    return head, body


# --- headers on their way through ------------------------------------------------------------

cdef bint _listed(const unsigned char* p, Py_ssize_t n, tuple names):
    # (the names read borrowed, in C: every header line of a proxied exchange is looked
    # up in a dozen names or more; an item that is not bytes names nothing)
    cdef Py_ssize_t i
    cdef PyObject* name
    for i in range(PyTuple_GET_SIZE(names)):
        name = PyTuple_GET_ITEM(names, i)
        if (_bytes_exact(name) and _size(name) == n
                and _is(p, n, _chars(name), n)):
            return True
    return False


cdef inline bint _strip_space(unsigned char c):
    return c == 32 or 9 <= c <= 13  # (what bytes.strip strips)


cdef tuple _connection_tokens(list headers):
    """Lower-cased names listed in Connection headers (hop-by-hop as well): each
    value split at commas, each piece stripped and lower-cased, empty ones left out —
    in one pass of C (an upstream's every response names keep-alive here)."""
    cdef list out = []
    cdef tuple pair
    cdef bytes name, value, tok
    cdef const unsigned char* v
    cdef unsigned char* w
    cdef Py_ssize_t n, i, j, a, b, k
    for pair in headers:
        name = pair[0]
        if _is(<const unsigned char*>PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name),
               b"connection", 10):
            value = pair[1]
            v = <const unsigned char*>PyBytes_AS_STRING(value)
            n = PyBytes_GET_SIZE(value)
            i = 0
            while i <= n:
                j = i
                while j < n and v[j] != 44:  # ','
                    j += 1
                a = i
                b = j
                while a < b and _strip_space(v[a]):
                    a += 1
                while b > a and _strip_space(v[b - 1]):
                    b -= 1
                if b > a:
                    tok = PyBytes_FromStringAndSize(NULL, b - a)
                    w = <unsigned char*>PyBytes_AS_STRING(tok)
                    for k in range(b - a):
                        w[k] = _LOWER[v[a + k]]
                    out.append(tok)
                i = j + 1
    return tuple(out)


def forwarded(list headers, tuple drop):
    """``headers`` without those named in ``drop`` (lower-case names) or listed in a
    Connection header: what a proxy passes on (RFC 9110 section 7.6.1)."""
    return _forward_into([], headers, drop)


cdef list _forward_into(list out, list headers, tuple drop):
    cdef tuple pair
    cdef bytes name
    cdef tuple listed = ()
    cdef const unsigned char* p
    cdef Py_ssize_t n
    for pair in headers:
        name = pair[0]
        if PyBytes_GET_SIZE(name) == 10 and _is(
                <const unsigned char*>PyBytes_AS_STRING(name), 10, b"connection", 10):
            listed = _connection_tokens(headers)
            break
    for pair in headers:
        name = pair[0]
        p = <const unsigned char*>PyBytes_AS_STRING(name)
        n = PyBytes_GET_SIZE(name)
        if _listed(p, n, drop) or (listed and _listed(p, n, listed)):
            continue
        out.append(pair)
    return out


cpdef bytes serialize(list headers):
    """Header lines ``name: value\\r\\n`` in one allocation. Names and values are already
    valid: from llhttp or the fast lane, from the configuration (checked at load), or
    rendered from variables and checked by ``field_value``."""
    cdef bytes out = PyBytes_FromStringAndSize(NULL, fields_size(headers))
    write_fields(PyBytes_AS_STRING(out), headers)
    return out


cdef bint plain_field(bytes name, bytes value):
    """``name`` a token and ``value`` a field-value of VCHAR with SP or HTAB only
    between them (RFC 9110 sections 5.1 and 5.5, no obs-text)."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(name)
    cdef Py_ssize_t i, n = PyBytes_GET_SIZE(name)
    if n == 0:
        return False
    for i in range(n):
        if not _TCHAR[p[i]]:
            return False
    p = <const unsigned char*>PyBytes_AS_STRING(value)
    n = PyBytes_GET_SIZE(value)
    if n and (p[0] == 32 or p[0] == 9 or p[n - 1] == 32 or p[n - 1] == 9):
        return False
    for i in range(n):
        if not _FIELD[p[i]]:
            return False
    return True


cdef Py_ssize_t fields_size(list headers) except -1:
    """The bytes ``write_fields`` writes for ``headers``."""
    cdef Py_ssize_t size = 0
    cdef tuple pair
    cdef bytes name, value  # (checked: a pair of anything else is a TypeError here)
    for pair in headers:
        name = pair[0]
        value = pair[1]
        size += PyBytes_GET_SIZE(name) + PyBytes_GET_SIZE(value) + 4
    return size


cdef char* write_fields(char* w, list headers):
    """``headers``' lines written at ``w`` (``fields_size`` bytes, sized by the caller);
    where they end."""
    cdef Py_ssize_t n
    cdef tuple pair
    cdef bytes name, value
    for pair in headers:
        name = pair[0]
        value = pair[1]
        n = PyBytes_GET_SIZE(name)
        memcpy(w, PyBytes_AS_STRING(name), n)
        w += n
        w[0] = 58
        w[1] = 32
        w += 2
        n = PyBytes_GET_SIZE(value)
        memcpy(w, PyBytes_AS_STRING(value), n)
        w += n
        w[0] = 13
        w[1] = 10
        w += 2
    return w


cpdef host_of(list headers):
    """``$host`` from the Host header as ``normal_host`` reads it: "" when there is
    none, None when it is invalid (the request is a 400)."""
    cdef tuple pair
    cdef bytes name
    for pair in headers:
        name = pair[0]
        if PyBytes_GET_SIZE(name) == 4 and _is(
                <const unsigned char*>PyBytes_AS_STRING(name), 4, b"host", 4):
            return _normal_host(pair[1])
    return ""


def normal_host(bytes value):
    """A Host value (or the authority of an absolute-form target) as nginx's
    ``ngx_http_validate_host`` leaves it: the port cut off, one trailing dot removed,
    lower-cased; an IPv6 literal keeps its brackets. None when it is invalid: empty
    (once the port and dot are gone), a NUL, control character, space, ``/``, ``\\`` or
    ``@``, an empty label (``..``), a ``[`` anywhere but first or never closed, or a port
    that is not digits (nginx lets the last three through; stricter here, as RFC 9110
    says, so that no backend reads a different name in them). Only ASCII letters are
    lowered, as nginx's. The same name then
    selects the server and is ``$host``: ``api.example.com.`` and
    ``API.example.com:8080`` are ``api.example.com``."""
    return _normal_host(value)


cdef object _normal_host(bytes value):
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(value)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(value), i, host_len = n, dot = -2
    cdef int state = 0  # 0 usual, 1 inside [...], 2 just after "]", 3 the port
    cdef unsigned char c
    cdef bint ascii = True
    for i in range(n):
        c = p[i]
        if state == 3:
            if not 48 <= c <= 57:
                return None  # a port is digits (nginx ignores what follows the ":")
        elif state == 2:
            if c != 58:
                return None  # "[::1]x": nothing but ":port" after the literal
            state = 3
        elif c == 46:  # '.'
            if dot == i - 1:
                return None
            dot = i
        elif c == 58:  # ':'
            if state == 0:
                host_len = i
                state = 3
        elif c == 91:  # '['
            if i != 0:
                return None
            state = 1
        elif c == 93:  # ']'
            if state == 1:
                host_len = i + 1
                state = 2
        elif c <= 32 or c == 127 or c == 47 or c == 92 or c == 64:
            return None  # also "@": userinfo is no part of a Host (RFC 9110 section 7.2)
        elif c >= 128:
            ascii = False
    if state == 1:
        return None
    if host_len > 0 and dot == host_len - 1:
        host_len -= 1
    if host_len == 0:
        return None
    if ascii and host_len <= 255:
        return _lower_ascii(p, host_len)
    # (ASCII letters only, as nginx's: bytes past ASCII stay as they came, read as the
    # rest of a request's text is read, UTF-8 with its undecodable bytes kept)
    return (<bytes>PyBytes_FromStringAndSize(<const char*>p, host_len)).lower().decode(
        "utf-8", "surrogateescape")


cdef str _lower_ascii(const unsigned char* p, Py_ssize_t n):
    cdef char buf[256]
    cdef Py_ssize_t k
    cdef unsigned char c
    for k in range(n):
        c = p[k]
        buf[k] = c + 32 if 65 <= c <= 90 else c
    return (<bytes>PyBytes_FromStringAndSize(buf, n)).decode("ascii")


# the headers nginx 1.22 takes once (ngx_http_process_unique_header_line, and Host):
# a second one is a 400, never a choice between two values
cdef tuple _UNIQUE = (b"host", b"content-length", b"transfer-encoding", b"authorization",
                      b"expect", b"if-modified-since", b"if-unmodified-since", b"if-match",
                      b"if-none-match", b"if-range", b"content-range")


cdef inline bint _nginx_name(const unsigned char* p, Py_ssize_t n, bint underscores):
    """A header name nginx calls valid: letters, digits, '-' (and '_' when allowed)."""
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(n):
        c = p[i]
        if not (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c == 45
                or (c == 95 and underscores)):
            return False
    return True


cpdef screen_headers(list headers, bint underscores, bint ignore_invalid):
    """What nginx does to a request's header lines before anything reads them: None
    when all pass (the common case, one scan); ``(400, name)`` when a header it takes
    once appears twice (``name`` in lower case); ``(0, kept, dropped)`` when ``ignore_invalid_headers`` drops
    names outside ``[A-Za-z0-9-]`` (``_`` too unless ``underscores_in_headers``) —
    dropped headers never reach a variable or the backend."""
    cdef tuple pair
    cdef bytes name, prev
    cdef const unsigned char* p
    cdef Py_ssize_t n, i, j, count = len(headers)
    cdef unsigned int seen = 0
    cdef list kept = None, dropped = None
    for i in range(count):
        pair = headers[i]
        name = pair[0]
        p = <const unsigned char*>PyBytes_AS_STRING(name)
        n = PyBytes_GET_SIZE(name)
        if ignore_invalid and not _nginx_name(p, n, underscores):
            if kept is None:
                kept = list(headers[:i])
                dropped = []
            dropped.append(name)
            continue
        if kept is not None:
            kept.append(pair)
        for j in range(11):
            prev = _UNIQUE[j]
            if _is(p, n, PyBytes_AS_STRING(prev), PyBytes_GET_SIZE(prev)):
                if seen & (1u << j):
                    return (400, prev)
                seen |= 1u << j
                break
    if kept is None:
        return None
    return (0, kept, dropped)


cpdef split_target(bytes raw):
    """``(path, args, None)`` — the fields of ``http.uri.Target`` — of an origin-form
    target whose path needs no normalising (no ``%``, ``#``, NUL, ``//`` or ``/.``) and
    whose arguments hold no ``#`` (nginx's parser ends them there): the common case,
    decided in one scan; None for anything else (``http.uri.parse_target`` then does
    the whole work)."""
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw), i = 0
    cdef unsigned char c
    cdef bint ascii = True
    if n == 0 or s[0] != 47:
        return None
    while i < n:
        c = s[i]
        if c == 63:  # '?'
            break
        if c == 37 or c == 35 or c == 0:  # '%', '#', NUL
            return None
        if c == 47 and i + 1 < n and (s[i + 1] == 47 or s[i + 1] == 46):  # "//", "/."
            return None
        if c >= 128:
            ascii = False
        i += 1
    if ascii:
        path = raw[:i].decode("latin-1")
    else:  # as a decoded escape reads: bytes past ASCII as UTF-8, else kept as they are
        path = raw[:i].decode("utf-8", "surrogateescape")
    if i >= n:
        return path, "", None
    if memchr(s + i + 1, 35, n - i - 1) != NULL:  # '#'
        return None
    return path, raw[i + 1:].decode("utf-8", "surrogateescape"), None


def field_value(str value):
    """A header value rendered from variables, as bytes (UTF-8; bytes that arrived
    undecodable go back as they came), or None when it holds a control byte — CR and LF
    above all — that would let a value split the header block (RFC 9110 section 5.5)."""
    return _field_value(value)


cdef object _field_value(str value):
    cdef bytes raw = value.encode("utf-8", "surrogateescape")
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(PyBytes_GET_SIZE(raw)):
        c = p[i]
        if (c < 32 and c != 9) or c == 127:
            return None
    return raw


cdef class HttpDate:
    """The ``Date`` header's value (RFC 9110 section 6.6.1), formatted again only when
    the second changes: every response carries one, and asking Python for the time costs
    more than the rest of this check."""

    cdef time_t _at
    cdef bytes _value

    def __init__(self):
        self._at = -1
        self._value = b""

    def now(self):
        cdef time_t t = time(NULL)
        if t != self._at:
            self._at = t
            self._value = email.utils.formatdate(t, usegmt=True).encode()
        return self._value
