"""The Worker's attributes are read on every request (``self.w.<name>`` on the fast
path). CPython 3.11 keeps an instance's attributes as inline values of a key table its
class shares while there are fewer than 30 of them; past that the instance gets a dict
of its own and every read is a dict lookup. A 30th attribute cost 1.1k instructions per
proxied request under callgrind (bench/RESULTS.md, 2026-12-06): new state belongs
somewhere else (the listening socket's handler, the phases, a module of its own)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from scenario import Scenario

HTTP = """upstream be { server 127.0.0.1:9; }
server { listen 127.0.0.1:8080; location / { proxy_pass http://be; } }"""


def test_a_worker_keeps_fewer_than_30_attributes(tmp_path: Path) -> None:
    async def count() -> list[str]:
        sc = Scenario(tmp_path, "httptools", HTTP)
        try:
            return sorted(vars(sc.worker))
        finally:
            sc.close()

    names = asyncio.run(count())
    assert len(names) < 30, names
