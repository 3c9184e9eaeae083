"""The shared tables of ``limit_req_zone``, ``limit_conn_zone`` and ``ssl_ocsp_cache``:
anonymous shared memory created before the workers fork, so every worker of an instance
counts in (and keeps its answers in) the same table; a reload keeps a zone whose name,
kind and size did not change."""

from __future__ import annotations

import mmap
import multiprocessing
import os

from fastgate.config.model import Config
from fastgate.ops.limit_table import LimitTable
from fastgate.ops.ocsp_cache import SharedAnswers
from fastgate.ops.stats import MAX_SLOTS


class ZoneTables(dict[str, LimitTable]):
    """A configuration's tables by zone name, and beside each the requests it refused:
    one double per worker slot (written by that worker alone, summed by the status
    page), in shared memory as the tables are."""

    def __init__(self) -> None:
        super().__init__()
        self.rejected: dict[str, memoryview[float]] = {}
        self.answers: dict[str, SharedAnswers] = {}  # ssl_ocsp_cache's, by name
        self.instance = ""  # this instance among a fleet's (Zones.instance)


class Zones:
    def __init__(self) -> None:
        # made before the workers fork, so all of them name their instance alike
        self.instance = os.urandom(8).hex()
        self._tables: dict[tuple[str, str, int],
                           tuple[mmap.mmap, LimitTable, memoryview[float]]] = {}
        self._answers: dict[tuple[str, int], SharedAnswers] = {}

    def for_config(self, config: Config) -> ZoneTables:
        """The tables ``config`` names; existing ones kept, new ones zeroed."""
        wanted = {(z.name, z.kind, z.size) for z in config.zones.values()}
        for key in [k for k in self._tables if k not in wanted]:
            del self._tables[key]  # the memory goes when the last worker using it exits
        out = ZoneTables()
        out.instance = self.instance
        for z in config.zones.values():
            key = (z.name, z.kind, z.size)
            if key not in self._tables:
                region = mmap.mmap(-1, z.size)  # anonymous and MAP_SHARED: shared on fork
                counts = memoryview(mmap.mmap(-1, (MAX_SLOTS + 1) * 8)).cast("d")
                self._tables[key] = (region, LimitTable(region), counts)
            _, out[z.name], out.rejected[z.name] = self._tables[key]
        wanted_caches = set(config.ocsp_caches.items())
        for cache in [c for c in self._answers if c not in wanted_caches]:
            del self._answers[cache]
        for name, size in config.ocsp_caches.items():
            if (name, size) not in self._answers:
                # (the lock, a semaphore, is shared on fork as the memory is)
                self._answers[name, size] = SharedAnswers(mmap.mmap(-1, size),
                                                          multiprocessing.Lock())
            out.answers[name] = self._answers[name, size]
        return out
