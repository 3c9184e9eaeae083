# A compiled module's table of what it reads once of a configuration object (a
# location, a server), looked up by the object's identity. IdentityMemo does it in C;
# memo_get and memo_put do it on a dict keyed by the object's address (id() in Python)
# for a table Python code shares — proxy.exchange's header_plans, which proxy_pass's
# callback path reads too. Either way each entry is a tuple whose first item is the
# object itself, so that an address a later object reuses is never taken for it.
from cpython.long cimport PyLong_FromVoidPtr


cdef class IdentityMemo:
    cdef list _entries  # every entry, in the order put (they keep their objects alive)
    cdef Py_ssize_t* _slots  # open addressing: 1 + an entry's index; 0 for none
    cdef size_t _mask
    cdef tuple get(self, obj)
    cdef tuple put(self, obj, tuple entry)
    cdef int _place(self, void* obj, Py_ssize_t index) except -1


cdef inline tuple memo_get(dict memo, obj):
    """``obj``'s entry, or None."""
    cdef tuple entry = memo.get(PyLong_FromVoidPtr(<void*>obj))
    if entry is not None and entry[0] is obj:
        return entry
    return None


cdef inline tuple memo_put(dict memo, obj, tuple entry):
    memo[PyLong_FromVoidPtr(<void*>obj)] = entry
    return entry
