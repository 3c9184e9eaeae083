from fastgate.http.events cimport IdleGauge, RequestHandlerBase, ServerEvents
from fastgate.http.exchange cimport Exchange


cdef class ClientConnection(ServerEvents):
    cdef public object handler  # RequestHandler
    cdef public object observer  # ConnectionObserver (the worker)
    cdef public str engine_name
    cdef public str scheme
    cdef public object connection_id
    cdef public Py_ssize_t requests
    cdef public bint pipelined
    cdef public object transport
    cdef public object engine
    cdef public object gate
    cdef public bint closed
    cdef public object body  # BodyBuffer of the request in progress
    cdef public bint idle
    cdef public Exchange exchange
    cdef public object remote_addr
    cdef public object remote_port
    cdef public object server_addr
    cdef public object server_port
    cdef public object info  # _wire.ConnectionInfo
    cdef public double deadline
    cdef public object policy  # RequestPolicy of the request in progress
    cdef object _lost
    cdef object _loop
    cdef bint _starting_next
    cdef bint _got_bytes
    cdef double _born
    cdef bint _lingering
    cdef bint _discarding
    cdef double _linger_until
    cdef bint _peer_eof
    cdef object _tunnel
    cdef bint _dispatching
    cdef bint _feeding
    cdef bint _answered_early
    # busy since this request's dispatch began, not yet counted: a request answered
    # inside its dispatch leaves the idle gauge as it was, uncounted both ways
    cdef bint _idle_owed
    # the observer's idle, when it is an IdleGauge's own method: called in C
    cdef IdleGauge _gauge
    cdef void _become_idle(self) except *
    cdef void _count_idle(self, int delta) except *
    cdef bint _held_back
    cdef bint _next_on_drain
    cdef object _settings
    cdef bint _last
    cdef object _proxy_header
    cdef object _given_header
    cdef object _http2
    cdef object _h2
    cdef str _protocol
    cdef object _certificate
    cdef object _ocsp
    cdef int _alive_named  # the Keep-Alive timeout the engine's responses name
    # the policy's values read on every request, copied when it changes (_take_policy)
    cdef double _keepalive_timeout
    cdef long long _keepalive_requests
    cdef double _keepalive_time

    cdef int _take_policy(self, policy) except -1
    cpdef request_done(self)
    cpdef _after_response(self)
