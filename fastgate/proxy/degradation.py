"""nginx's degradation module (``degradation sbrk=SIZE``, ``degrade 204|444``), in the
pre-access phase: while the worker's heap — what ``sbrk`` has grown it by, nginx's own
measure — is at least SIZE, a location with ``degrade`` answers that status (444: the
connection closes without an answer) instead of serving. The heap is measured at most
once a second (the program break against where the heap began, both read from the
kernel: sbrk(0) through libc, start_brk from /proc/self/stat), and a degraded second
is logged once, as nginx's ``degradation sbrk:NM``."""

from __future__ import annotations

import ctypes
import time
from typing import TYPE_CHECKING

from fastgate.proxy.steps import DONE, NEXT

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.steps import Fail, Outcome, Phase


def _heap_start() -> int:
    """Where this process's heap began (the kernel's start_brk, field 47 of stat)."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[47 - 3])  # (fields after the name start at the third)


class Degradation:
    def __init__(self, worker: Runtime, fail: Fail) -> None:
        self.w = worker
        self.fail = fail
        self._sbrk = ctypes.CDLL(None).sbrk
        self._sbrk.argtypes, self._sbrk.restype = [ctypes.c_long], ctypes.c_void_p
        self._start = _heap_start()
        self._size = 0
        self._second = 0

    def handler(self, loc: Location) -> Phase | None:
        s = loc.settings
        return self.preaccess if s.degrade and s.degradation_sbrk else None

    def heap(self) -> tuple[int, bool]:
        """The heap's size, and whether it was measured now (once a second)."""
        now = int(time.time())
        if now == self._second:
            return self._size, False
        self._second = now
        self._size = max(0, (self._sbrk(0) or 0) - self._start)
        return self._size, True

    def preaccess(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        s = loc.settings
        size, measured = self.heap()
        if size < s.degradation_sbrk:
            return NEXT
        if measured:
            self.w.log.notice(f"degradation sbrk:{size >> 20}M", conn, req)
        if s.degrade == 444:  # nginx: the connection closes without an answer
            req.status = 444
            conn.abort()
            return DONE
        return self.fail(conn, req, loc, s.degrade)


__all__ = ["Degradation"]
