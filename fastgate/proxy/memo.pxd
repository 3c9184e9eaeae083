# A compiled module's table of what it reads once of a configuration object (a
# location, a server), looked up by the object's identity in C (Python code, such as
# proxy.exchange with its header_plans, which proxy_pass's callback path reads too, uses
# lookup and store). Each entry is a tuple whose first item is the object itself, so
# that an address a later object reuses is never taken for it.


cdef class IdentityMemo:
    cdef list _entries  # every entry, in the order put (they keep their objects alive)
    cdef Py_ssize_t* _slots  # open addressing: 1 + an entry's index; 0 for none
    cdef size_t _mask
    cdef tuple get(self, obj)
    cdef tuple put(self, obj, tuple entry)
    cdef int _place(self, void* obj, Py_ssize_t index) except -1
