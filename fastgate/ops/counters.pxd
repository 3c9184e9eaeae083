# The counter slot's writer, declared here so that the modules that count on every
# request (the dispatch's completion, auth_jwt's check) call it in C.

from fastgate.proxy.counts cimport JwtCounts


cdef class SlotWriter(JwtCounts):
    cdef double[::1] _view  # keeps the shared buffer alive while _v points into it
    cdef double *_v
    cdef Py_ssize_t _size
    cdef Py_ssize_t _requests  # first of the 1xx..5xx counters
    cdef Py_ssize_t _latency  # first latency bucket; one more bucket for +Inf
    cdef Py_ssize_t _latency_sum
    cdef Py_ssize_t _latency_count
    cdef Py_ssize_t _jwt_ok
    cdef Py_ssize_t _cache_hit
    cdef Py_ssize_t _cache_miss
    cdef Py_ssize_t _idle
    cdef dict _jwt  # a refusal's reason → its counter
    cdef Py_ssize_t _jwt_other  # the counter of a reason not in _jwt
    cdef double _bounds[32]
    cdef int _nbounds

    cdef _bind(self, view, dict at, tuple bounds, dict jwt)
    cpdef add(self, Py_ssize_t index, double delta=*)
    cpdef request(self, int status, double seconds)
    # (verified, jwt, cache: JwtCounts's; idle: IdleGauge's; written here)
