# cython: language_level=3, boundscheck=False, wraparound=False
# cython: embedsignature=True
"""The writing side of a worker's counter slot, in C: several counters move on every
request, and a Python ``view[i] += 1`` on the shared memoryview costs about a thousand
machine instructions (a float boxed and unboxed each way); here it is one add.

``fastgate.ops.stats.Stats`` derives from this class: the layout of the slot and
everything read or written rarely stay there, in Python.
"""


cdef class SlotWriter:
    # (its fields: counters.pxd)

    cdef _bind(self, view, dict at, tuple bounds, dict jwt):
        if len(bounds) > 32:
            raise ValueError("at most 32 latency buckets")
        self._view = view
        self._v = &self._view[0]
        self._size = self._view.shape[0]
        self._requests = at["requests"]
        self._latency = at["latency"]
        self._latency_sum = at["latency_sum"]
        self._latency_count = at["latency_count"]
        self._jwt_ok = at["jwt_ok"]
        self._cache_hit = at["cache_hit"]
        self._cache_miss = at["cache_miss"]
        self._idle = at["conn_idle"]
        self._jwt_other = at["jwt_other"]
        self._jwt = dict(jwt)
        self._nbounds = len(bounds)
        for i, b in enumerate(bounds):
            self._bounds[i] = b
        # every index must fall inside the slot, checked once here and not per add
        for name, i in (*at.items(), *jwt.items()):
            if not 0 <= i < self._size:
                raise ValueError(f"counter {name} at {i} is outside the slot")
        if self._latency + self._nbounds >= self._size:
            raise ValueError("latency buckets run past the slot")

    def bind(self, view, dict at, tuple bounds, dict jwt):
        """Write into ``view`` (a writable buffer of doubles); ``at`` gives the index of
        each counter the hot methods touch, ``bounds`` the latency buckets' upper
        bounds in seconds (ascending), ``jwt`` the counter of each refusal's reason."""
        self._bind(view, at, bounds, jwt)

    cpdef add(self, Py_ssize_t index, double delta=1.0):
        if not 0 <= index < self._size:
            raise IndexError(f"counter index {index} is outside the slot")
        self._v[index] += delta

    cpdef request(self, int status, double seconds):
        """A response written: its status class and its latency."""
        cdef int cls = status // 100
        cdef int b = 0
        if 1 <= cls <= 5:
            self._v[self._requests + cls - 1] += 1
        # the first bucket whose bound is >= seconds (bisect_left), else +Inf
        while b < self._nbounds and self._bounds[b] < seconds:
            b += 1
        self._v[self._latency + b] += 1
        self._v[self._latency_sum] += seconds
        self._v[self._latency_count] += 1

    cpdef verified(self, bint hit):
        """A token passed, from the cache or not."""
        self._v[self._jwt_ok] += 1
        self._v[self._cache_hit if hit else self._cache_miss] += 1

    cpdef jwt(self, str reason):
        """A token refused (or none presented), by the reason the log gives."""
        i = self._jwt.get(reason)
        self._v[self._jwt_other if i is None else <Py_ssize_t>i] += 1

    cpdef cache(self, bint hit):
        self._v[self._cache_hit if hit else self._cache_miss] += 1

    cpdef idle(self, int delta):
        self._v[self._idle] += delta
