# cython: language_level=3, boundscheck=False, wraparound=False
# cython: embedsignature=True
"""The state of one request as it goes through the phases; variables read it.

Compiled (as a C class with declared fields) because every request makes one and its
forty fields were most of the cost of making it: here they start as C defaults and
only those that depend on the request are set."""

from posix.time cimport clock_gettime, timespec, CLOCK_REALTIME

import os

from fastgate._wire cimport RequestHead, host_of
from fastgate._wire import normal_host

cdef dict _METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}


cdef class Request:
    """Attributes are what ``fastgate.variables`` getters read; headers as str pairs are
    made only if a variable asks for them."""

    # (fields: request.pxd, so that the callback exchange reads them as C members)

    def __init__(self, RequestHead head, target, conn):
        # target: an http.uri.Target (path, args, host), read by position
        if not isinstance(target, tuple) or len(<tuple>target) != 3:
            raise TypeError(f"not a Target: {target!r}")
        self._made(head, target, conn.info, conn.requests, conn.pipelined)

    cdef int _made(self, RequestHead head, object target, ConnectionInfo info,
                   long long requests, bint pipelined) except -1:
        # (target: a tuple of three, or a Target, whose type the caller has checked)
        cdef timespec now
        self.head = head
        self.method = _METHODS.get(head.method) or head.method.decode("latin-1")
        self.uri = (<tuple>target)[0]
        self.args = (<tuple>target)[1]
        self.scheme = info.scheme
        self.remote_addr = info.remote_addr
        self.remote_port = info.remote_port
        self.server_addr = info.server_addr
        self.server_port = info.server_port
        # None when invalid: the connection answers 400 before anything else runs
        authority = (<tuple>target)[2]
        if authority is None:
            self.host = host_of(head.headers)
        else:
            # the target's host is the request's; a Host header beside it must still be
            # valid, as nginx's ngx_http_process_host checks it ("Host:" empty is a 400)
            self.host = normal_host(authority.encode("latin-1"))
            if self.host is not None and host_of(head.headers) is None:
                self.host = None
        clock_gettime(CLOCK_REALTIME, &now)  # time.time(), without its Python call
        self.start = now.tv_sec + now.tv_nsec * 1e-9
        self.upstream_addr = ""
        self.upstream_status = ""
        self.upstream_time = -1.0
        self.upstream_response_time = -1.0
        self.upstream_connect_time = -1.0
        self.proxy_host = ""
        self.proxy_port = ""
        self.connection_id = info.connection_id
        self.connection_requests = requests
        self.pipelined = pipelined
        self.connection = info
        self.captures = ()
        self._request_id = ""
        self.limit_req_status = ""
        self.limit_conn_status = ""
        # (None, 0 and False fields are C defaults: server, location, status, token,
        # challenge, redirected, limited, conn_slots, override, the byte counts)
        return 0

    @property
    def target(self):
        """The request target as the client sent it: $request_uri. Of an absolute-form
        target, what follows the authority ("/" if nothing), as nginx's unparsed_uri."""
        t = self._target
        if t is None:
            t = self.head.target.decode("utf-8", "surrogateescape")
            if t[:1] != "/" and "://" in t:
                rest = t.split("://", 1)[1]
                cut = len(rest)
                for mark in ("/", "?"):
                    i = rest.find(mark)
                    if 0 <= i < cut:
                        cut = i
                t = rest[cut:] or "/"
            self._target = t
        return t

    @target.setter
    def target(self, str value):
        # (a refused request whose target nginx could not read: its $request_uri is empty)
        self._target = value

    @property
    def version(self):
        return self.head.version.decode("latin-1")

    @property
    def memo(self):
        """Values of map variables evaluated for this request, by name."""
        m = self._memo
        if m is None:
            m = self._memo = {}
        return m

    @property
    def variables(self):
        """The values ``set`` (and ``auth_request_set``) gave, by name: one dict for a
        request and its subrequests, as nginx's subrequest shares r->variables (a
        ``set $backend ...`` at server level is the auth subrequest's too)."""
        v = self._variables
        if v is None:
            v = self._variables = {}
        return v

    def share_variables(self, Request main):
        """This subrequest reads and writes ``main``'s variables."""
        self._variables = main.variables

    @property
    def headers(self):
        """[(lower-cased name, value)] as str, made on first use."""
        h = self._headers
        if h is None:
            # values as every other str that stands for bytes here (UTF-8, with the
            # undecodable bytes escaped): encoded back the same way they are the bytes
            # that came, whether they go upstream, into a log or into a limit key
            h = self._headers = [(n.decode("latin-1").lower(),
                                  v.decode("utf-8", "surrogateescape"))
                                 for n, v in self.head.headers]
        return h

    @property
    def server_name(self):
        return self.server.name if self.server is not None else ""

    @property
    def request_id(self):
        if not self._request_id:
            self._request_id = os.urandom(16).hex()
        return self._request_id

    def length(self):
        """$request_length: the request line, the header lines and the body bytes read
        so far (``request_length`` counts the body), as they are framed on the wire."""
        cdef RequestHead head = self.head
        cdef long long n = len(head.method) + len(head.target) + 12  # " ", " HTTP/1.x\r\n"
        cdef tuple pair
        for pair in head.headers:
            n += len(<bytes>pair[0]) + len(<bytes>pair[1]) + 4
        return n + 2 + self.request_length

    def header(self, bytes lname):
        for n, v in self.head.headers:
            if n.lower() == lname:
                return v
        return None

    cpdef sent_body(self, Py_ssize_t framed, Py_ssize_t payload):
        """Body bytes written: ``framed`` as they went (a chunked body's sizes and last
        chunk too), of which ``payload`` the body's own. Counted in $bytes_sent as they
        went, and in $body_bytes_sent as nginx counts what follows the head — framing
        and all over HTTP/1.1; an HTTP/2 stream's framing here is the stream's own
        HTTP/1.1, never on the wire (its DATA carries the payload)."""
        self.bytes_sent += framed
        cdef ConnectionInfo info = self.connection
        self.body_bytes_sent += payload if info is not None and info.http2 else framed

    cpdef discard_body(self):
        """nginx's ngx_http_discard_request_body for a body refused (too large) or
        failed: the request carries none from here — an error page's proxy sends none,
        the size limit is not checked again — and no "100 Continue" invites it (the
        connection reads and drops what still comes)."""
        cdef RequestHead h = self.head
        self.head = RequestHead(h.method, h.target, h.version, h.headers, 0, h.keep_alive,
                                False, h.upgrade)

    cpdef expect_tested(self):
        """nginx's r->expect_tested: no "100 Continue" goes to this request from here
        (an error page that sets its own status answers without one)."""
        cdef RequestHead h = self.head
        if h.expect_continue:
            self.head = RequestHead(h.method, h.target, h.version, h.headers,
                                    h.content_length, h.keep_alive, False, h.upgrade)

    cpdef release_conn_slots(self):
        """The request's ``limit_conn`` counts, given back once: before the bytes that
        complete its response (the client may send its next request the moment they
        arrive), or when it ends some other way."""
        slots = self.conn_slots
        if slots is not None:
            self.conn_slots = None
            for table, key in slots:
                table.release(key)


cdef Request new_request(RequestHead head, tuple target, ConnectionInfo info,
                         long long requests, bint pipelined):
    """``Request(head, target, conn)`` with the connection's fields given: no Python
    call, no argument parsing (``target``: an http.uri.Target)."""
    if len(target) != 3:
        raise TypeError(f"not a Target: {target!r}")
    cdef Request req = Request.__new__(Request)
    req._made(head, target, info, requests, pipelined)
    return req


cdef class RequestEnd:
    """The base of what ends a request (request.pxd). It holds nothing; ``complete`` is
    the derived class's to write."""

    cpdef complete(self, conn, Request req, double started):
        raise NotImplementedError
