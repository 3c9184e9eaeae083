# The monotonic clock as Python's time.monotonic() reads it (CLOCK_MONOTONIC) — the event
# loop's too (asyncio's is time.monotonic(), uvloop's libuv's CLOCK_MONOTONIC in
# milliseconds) — without a Python call: the compiled request path reads it several
# times per request.
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC


cdef inline double monotonic() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return t.tv_sec + t.tv_nsec * 1e-9
