from fastgate.http.httptools_engine cimport HttptoolsServer


cdef class Exchange:
    cdef object conn
    cdef object engine
    cdef object transport
    cdef object gate
    cdef public object listener
    cdef public bint last  # the next response head ends the connection (Connection: close)
    # something of the request's answer was written (reset by the connection per request)
    cdef public bint began

    cpdef bytes respond(self, int status, bytes reason, list headers, object length,
                        bint head_only=*, bint chunked=*)
    cpdef bytes body(self, data)
    cpdef bytes end(self, trailers=*)
    cpdef write(self, data)
    cpdef bint paused(self)
