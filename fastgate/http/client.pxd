cdef class HttpClientConnection:
    cdef public object engine
    cdef public object transport
    cdef public object gate
    cdef public bint closed
    cdef public Py_ssize_t received  # bytes read from the server, ever
    cdef public Py_ssize_t sent  # bytes written to it, ever
    cdef public object head
    cdef public object body
    cdef public object tunnel
    cdef public object sink
    cdef Py_ssize_t _head_limit  # what the engine was last told (limit_head)

    cpdef attach(self, sink)
    cpdef detach(self)
    cpdef bint ready_for_next(self)
    cpdef pause_reading(self)
    cpdef resume_reading(self)
    cpdef limit_head(self, Py_ssize_t size)
    cpdef send_request(self, bytes method, bytes target, list headers, length,
                       bytes body=*)
    cpdef write(self, data)
    cpdef close(self)
    cpdef abort(self)
