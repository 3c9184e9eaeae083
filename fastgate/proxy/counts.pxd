# What auth_jwt's compiled check (proxy/jwt_phase.pyx) counts on every request, declared
# as a C class: the worker's counters (ops.counters.SlotWriter, whose layer the proxy's
# may not name) derive from it, so the check's counts are C calls; any other counter
# (a test's) is called by name.


cdef class JwtCounts:
    cpdef verified(self, bint hit)
    cpdef jwt(self, str reason)
    cpdef cache(self, bint hit)
