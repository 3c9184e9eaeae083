# A compiled module's table of what it reads once of a configuration object (a
# location, a server): keyed by the object's address (id() in Python), each entry a
# tuple whose first item is the object itself, so that an address a later object
# reuses is never taken for it. proxy.exchange's header_plans, which proxy_pass's
# callback path shares, is such a table too.
from cpython.long cimport PyLong_FromVoidPtr


cdef inline tuple memo_get(dict memo, obj):
    """``obj``'s entry, or None."""
    cdef tuple entry = memo.get(PyLong_FromVoidPtr(<void*>obj))
    if entry is not None and entry[0] is obj:
        return entry
    return None


cdef inline tuple memo_put(dict memo, obj, tuple entry):
    memo[PyLong_FromVoidPtr(<void*>obj)] = entry
    return entry
