# cython: language_level=3, boundscheck=False, wraparound=False
# cython: embedsignature=True
"""The state of one request as it goes through the phases; variables read it.

Compiled (as a C class with declared fields) because every request makes one and its
forty fields were most of the cost of making it: here they start as C defaults and
only those that depend on the request are set."""

import os
import time

from fastgate._wire import host_of

_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}


cdef class Request:
    """Attributes are what ``fastgate.variables`` getters read; headers as str pairs are
    made only if a variable asks for them."""

    cdef public object head  # RequestHead
    cdef public str method
    cdef public str target
    cdef public str version
    cdef public str uri  # $uri: normalised, decoded
    cdef public str args
    cdef public str host
    cdef public str scheme
    cdef public str remote_addr
    cdef public int remote_port
    cdef public str server_addr
    cdef public int server_port
    cdef public object server  # Server | None
    cdef public object location  # Location | None
    cdef public int status
    cdef public double start  # wall clock at arrival
    cdef public long long request_length
    cdef public long long body_bytes_sent
    cdef public long long bytes_sent
    cdef public str upstream_addr
    cdef public str upstream_status
    cdef public double upstream_time  # seconds to the upstream's response head; -1: none
    cdef public str proxy_host
    cdef public str proxy_port
    cdef public long long connection_id
    cdef public long long connection_requests
    cdef public object token  # Token | None
    cdef public tuple captures
    cdef public dict memo
    cdef object _headers
    cdef str _request_id
    # WWW-Authenticate for a 401 the access phase caused (None: it caused none)
    cdef public object challenge
    cdef public bint redirected
    cdef public bint limited  # limit_req/limit_conn ran (once per request, as nginx)
    cdef public str limit_req_status
    cdef public str limit_conn_status
    cdef public object conn_slots  # [(table, key)] limit_conn counts to release, or None
    # the status an error_page imposes on whatever answers (None: the answer's own)
    cdef public object override

    def __init__(self, head, target, conn):
        self.head = head
        self.method = _METHODS.get(head.method) or head.method.decode("latin-1")
        self.target = head.target.decode("latin-1")
        self.version = head.version.decode("latin-1")
        self.uri = target.path
        self.args = target.args
        self.scheme = conn.scheme
        self.remote_addr = conn.remote_addr
        self.remote_port = conn.remote_port
        self.server_addr = conn.server_addr
        self.server_port = conn.server_port
        self.host = target.host or host_of(head.headers)
        self.start = time.time()
        self.upstream_addr = ""
        self.upstream_status = ""
        self.upstream_time = -1.0
        self.proxy_host = ""
        self.proxy_port = ""
        self.connection_id = conn.connection_id
        self.connection_requests = conn.requests
        self.captures = ()
        self.memo = {}
        self._request_id = ""
        self.limit_req_status = ""
        self.limit_conn_status = ""
        # (None, 0 and False fields are C defaults: server, location, status, token,
        # challenge, redirected, limited, conn_slots, override, the byte counts)

    @property
    def headers(self):
        """[(lower-cased name, value)] as str, made on first use."""
        h = self._headers
        if h is None:
            h = self._headers = [(n.decode("latin-1").lower(), v.decode("latin-1"))
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

    def header(self, bytes lname):
        for n, v in self.head.headers:
            if n.lower() == lname:
                return v
        return None
