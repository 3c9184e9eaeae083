# What other compiled modules cimport from fastgate/proxy/_headers.pyx.

from fastgate._wire cimport ResponseHead
from fastgate.proxy.request cimport Request


cpdef bytes response_head(engine, respond, Request req, loc, ResponseHead rhead,
                          bytes date, tuple drop, tuple rules, bint head_only)
