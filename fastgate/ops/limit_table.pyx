# cython: language_level=3
# cython: embedsignature=True
"""Rate and connection limits (``limit_req`` / ``limit_conn``): a fixed-size table in
shared memory, one per zone, used by every worker process of an instance. The master
creates each buffer before forking (``fastgate.ops.zones``); the proxy's phases reach a
table only through the ``LimitStore`` protocol of ``fastgate.proxy.runtime``.

A zone with ``sync`` is shared by a fleet as well (``fastgate.ops.cluster_limits``): the
table counts the requests it admits that the fleet has not been told of (``drain``),
takes in those the other instances admitted (``absorb``), and counts the requests in
progress elsewhere beside its own (``set_remote``). Keys travel as their hash, which
every instance computes alike. One worker of an instance does that exchange at a time
(``lead``, a lease in the table's header).
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
    int64_t lease_pid   # the worker that exchanges this zone with the fleet
    int64_t lease_until # milliseconds: until then no other worker takes over
    int32_t dirty_count # entries listed in the dirty ring since the last drain
    int32_t overflow    # more changed than the ring holds: the next drain scans all


cdef struct LimitEntry:
    uint64_t hash       # FNV-1a of the key; 0 = free
    int64_t excess      # milli-requests over the rate (nginx's accounting)
    int64_t last        # milliseconds of the last accounted request
    uint64_t stamp      # header.clock at the last use
    int32_t conns       # requests in progress (limit_conn)
    int32_t pending     # requests admitted here the fleet has not been told of
    int32_t remote      # requests in progress at the fleet's other instances
    int32_t dirty       # listed in the dirty ring (changed since the last drain)


cdef enum:
    PROBE = 8  # slots examined for a key: its own and the next seven
    CHUNK = 4096  # entries a scan examines per hold of the lock
    DIRTY = 1024  # entries the dirty ring lists between two drains


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
    cdef int32_t *_dirty       # the dirty ring: indexes of changed entries
    cdef LimitEntry *_entries
    cdef readonly Py_ssize_t capacity

    def __init__(self, buffer):
        cdef Py_ssize_t size = len(buffer)
        cdef Py_ssize_t before = sizeof(LimitHeader) + DIRTY * sizeof(int32_t)
        if size < <Py_ssize_t>(before + PROBE * sizeof(LimitEntry)):
            raise ValueError("zone too small")
        self._buffer = buffer
        cdef unsigned char[::1] view = buffer
        self._head = <LimitHeader *>&view[0]
        self._dirty = <int32_t *>(&view[0] + sizeof(LimitHeader))
        self._entries = <LimitEntry *>(&view[0] + before)
        self.capacity = (size - before) // sizeof(LimitEntry)

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
        e.pending = 0
        e.remote = 0
        e.stamp = 0
        return e

    cdef inline int64_t _one_more(self, LimitEntry *e, int64_t now_ms,
                                  int64_t rate) noexcept nogil:
        """The excess after one more request at ``now_ms`` (``ngx_http_limit_req_lookup``'s
        accounting; the first request of a key leaves none)."""
        cdef int64_t ms, excess
        if e.last == 0:
            return 0
        ms = now_ms - e.last
        if ms < -60000:
            ms = 1
        excess = e.excess - rate * (ms if ms >= 0 else -ms) // 1000 + 1000
        return excess if excess > 0 else 0

    cdef inline void _mark(self, LimitEntry *e) noexcept nogil:
        """``e`` changed in a way the fleet is to hear of (under the lock)."""
        if e.dirty:
            return
        e.dirty = 1
        if self._head.dirty_count < DIRTY:
            self._dirty[self._head.dirty_count] = <int32_t>(e - self._entries)
            self._head.dirty_count += 1
        else:
            self._head.overflow = 1

    def request(self, key, int64_t now_ms, int64_t rate, int64_t burst, bint commit):
        """nginx's leaky bucket (``ngx_http_limit_req_lookup``): ``rate`` in
        milli-requests per second, ``burst`` in milli-requests. Returns the excess after
        this request (>= 0); over the burst (not accounted), -1 - the excess it would
        have had (so at most -2: nginx logs it); -1 when the table has no room left."""
        cdef uint64_t h = _key_hash(key)
        cdef LimitEntry *e
        cdef int64_t excess
        fg_lock(&self._head.lock)
        try:
            e = self._find(h, True)
            if e == NULL:
                return -1
            self._touch(e)
            excess = self._one_more(e, now_ms, rate)
            if excess > burst:
                return -1 - excess
            if commit:
                e.excess = excess
                if e.last == 0 or now_ms != e.last:
                    e.last = now_ms
                if e.pending < 2147483647:
                    e.pending += 1
                    self._mark(e)
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
            if e == NULL or e.conns + e.remote >= limit:
                return False
            self._touch(e)
            e.conns += 1
            self._mark(e)
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
                self._mark(e)
        finally:
            fg_unlock(&self._head.lock)

    # --- the fleet (a zone with sync) ------------------------------------------------------

    def lead(self, int64_t pid, int64_t now_ms, int64_t ttl_ms):
        """Whether worker ``pid`` exchanges this zone with the fleet now: it held the
        lease, or the holder let it lapse (a worker that died). Renews it for ``ttl_ms``."""
        fg_lock(&self._head.lock)
        try:
            if self._head.lease_pid != pid and self._head.lease_until > now_ms:
                return False
            self._head.lease_pid = pid
            self._head.lease_until = now_ms + ttl_ms
            return True
        finally:
            fg_unlock(&self._head.lock)

    def drain(self):
        """limit_req: [(key hash, requests admitted since the last drain)], the counts
        reset."""
        return self._changes(True, False)[1]

    def changes(self, bint whole=False):
        """limit_conn: (whole, [(key hash, requests in progress)]): when whole (asked,
        or the ring overflowed) every key that has any, else the keys whose count
        changed since the last call (0 included)."""
        return self._changes(False, whole)

    cdef int _take(self, LimitEntry *e, bint pending, bint whole, list out) except -1:
        """One entry's change into ``out`` (under the lock): the requests admitted since
        the last drain (reset), or the requests in progress (any count for an entry the
        ring lists; in a whole scan, only keys that have some)."""
        e.dirty = 0
        if e.hash == 0:
            return 0
        if pending:
            if e.pending > 0:
                out.append((e.hash, e.pending))
                e.pending = 0
        elif not whole or e.conns > 0:
            out.append((e.hash, e.conns))
        return 0

    cdef tuple _changes(self, bint pending, bint whole):
        """The entries the dirty ring lists, under one hold of the lock (the ring is
        short); after an overflow, every entry, a chunk per hold of the lock, so that a
        large zone never holds up a request for long."""
        cdef Py_ssize_t i, n, start, end
        out = []
        fg_lock(&self._head.lock)
        try:
            whole = whole or self._head.overflow
            n = self._head.dirty_count
            self._head.overflow = 0
            self._head.dirty_count = 0
            if not whole:
                for i in range(n):
                    self._take(&self._entries[self._dirty[i]], pending, False, out)
        finally:
            fg_unlock(&self._head.lock)
        if not whole:
            return False, out
        for start in range(0, self.capacity, CHUNK):
            end = min(start + CHUNK, self.capacity)
            fg_lock(&self._head.lock)
            try:
                for i in range(start, end):
                    self._take(&self._entries[i], pending, True, out)
            finally:
                fg_unlock(&self._head.lock)
        return True, out

    def absorb(self, uint64_t h, int64_t now_ms, int64_t rate, int64_t count):
        """``count`` requests another instance admitted for the key hashed ``h``: into
        the excess as if admitted here (no burst check: they were admitted already)."""
        cdef LimitEntry *e
        if h == 0 or count <= 0:
            return
        if count > 1000000:
            count = 1000000
        fg_lock(&self._head.lock)
        try:
            e = self._find(h, True)
            if e == NULL:
                return
            self._touch(e)
            # as ``request`` accounts ``count`` requests in a row at ``now_ms``
            e.excess = self._one_more(e, now_ms, rate) + (count - 1) * 1000
            e.last = now_ms
        finally:
            fg_unlock(&self._head.lock)

    def set_remote(self, uint64_t h, int32_t count):
        """The requests in progress for the key hashed ``h`` at the other instances."""
        cdef LimitEntry *e
        if h == 0:
            return
        fg_lock(&self._head.lock)
        try:
            e = self._find(h, count > 0)
            if e != NULL:
                e.remote = count if count > 0 else 0
        finally:
            fg_unlock(&self._head.lock)
