# The phase loop, declared here so that the dispatch (ops.dispatch) enters it with a C
# call rather than through the Python attribute and call protocol.
from fastgate.proxy.memo cimport IdentityMemo
from fastgate.proxy.request cimport Request


# a phase written in C (auth_jwt's usual check, proxy_pass's callback exchange): the walk
# calls its run through the vtable; any other phase is called as a function
cdef class CompiledPhase:
    cpdef object run(self, conn, Request req, loc)


cdef class Walker:
    cdef IdentityMemo _plans  # a location → (it, its handlers, its limit_except)
    cdef dict _memos  # the Locator's answers: tree → URI → (location, captures)
    cdef object _find
    cdef object _before
    cdef object _plan_of
    cdef object _find_config
    cdef object _resume

    cpdef object enter(self, conn, Request req, server)
    cpdef object find(self, conn, Request req, server)
    cpdef object locate(self, Request req, server)
    cpdef object walk(self, conn, Request req, loc, Py_ssize_t at)
    cpdef object walk_nested(self, conn, Request req, loc)
    cdef tuple _entry(self, loc)
    cdef object _walk(self, conn, Request req, loc, tuple plan, Py_ssize_t at)
