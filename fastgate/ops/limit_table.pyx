# cython: language_level=3
# cython: embedsignature=True
"""Rate and connection limits (``limit_req`` / ``limit_conn``): a fixed-size table in
shared memory, one per zone, used by every worker process of an instance. The master
creates each buffer before forking (``fastgate.ops.zones``); the proxy's phases reach a
table only through the ``LimitStore`` protocol of ``fastgate.proxy.runtime``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE


cdef extern from *:
    """
    #include <sched.h>
    static inline void fg_lock(void *p) {
        volatile int *l = (volatile int *)p;
        while (__sync_lock_test_and_set(l, 1)) { while (*l) sched_yield(); }
    }
    static inline void fg_unlock(void *p) { __sync_lock_release((volatile int *)p); }
    """
    void fg_lock(void *l) nogil
    void fg_unlock(void *l) nogil

from libc.stdint cimport int32_t, int64_t, uint64_t


cdef struct LimitHeader:
    int lock
    int32_t pad
    uint64_t clock      # bumped on every use: the LRU order
    uint64_t used       # entries in use


cdef struct LimitEntry:
    uint64_t hash       # FNV-1a of the key; 0 = free
    int64_t excess      # milli-requests over the rate (nginx's accounting)
    int64_t last        # milliseconds of the last accounted request
    uint64_t stamp      # header.clock at the last use
    int32_t conns       # requests in progress (limit_conn)
    int32_t pad


cdef enum:
    PROBE = 8  # slots examined for a key: its own and the next seven


cdef inline uint64_t _fnv1a(const unsigned char *p, Py_ssize_t n) noexcept nogil:
    cdef uint64_t h = 14695981039346656037ULL
    cdef Py_ssize_t i
    for i in range(n):
        h ^= p[i]
        h *= 1099511628211ULL
    return h if h != 0 else 1


cdef inline uint64_t _key_hash(bytes key):
    return _fnv1a(<const unsigned char *>PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key))


cdef class LimitTable:
    """A zone: ``capacity`` entries in a buffer shared by every worker (an anonymous
    ``mmap`` the master creates before forking). Entries are found by hashing the key
    and probing eight slots; when all eight are taken, the least recently used one that
    holds no connection is reused — the table never grows past its size, as nginx's
    zones evict their least recently used states. A process-shared spinlock guards each
    operation, which is a few hundred nanoseconds long."""

    cdef object _buffer
    cdef LimitHeader *_head
    cdef LimitEntry *_entries
    cdef readonly Py_ssize_t capacity

    def __init__(self, buffer):
        cdef Py_ssize_t size = len(buffer)
        if size < <Py_ssize_t>(sizeof(LimitHeader) + PROBE * sizeof(LimitEntry)):
            raise ValueError("zone too small")
        self._buffer = buffer
        cdef unsigned char[::1] view = buffer
        self._head = <LimitHeader *>&view[0]
        self._entries = <LimitEntry *>(&view[0] + sizeof(LimitHeader))
        self.capacity = (size - sizeof(LimitHeader)) // sizeof(LimitEntry)

    @property
    def used(self):
        return self._head.used

    cdef inline void _touch(self, LimitEntry *e) noexcept nogil:
        """Mark ``e`` as the most recently used entry (the LRU order)."""
        self._head.clock += 1
        e.stamp = self._head.clock

    cdef LimitEntry *_find(self, uint64_t h, bint create) noexcept nogil:
        cdef Py_ssize_t start = h % self.capacity, i, j
        cdef LimitEntry *e
        cdef LimitEntry *victim = NULL
        cdef LimitEntry *free_slot = NULL
        for j in range(PROBE):
            i = (start + j) % self.capacity
            e = &self._entries[i]
            if e.hash == h:
                return e
            if e.hash == 0:
                if free_slot == NULL:
                    free_slot = e
            elif e.conns == 0 and (victim == NULL or e.stamp < victim.stamp):
                victim = e
        if not create:
            return NULL
        if free_slot != NULL:
            self._head.used += 1
            e = free_slot
        elif victim != NULL:
            e = victim  # evicted: the least recently used of the probed slots
        else:
            return NULL  # every probed slot holds a connection in progress
        e.hash = h
        e.excess = 0
        e.last = 0
        e.conns = 0
        e.stamp = 0
        return e

    def request(self, key, int64_t now_ms, int64_t rate, int64_t burst, bint commit):
        """nginx's leaky bucket (``ngx_http_limit_req_lookup``): ``rate`` in
        milli-requests per second, ``burst`` in milli-requests. Returns the excess after
        this request (>= 0), or -1 when it is over the burst (not accounted)."""
        cdef uint64_t h = _key_hash(key)
        cdef LimitEntry *e
        cdef int64_t ms, excess
        fg_lock(&self._head.lock)
        try:
            e = self._find(h, True)
            if e == NULL:
                return -1
            self._touch(e)
            if e.last == 0:
                excess = 0
                ms = 0
            else:
                ms = now_ms - e.last
                if ms < -60000:
                    ms = 1
                excess = e.excess - rate * (ms if ms >= 0 else -ms) // 1000 + 1000
                if excess < 0:
                    excess = 0
            if excess > burst:
                return -1
            if commit:
                e.excess = excess
                if ms != 0 or e.last == 0:
                    e.last = now_ms
            return excess
        finally:
            fg_unlock(&self._head.lock)

    def acquire(self, key, int32_t limit):
        """limit_conn: count one more request in progress for ``key``; False (and no
        count) when ``limit`` are already in progress."""
        cdef uint64_t h = _key_hash(key)
        cdef LimitEntry *e
        fg_lock(&self._head.lock)
        try:
            e = self._find(h, True)
            if e == NULL or e.conns >= limit:
                return False
            self._touch(e)
            e.conns += 1
            return True
        finally:
            fg_unlock(&self._head.lock)

    def release(self, key):
        cdef uint64_t h = _key_hash(key)
        cdef LimitEntry *e
        fg_lock(&self._head.lock)
        try:
            e = self._find(h, False)
            if e != NULL and e.conns > 0:
                e.conns -= 1
        finally:
            fg_unlock(&self._head.lock)
