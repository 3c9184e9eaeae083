# cython: language_level=3, boundscheck=False, wraparound=False
# cython: embedsignature=True
"""What the compiled request path reads once of a configuration object (a location, a
server), looked up by the object's identity in C (memo.pxd says where it is used). A
dict keyed by id() cost a new int per lookup and, where the dict found the entry, a
comparison of that int with the stored key through the number protocol: ~300
instructions, four times per request. Configuration objects live as long as the
worker, and so do their entries: nothing is ever removed."""

from cpython.mem cimport PyMem_Calloc, PyMem_Free
from cpython.list cimport PyList_GET_ITEM


cdef inline size_t _spread(void* obj, size_t mask):
    # (Fibonacci hashing of the address: objects are 16-byte aligned, and the product's
    # high bits mix all of the address's)
    return ((<size_t>obj >> 4) * <size_t>11400714819323198485ULL >> 32) & mask


cdef class IdentityMemo:
    # (its fields and C methods: memo.pxd)

    def __cinit__(self):
        self._entries = []
        self._mask = 15
        self._slots = <Py_ssize_t*>PyMem_Calloc(16, sizeof(Py_ssize_t))
        if self._slots == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self._slots)

    def __len__(self):
        return len(self._entries)

    def lookup(self, obj):
        """``get`` for Python."""
        return self.get(obj)

    def store(self, obj, tuple entry):
        """``put`` for Python."""
        return self.put(obj, entry)

    cdef tuple get(self, obj):
        """``obj``'s entry, or None."""
        cdef size_t i = _spread(<void*>obj, self._mask)
        cdef Py_ssize_t k
        cdef tuple entry
        while True:
            k = self._slots[i]
            if k == 0:
                return None
            entry = <tuple><object>PyList_GET_ITEM(self._entries, k - 1)
            if entry[0] is obj:
                return entry
            i = (i + 1) & self._mask

    cdef tuple put(self, obj, tuple entry):
        """Keep ``entry`` (whose first item is ``obj``) for ``obj``, in place of one it
        had; ``entry`` is returned."""
        if len(entry) == 0 or entry[0] is not obj:
            raise ValueError("a memo's entry starts with its object")
        cdef size_t i = _spread(<void*>obj, self._mask)
        cdef Py_ssize_t k
        while self._slots[i] != 0:
            k = self._slots[i] - 1
            if (<tuple><object>PyList_GET_ITEM(self._entries, k))[0] is obj:
                self._entries[k] = entry
                return entry
            i = (i + 1) & self._mask
        cdef Py_ssize_t n = len(self._entries)
        cdef size_t size = self._mask + 1
        cdef Py_ssize_t* slots
        cdef tuple kept
        if <size_t>(n + 1) * 2 > size:  # (at most half full: probes stay short)
            slots = <Py_ssize_t*>PyMem_Calloc(size * 2, sizeof(Py_ssize_t))
            if slots == NULL:
                raise MemoryError()
            PyMem_Free(self._slots)
            self._slots = slots
            self._mask = size * 2 - 1
            for k in range(n):
                kept = <tuple><object>PyList_GET_ITEM(self._entries, k)
                self._place(<void*>kept[0], k)
        self._entries.append(entry)
        self._place(<void*>obj, n)
        return entry

    cdef int _place(self, void* obj, Py_ssize_t index) except -1:
        cdef size_t i = _spread(obj, self._mask)
        while self._slots[i] != 0:
            i = (i + 1) & self._mask
        self._slots[i] = index + 1
        return 0
