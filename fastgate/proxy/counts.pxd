# What auth_jwt's compiled check (proxy/jwt_phase.pyx) counts on every request, declared
# as a C class: the worker's counters (ops.counters.SlotWriter, whose layer the proxy's
# may not name) derive from it, so the check's counts are C calls; any other counter
# (a test's) is called by name. (It derives from the idle gauge a client connection
# moves, http.events.IdleGauge, for the same counters to serve both.)
from fastgate.http.events cimport IdleGauge


cdef class JwtCounts(IdleGauge):
    cpdef verified(self, bint hit)
    cpdef jwt(self, str reason)
    cpdef cache(self, bint hit)
