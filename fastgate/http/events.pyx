# cython: language_level=3, boundscheck=False, wraparound=False
# cython: embedsignature=True
"""The bases of what an engine, a client connection and an upstream engine call on
every request (events.pxd says which). They hold nothing; each method is the derived
class's to write."""


cdef class ServerEvents:
    cpdef on_request(self, RequestHead head):
        raise NotImplementedError

    cpdef on_end(self):
        raise NotImplementedError


cdef class RequestHandlerBase:
    cpdef on_request(self, conn, RequestHead head):
        raise NotImplementedError


cdef class ClientEvents:
    cpdef on_whole(self, ResponseHead head, bytes body):
        raise NotImplementedError

    cpdef flush(self):
        raise NotImplementedError


cdef class IdleGauge:
    cpdef idle(self, int delta):
        raise NotImplementedError
