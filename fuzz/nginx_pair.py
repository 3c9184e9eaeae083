"""What the differential tools of this directory share: random configurations, each
loaded by nginx 1.22 and by fastgate (tests/e2e/test_nginx_parity_e2e.py's ``Side``:
each in front of a backend that records what it receives), random requests sent to
both, and the requests on which they differ printed, grouped by configuration. A tool
says how to make a configuration and a request, what of an answer and of what reached
the backend it compares, and which differences are known (README)."""

from __future__ import annotations

import argparse
import os
import random
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "e2e"), str(ROOT / "tests"), str(ROOT)]

import test_nginx_parity_e2e as parity  # noqa: E402

Side = parity.Side


def send(port: int, raw: bytes) -> bytes:
    """What a connection that sent ``raw`` got back, to its close (b"": nothing)."""
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(raw)
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        pass
    return data


def parts(data: bytes) -> tuple[str, list[bytes], bytes]:
    """An answer's status ("?" for none), header lines and body."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    words = lines[0].split(b" ")
    return (words[1].decode() if len(words) > 1 else "?"), lines[1:], body


@dataclass
class Tool:
    """A differential tool: ``config(rng)`` an http block's contents (PORT, BACKEND and
    HOME as the parity harness replaces them), ``request(rng)`` raw bytes,
    ``answer(side, data)`` what is compared of the client's answer, ``reached(side,
    new)`` what is compared of the requests the backend received for it, ``known(
    nginx's, fastgate's)`` a difference the README keeps, ``prepare(home)`` the files a
    configuration reads."""

    doc: str
    config: Callable[[random.Random], str]
    request: Callable[[random.Random], bytes]
    answer: Callable[[Any, bytes], object]
    reached: Callable[[Any, list[Any]], object]
    known: Callable[[Any, Any], bool] = lambda theirs, ours: False
    prepare: Callable[[Path], None] = lambda home: None
    defaults: dict[str, int] = field(default_factory=lambda: {"configs": 20, "requests": 40})

    def main(self) -> int:
        ap = argparse.ArgumentParser(description=self.doc.split("\n\n")[0])
        ap.add_argument("--engine", default="httptools", choices=["httptools", "h11"])
        ap.add_argument("--seed", type=int, default=1)
        ap.add_argument("--configs", type=int, default=self.defaults["configs"])
        ap.add_argument("--requests", type=int, default=self.defaults["requests"])
        a = ap.parse_args()
        # (ports from a range of the seed's: runs whose seeds end in different digits may
        # go at once, and beside no test run)
        os.environ["PYTEST_XDIST_WORKER"] = f"gw{a.seed % 10}"
        rng = random.Random(a.seed)
        differing = loaded = 0
        for n in range(a.configs):
            block = self.config(rng)
            home = Path(tempfile.mkdtemp(prefix="nginx-pair-"))
            self.prepare(home)
            sides = []
            for kind in ("nginx", "fastgate"):
                try:
                    sides.append(Side(kind, home, block, a.engine))
                except RuntimeError:  # (a configuration it refuses)
                    pass
            if len(sides) < 2:
                for side in sides:
                    side.stop()
                if sides:  # one of them loads it: that is a difference
                    differing += 1
                    print(f"config {n}: only {sides[0].kind} loads it\n{block}\n")
                continue
            loaded += 1
            try:
                found = self._compare(rng, sides, a.requests)
            finally:
                for side in sides:
                    side.stop()
            if found:
                differing += 1
                print(f"config {n}:\n{block}")
                for line, theirs, ours in found[:6]:
                    print(f"  {line!r}\n    nginx    {theirs}\n    fastgate {ours}")
                print()
        print(f"{differing} of {a.configs} configurations answered differently "
              f"({loaded} loaded by both)")
        return 0

    def _compare(self, rng: random.Random, sides: list[Any], count: int
                 ) -> list[tuple[bytes, object, object]]:
        found: list[tuple[bytes, object, object]] = []
        for _ in range(count):
            raw = self.request(rng)
            before = [len(side.backend.requests()) for side in sides]
            answers = [self.answer(side, send(side.port, raw)) for side in sides]
            time.sleep(0.02)  # (what the backend received, recorded)
            seen = [(answer, self.reached(side, side.backend.requests()[b:]))
                    for side, b, answer in zip(sides, before, answers, strict=True)]
            if seen[0] != seen[1] and not self.known(*seen):
                found.append((raw.split(b"\r\n\r\n")[0], seen[0], seen[1]))
        return found
