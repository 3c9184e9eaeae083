"""Every module imports on its own, first, in a fresh interpreter: no import cycle that
only works in one order."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import fastgate


def _modules() -> list[str]:
    # (__main__ runs the command line: importing it is running it)
    return sorted(m.name for m in pkgutil.walk_packages(fastgate.__path__, "fastgate.")
                  if not m.name.endswith("__main__"))


def test_every_module_imports_first() -> None:
    script = ("import importlib, subprocess, sys\n"
              "failed = []\n"
              "for name in sys.argv[1:]:\n"
              "    r = subprocess.run([sys.executable, '-c', f'import {name}'], timeout=20,\n"
              "                       capture_output=True, text=True)\n"
              "    if r.returncode:\n"
              "        failed.append((name, r.stderr.strip().splitlines()[-1:]))\n"
              "print(failed)\n"
              "sys.exit(1 if failed else 0)\n")
    modules = _modules()
    assert "fastgate.proxy.headers" in modules and "fastgate._core" in modules
    r = subprocess.run([sys.executable, "-c", script, *modules], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
