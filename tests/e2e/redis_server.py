"""A real redis-server (Debian's package, installed by ``make test-deps``) on a free
loopback port, without persistence: started, killed and started again on the same port
by the fleet tests."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

from conftest import terminate

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """``tls``: (certificate, key) to serve TLS only (rediss://) with."""

    def __init__(self, tmp: Path, port: int, tls: tuple[Path, Path] | None = None) -> None:
        self.port = port
        self.tmp = tmp
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return (f"rediss://localhost:{self.port}" if self.tls
                else f"redis://127.0.0.1:{self.port}")

    def _connect(self, timeout: float) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        if self.tls is None:
            return s
        ctx = ssl.create_default_context(cafile=str(self.tls[0]))
        return ctx.wrap_socket(s, server_hostname="localhost")

    def start(self) -> None:
        log = open(self.tmp / f"redis-{self.port}.log", "ab")
        ports = ["--port", str(self.port)] if self.tls is None else [
            "--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls[0]),
            "--tls-key-file", str(self.tls[1]), "--tls-auth-clients", "no"]
        self.proc = subprocess.Popen(
            [REDIS, *ports, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp), "--protected-mode", "no",
             "--enable-debug-command", "yes"],
            stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            try:
                with self._connect(0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not answer")

    def command(self, *args: str) -> bytes:
        """One command in RESP, its raw answer (for the tests' own looks at the store)."""
        out = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
        with self._connect(10) as s:
            s.sendall(out)
            return s.recv(65536)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
