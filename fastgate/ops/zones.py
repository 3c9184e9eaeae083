"""The shared tables of ``limit_req_zone`` and ``limit_conn_zone``: anonymous shared
memory created before the workers fork, so every worker of an instance counts in the
same table; a reload keeps a zone whose name, kind and size did not change."""

from __future__ import annotations

import mmap

from fastgate._core import LimitTable
from fastgate.config.model import Config


class Zones:
    def __init__(self) -> None:
        self._tables: dict[tuple[str, str, int], tuple[mmap.mmap, LimitTable]] = {}

    def for_config(self, config: Config) -> dict[str, LimitTable]:
        """The tables ``config`` names; existing ones kept, new ones zeroed."""
        wanted = {(z.name, z.kind, z.size) for z in config.zones.values()}
        for key in [k for k in self._tables if k not in wanted]:
            del self._tables[key]  # the memory goes when the last worker using it exits
        out: dict[str, LimitTable] = {}
        for z in config.zones.values():
            key = (z.name, z.kind, z.size)
            if key not in self._tables:
                region = mmap.mmap(-1, z.size)  # anonymous and MAP_SHARED: shared on fork
                self._tables[key] = (region, LimitTable(region))
            out[z.name] = self._tables[key][1]
        return out
