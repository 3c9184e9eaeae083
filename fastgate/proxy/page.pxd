from fastgate.http.exchange cimport Exchange
from fastgate.proxy.request cimport Request

cpdef bint may_chunk(Request req, settings)
cpdef bint write_whole(Exchange exchange, Request req, int status, bytes phrase,
                       list headers, object length, bytes body, bint head_only,
                       object trailers, bint chunked=*) except -1
