# cython: language_level=3, boundscheck=False, wraparound=False
# cython: embedsignature=True
"""The base of what auth_jwt's check counts (counts.pxd says which). It holds nothing;
each method is the derived class's to write."""


from fastgate.http.events cimport IdleGauge


cdef class JwtCounts(IdleGauge):
    cpdef verified(self, bint hit):
        raise NotImplementedError

    cpdef jwt(self, str reason):
        raise NotImplementedError

    cpdef cache(self, bint hit):
        raise NotImplementedError
