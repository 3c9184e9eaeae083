"""Every module imports on its own, first, in a fresh interpreter: no import cycle that
only works in one order."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import fastgate


def _modules() -> list[str]:
    # (__main__ runs the command line: importing it is running it)
    return sorted(m.name for m in pkgutil.walk_packages(fastgate.__path__, "fastgate.")
                  if not m.name.endswith("__main__"))


def _import_alone(name: str) -> tuple[str, list[str]] | None:
    r = subprocess.run([sys.executable, "-c", f"import {name}"], timeout=60,
                       capture_output=True, text=True)
    return (name, r.stderr.strip().splitlines()[-1:]) if r.returncode else None


def test_every_module_imports_first() -> None:
    modules = _modules()
    assert "fastgate.proxy.headers" in modules and "fastgate._core" in modules
    # one interpreter per module, two at a time (this machine's cores): each waits on
    # its own process, not on the GIL
    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [f for f in pool.map(_import_alone, modules) if f is not None]
    assert not failed, failed
