"""Fixtures that start real processes on free loopback ports and stop them afterwards:
test backends (backend.py) and the fastgate command itself."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
    """One request on a connection of its own: (status, headers by lower-case name,
    body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


LISTEN_PORT = re.compile(r"\blisten\s+127\.0\.0\.1:(\d+)")


# Ports handed out by free_port: each pytest worker its own range, below the system's
# ephemeral ports (32768 and up), taken in turn. A port is picked, closed, and bound
# again later by the process under test; from the system's pool, another worker could be
# given the same one in between, and a test would then speak to another test's gateway.
_RANGE = 1500
_FIRST = 15000
_cursor = [0]


def free_port() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker[2:].isdigit() else 8  # (no xdist: a range apart)
    base = _FIRST + (index % 10) * _RANGE
    for _ in range(_RANGE):
        port = base + _cursor[0] % _RANGE
        _cursor[0] += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # (in use, or not yet free of a closed connection)
                continue
            return port
    raise RuntimeError(f"no free port in {base}-{base + _RANGE - 1}")


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def terminate(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, and SIGKILL after five seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Backend:
    def __init__(self, tmp: Path, name: str) -> None:
        self.port = free_port()
        self.name = name
        self.log = tmp / f"backend-{name}-{self.port}.jsonl"
        self.log.touch()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "backend.py"), "--port", str(self.port),
             "--log", str(self.log), "--name", name],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError("backend did not start")

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()
                if line.strip()]

    def stop(self) -> None:
        terminate(self.proc)


class Gateway:
    def __init__(self, tmp: Path, config: str, port: int, extra_args: list[str] | None = None,
                 wait: bool = True) -> None:
        self.port = port
        self.dir = tmp
        self.conf = tmp / f"fastgate-{port}.conf"
        self.conf.write_text(config)
        self.stderr_path = tmp / f"fastgate-{port}.stderr"
        self._err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastgate", "-c", str(self.conf), *(extra_args or [])],
            stdout=subprocess.DEVNULL, stderr=self._err)
        if wait:
            # every loopback address the configuration names, not only the first: a
            # test may speak to any of them at once
            for p in dict.fromkeys([port, *map(int, LISTEN_PORT.findall(config))]):
                wait_port(p, self.proc)

    @property
    def stderr(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.stderr_path.read_text()

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        return self.proc.returncode


@pytest.fixture
def free() -> Callable[[], int]:
    return free_port


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[Callable[[str], Backend]]:
    started: list[Backend] = []

    def make(name: str = "backend") -> Backend:
        b = Backend(tmp_path, name)
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture(params=["h11", "httptools"])
def engine(request: pytest.FixtureRequest) -> str:
    """Every end-to-end test runs against both protocol engines."""
    return request.param


@pytest.fixture
def gateway(tmp_path: Path, engine: str) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def make(config: str, port: int, **kw: Any) -> Gateway:
        kw.setdefault("extra_args", ["--http-engine", engine])
        g = Gateway(tmp_path, config, port, **kw)
        started.append(g)
        return g

    yield make
    for g in started:
        code = g.stop()
        assert "Traceback" not in g.stderr, g.stderr
        assert code in (0, -signal.SIGTERM, -signal.SIGKILL), (code, g.stderr)
