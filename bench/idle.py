"""Memory per idle keep-alive connection, fastgate beside nginx (issue #19): each
gateway, one worker, gets ``--connections`` client connections (10,000 by default),
each of which makes one request, reads its answer and then stays open and idle — the
state a gateway holds for a fleet of quiet keep-alive clients. The worker's RSS before
and after, divided by the number of connections, is the cost of one.

    python bench/idle.py [--connections 10000] [--engine httptools|h11]

Needs nginx (Debian package; ``make load-deps`` installs it) and a file-descriptor limit
above the connection count (this script raises its soft limit to the hard one).
"""

from __future__ import annotations

import argparse
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
REQUEST = b"GET / HTTP/1.1\r\nHost: idle\r\n\r\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def worker_pid(proc: subprocess.Popen[bytes]) -> int:
    """The process that serves: nginx's worker (its master's child), else itself."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return int(kids[0]) if kids else proc.pid


def hold(port: int, count: int) -> list[socket.socket]:
    """``count`` connections, each with one request answered, left open."""
    sel = selectors.DefaultSelector()
    socks = []
    pending = 0
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(REQUEST)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
        pending += 1
        if pending >= 200:  # a window of requests in flight
            pending -= _drain(sel, pending)
    while pending:
        pending -= _drain(sel, pending)
    return socks


def _drain(sel: selectors.BaseSelector, pending: int) -> int:
    done = 0
    for key, _ in sel.select(timeout=10):
        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
        if not data or b"\r\n\r\n" in data:
            sel.unregister(key.fileobj)
            done += 1
    if not done and pending:
        raise RuntimeError("answers stopped coming")
    return done


def measure(name: str, cmd: list[str], port: int, count: int) -> tuple[int, int]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        time.sleep(0.5)
        pid = worker_pid(proc)
        for s in hold(port, 10):  # warm: the first connections' one-time allocations
            s.close()
        time.sleep(0.5)
        before = rss_kib(pid)
        socks = hold(port, count)
        time.sleep(1.0)
        after = rss_kib(pid)
        print(f"  {name:28s} RSS {before / 1024:7.1f} MiB -> {after / 1024:7.1f} MiB with "
              f"{count} idle connections: {(after - before) * 1024 / count:7.0f} bytes each",
              flush=True)
        for s in socks:
            s.close()
        return before, after
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--engine", default="httptools", choices=["httptools", "h11"])
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 200
    if hard < need:
        print(f"bench/idle.py: the file-descriptor limit ({hard}) is below {need}",
              file=sys.stderr)
        return 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if shutil.which("nginx") is None:
        print("bench/idle.py: nginx is missing (make load-deps installs it)", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="fastgate-idle-"))
    long_idle = "keepalive_timeout 600s; client_header_timeout 600s;"
    print(f"idle keep-alive connections: {args.connections}, one worker each")
    port = free_port()
    (tmp / "nginx.conf").write_text(
        f"worker_processes 1; worker_rlimit_nofile {hard}; daemon off; "
        f"pid {tmp}/nginx.pid; error_log {tmp}/nginx.err;\n"
        f"events {{ worker_connections {need}; }}\n"
        f"http {{ access_log off; {long_idle} keepalive_requests 1000000;\n"
        f"server {{ listen 127.0.0.1:{port}; location / {{ return 200 ok; }} }} }}\n")
    measure("nginx 1.22", ["nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp)], port,
            args.connections)
    port = free_port()
    (tmp / "fastgate.conf").write_text(
        f"error_log {tmp}/fastgate.err error; events {{ worker_connections {need}; }}\n"
        f"http {{ access_log off; {long_idle} keepalive_requests 1000000;\n"
        f"server {{ listen 127.0.0.1:{port}; location / {{ return 200 ok; }} }} }}\n")
    measure(f"fastgate ({args.engine})", [PY, "-m", "fastgate", "-c", str(tmp / "fastgate.conf"),
                                         "--http-engine", args.engine], port, args.connections)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
