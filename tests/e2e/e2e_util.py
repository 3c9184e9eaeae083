"""Helpers for end-to-end tests."""

from __future__ import annotations

import http.client
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import jwt as pyjwt
import pytest

# (at import, with the other e2e modules: later the name may be another directory's)
from conftest import free_port, wait_port

SEEDS = Path(__file__).parent.parent / "seeds"


def seed(name: str, port: int, replace: dict[str, str]) -> str:
    """A seed configuration with only its address, ports and key paths changed."""
    text = (SEEDS / name).read_text().replace("listen 80;", f"listen 127.0.0.1:{port};")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def bearer(key: str, exp: int = 60) -> dict[str, str]:
    """An Authorization header with an HS256 token for "alice" signed with ``key``,
    valid for ``exp`` seconds (negative: expired that long ago)."""
    token = pyjwt.encode({"sub": "alice", "exp": int(time.time()) + exp}, key,
                         algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


# how a client sees a response cut short once some of it went out: the connection is
# reset (http.client's IncompleteRead: what was read before, then the close)
CUT = (http.client.IncompleteRead, ConnectionResetError)


def get(port: int, path: str, headers: dict[str, str] | None = None,
        timeout: float = 10) -> tuple[int, bytes]:
    """A GET of ``path``: the status and the body."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class Listener:
    """A server for a test's backend on a free loopback port (or the unix socket
    ``unix``, its port then 0): each connection it accepts is counted and given to
    ``serve`` in a thread of its own; ``stop`` closes the listening socket."""

    def __init__(self, serve: Callable[[socket.socket], None], unix: Path | None = None,
                 backlog: int = 16) -> None:
        self.serve = serve
        self.connections = 0
        self.sock = socket.socket(socket.AF_UNIX if unix is not None else socket.AF_INET)
        self.sock.bind(str(unix) if unix is not None else ("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = 0 if unix is not None else self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def stop(self) -> None:
        self.sock.close()


# --- a small HTTP client over raw sockets, for what http.client hides --------------------------


def raw_exchange(port: int, data: bytes, timeout: float = 5.0, read_until_close: bool = True,
                 want: int | None = None) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):  # (a response cut short is reset)
                break
            if not chunk:
                break
            out += chunk
            if want is not None and out.count(b"HTTP/1.") >= want and _complete(out, want):
                break
        return out


def _complete(data: bytes, responses: int) -> bool:
    """Whether ``data`` holds ``responses`` complete Content-Length responses."""
    pos = 0
    for _ in range(responses):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return False
        head = data[pos:end].lower()
        length = 0
        for line in head.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        pos = end + 4 + length
        if pos > len(data):
            return False
    return True


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def wait_for_text(path: Path, text: str, timeout: float = 3.0) -> bool:
    """Whether ``text`` shows in the file within ``timeout`` (logs are written in batches)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.05)
    return False


def proc_status_kib(pid: int, field: str) -> int:
    """A memory figure of /proc/PID/status (``VmRSS``, ``VmHWM``), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field}")


def fastgate(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``fastgate ARGS`` from this checkout, to its end (bounded): what it printed."""
    return subprocess.run([sys.executable, "-m", "fastgate", *args], capture_output=True,
                          text=True, timeout=30, cwd=cwd)


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def beside_nginx(kind: str, home: Path, body: str, level: str,
                 modules: tuple[Path, ...] = ()) -> subprocess.Popen[bytes]:
    """nginx or fastgate (``kind``) running ``body`` (what follows ``events``), with its
    pid file and its error log (``home``/error.log, from ``level`` up) in ``home``: the
    same configuration under both, for the tests that compare them."""
    errors = home / "error.log"
    if kind == "nginx":
        conf = home / "nginx.conf"
        loads = "".join(f"load_module {m};\n" for m in modules)
        conf.write_text(f"{loads}daemon off; master_process off; worker_processes 1; "
                        f"user root;\npid {home}/nginx.pid; error_log {errors} {level};\n"
                        f"events {{ }}\n{body}")
        cmd = [NGINX, "-p", str(home), "-c", str(conf)]
    else:
        conf = home / "fastgate.conf"
        conf.write_text(f"pid {home}/fg.pid; error_log {errors} {level};\n{body}")
        cmd = [sys.executable, "-m", "fastgate", "-c", str(conf)]
    with open(home / "stderr", "wb") as out:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=out)


@contextmanager
def nginx_and_fastgate(tmp: Path, body: Callable[[list[int]], str], ports: int = 1,
                       level: str = "error") -> Iterator[dict[str, list[int]]]:
    """The same configuration, ``body(its ports)``, under nginx and under fastgate, each
    on ``ports`` loopback ports of its own (homes ``tmp``/nginx and ``tmp``/fastgate):
    {kind: ports}, both stopped at the end. Skips the test where nginx is missing."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    procs = []
    out: dict[str, list[int]] = {}
    try:
        for kind in ("nginx", "fastgate"):
            home = tmp / kind
            home.mkdir()
            mine = out[kind] = [free_port() for _ in range(ports)]
            proc = beside_nginx(kind, home, body(mine), level)
            procs.append(proc)
            for port in mine:
                wait_port(port, proc)
        yield out
    finally:
        for proc in procs:
            stop_process(proc)


def log_messages(errors: Path) -> list[str]:
    """An nginx-format error log's lines as "[level] message" (without the time, the
    process and connection numbers, or the ", client: ..." context), the log emptied."""
    time.sleep(0.1)
    out = []
    for line in errors.read_text().splitlines():
        m = re.match(r"\S+ \S+ \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*?)(?:, client: .*)?$", line)
        if m:
            out.append(f"[{m.group(1)}] {m.group(2)}")
    errors.write_text("")
    return out


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL past 10 seconds."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def compared_answer(port: int, method: str, path: str, headers: dict[str, str],
                    host: str = "example.com", varying: tuple[str, ...] = ()) -> object:
    """An answer as the comparisons with nginx see it: status, headers (sorted, but
    Date, Server, Connection, Keep-Alive and ``varying``), body — where the page names
    its server (compressed or not), the body with nginx's name made fastgate's and no
    Content-Length (the names' lengths differ)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers={"Host": host, **headers})
        r = c.getresponse()
        raw = r.read()
    finally:
        c.close()
    fields = sorted((k.lower(), v) for k, v in r.getheaders() if k.lower() not in
                    ("date", "server", "connection", "keep-alive", *varying))
    packed = r.getheader("Content-Encoding") == "gzip" and raw
    text = zlib.decompress(raw, 47) if packed else raw
    if b"nginx" in text or b"fastgate" in text or method == "HEAD" and r.status >= 400:
        return r.status, [f for f in fields if f[0] != "content-length"], \
            text.replace(b"nginx", b"fastgate")
    return r.status, fields, raw
