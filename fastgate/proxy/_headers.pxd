# What other compiled modules cimport from fastgate/proxy/_headers.pyx.

from fastgate._wire cimport ResponseHead
from fastgate.http.exchange cimport Exchange
from fastgate.proxy.request cimport Request


cpdef bearer_of(list headers)
cpdef tuple upstream_request_head(Request req, pp, tuple plan)
cpdef bytes response_head(Exchange exchange, respond, Request req, loc, ResponseHead rhead,
                          bytes date, tuple drop, tuple rules, bint head_only)
