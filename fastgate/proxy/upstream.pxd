from fastgate._wire cimport ResponseHead
from fastgate.http.client cimport HttpClientConnection


cdef class UpstreamConnection(HttpClientConnection):
    cdef public Peer peer
    cdef public Py_ssize_t exchanges_left  # requests it may still carry
    cdef public double retire_at  # then it goes back to no pool (keepalive_time)
    cdef public double deadline  # idle in the pool until then
    cdef public bint busy  # carrying an exchange: counted in its peer's busy

    cpdef taken(self)
    cpdef free(self)
    cpdef park(self, double timeout)


cdef class Peer:
    cdef public object server  # UpstreamServer
    cdef public object address  # $upstream_addr
    cdef public UpstreamGroup group
    cdef public long current  # smooth weighted round robin's
    cdef public long fails
    cdef public double first_fail
    cdef public double down_until
    cdef public long busy  # exchanges in progress (nginx's peer->conns)
    cdef public long max_conns  # the server's max_conns (0: no limit)
    cdef public list idle  # of UpstreamConnection

    cpdef bint available(self, double now)
    cpdef bint failed(self, double now)
    cpdef UpstreamConnection take_idle(self)
    cpdef release(self, UpstreamConnection conn, ResponseHead head)


cdef class UpstreamGroup:
    cdef public object upstream  # Upstream
    cdef public str engine_name
    cdef public object tls  # ssl.SSLContext or None
    cdef public str tls_name
    cdef public list primary
    cdef public list backup
    cdef Peer _only
    cdef bint _least_conn
    cdef object _method

    cpdef Peer pick(self, double now, exclude, req=*)
