# What is called on every request across module lines, declared as C classes: an
# engine's calls into the connection it parses for (ServerEvents: http.server's
# ClientConnection), the connection's into its handler (RequestHandlerBase: ops.dispatch's
# AddressHandler), an upstream engine's into a callback exchange (ClientEvents:
# proxy.fast's FastExchange), a connection's into the idle gauge (IdleGauge: the worker's
# counters, ops.counters.SlotWriter). The implementations derive from them, so these calls are
# C calls; any other implementation (h11's, a test's recorder, a subrequest's capture)
# is called by name, as the http.engine and http.handler protocols describe.
from fastgate._wire cimport RequestHead, ResponseHead


cdef class ServerEvents:
    cpdef on_request(self, RequestHead head)
    cpdef on_end(self)


cdef class RequestHandlerBase:
    cpdef on_request(self, conn, RequestHead head)


cdef class ClientEvents:
    cpdef on_whole(self, ResponseHead head, bytes body)
    cpdef flush(self)


cdef class IdleGauge:
    cpdef idle(self, int delta)
