"""Where a fastgate worker's CPU time goes under load (issue #19): ``perf record``
(cpu-clock samples) of the worker while wrk sends the valid-HS256 row's requests, split
by the object the samples fall in — the kernel, the event loop (uvloop, libuv linked
into it), the interpreter (libpython), fastgate's own C modules, OpenSSL, libc.
Python 3.11 has no perf trampoline (3.12's ``-X perf``), so the interpreter is one
block here; ``bench/cycle.py`` under callgrind splits it by function.

    python bench/perf_split.py [--seconds 5] [--engine httptools|h11]

Needs perf (Debian ``linux-perf``), wrk and nginx; run as root or with
kernel.perf_event_paranoid <= 1. The proxy is pinned to CPU 0, wrk and the backend
to CPU 1, as in bench/load.py.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from idle import free_port, wait_port  # noqa: E402

PY = sys.executable
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
# the object files of fastgate's compiled modules
OURS = re.compile(r"^(_core|_wire|fast|request|_headers|_walk|exchange|httptools_engine|"
                  r"counters|limit_table|server|client|dispatch|events|jwt_phase|page|"
                  r"upstream|counts|memo|h11_scan)\.cpython")
GROUPS = [("kernel", re.compile(r"^\[kernel")), ("event loop (uvloop/libuv)",
                                                  re.compile(r"^loop\.cpython")),
          ("interpreter (libpython)", re.compile(r"^libpython")),
          ("fastgate's C modules", OURS), ("OpenSSL (libcrypto, libssl)",
                                            re.compile(r"^lib(crypto|ssl)")),
          ("libc, vdso", re.compile(r"^(libc\.|\[vdso\])"))]


def split(report: str) -> list[tuple[str, float]]:
    shares: dict[str, float] = {name: 0.0 for name, _ in GROUPS}
    shares["other"] = 0.0
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)", line)
        if not m:
            continue
        share, dso = float(m.group(1)), m.group(2)
        name = next((n for n, rx in GROUPS if rx.search(dso)), "other")
        shares[name] += share
    return list(shares.items())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--engine", default="httptools", choices=["httptools", "h11"])
    args = ap.parse_args()
    for tool in ("perf", "wrk", "nginx", "taskset"):
        if shutil.which(tool) is None:
            print(f"bench/perf_split.py: {tool} is missing", file=sys.stderr)
            return 1
    tmp = Path(tempfile.mkdtemp(prefix="fastgate-perf-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        be = free_port()
        (tmp / "be.conf").write_text(
            f"worker_processes 1; daemon off; pid {tmp}/be.pid; error_log {tmp}/be.err;\n"
            "events { worker_connections 1024; }\n"
            f"http {{ access_log off; server {{ listen 127.0.0.1:{be}; "
            "keepalive_requests 1000000; location / { return 200 hello; } } }\n")
        procs.append(subprocess.Popen(["taskset", "-c", "1", "nginx", "-c",
                                       str(tmp / "be.conf"), "-p", str(tmp)]))
        wait_port(be, procs[-1])
        port = free_port()
        (tmp / "fg.conf").write_text(
            f"error_log {tmp}/fg.err error;\nhttp {{ access_log off;\n"
            f"upstream be {{ server 127.0.0.1:{be}; keepalive 64; keepalive_requests 1000000; }}\n"
            f"server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000;\n"
            f'auth_jwt_key "{SECRET}";\n'
            "location /hs/ { auth_jwt on; auth_jwt_alg HS256;\n"
            "proxy_set_header X-User-Id $jwt_claim_sub; proxy_pass http://be; } } }\n")
        gate = subprocess.Popen(["taskset", "-c", "0", PY, "-m", "fastgate", "-c",
                                 str(tmp / "fg.conf"), "--http-engine", args.engine],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(gate)
        wait_port(port, gate)
        token = subprocess.run([PY, "-m", "fastgate", "token", "--alg", "HS256", "--key",
                                SECRET, "--claim", "sub=user123", "--exp", "86400"],
                               capture_output=True, text=True, check=True).stdout.strip()
        url = f"http://127.0.0.1:{port}/hs/x"
        wrk = ["taskset", "-c", "1", "wrk", "-t1", "-c50", "-H",
               f"Authorization: Bearer {token}"]
        subprocess.run(wrk + ["-d1s", url], capture_output=True, check=True)  # warm-up
        load = subprocess.Popen(wrk + [f"-d{args.seconds + 2}s", url], stdout=subprocess.PIPE,
                                text=True)
        time.sleep(1)
        data = tmp / "perf.data"
        subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-p",
                        str(gate.pid), "-o", str(data), "--", "sleep", str(args.seconds)],
                       check=True, capture_output=True)
        out = load.communicate(timeout=args.seconds + 30)[0]
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        report = subprocess.run(["perf", "report", "-i", str(data), "--sort", "dso",
                                 "--stdio"], capture_output=True, text=True, check=True).stdout
        print(f"fastgate ({args.engine}), valid HS256 + claim header, "
              f"{float(rps.group(1)) if rps else 0:.0f} req/s while sampled:")
        print("\n| where | share of the worker's CPU samples |\n|---|---:|")
        for name, share in split(report):
            print(f"| {name} | {share:.1f}% |")
        return 0
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
