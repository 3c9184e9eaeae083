"""Soak: at least 1,000,000 requests through one worker — valid, invalid and missing
tokens, several locations — with the worker's RSS sampled every 10 s and its open file
descriptors counted before and after. ``make soak`` runs it.

    python bench/soak.py [--requests 1000000] [--engine httptools]

Fails (exit 1) on a 5xx, on an unexpected status class, on a descriptor leak, or when
RSS keeps growing after warm-up.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from load import PY, SECRET, Bench, free_port, rss_mib, wait_port  # noqa: E402

LUA = """
local paths = {
  {"/hs/a", "Bearer TOKEN"}, {"/hs/b", "Bearer TOKEN"}, {"/hs/c", "Bearer TOKENX"},
  {"/hs/d", ""}, {"/public/e", ""}, {"/admin/f", "Bearer TOKEN"}, {"/health", ""},
}
local i = 0
request = function()
  i = i % #paths + 1
  local p = paths[i]
  local headers = {}
  if p[2] ~= "" then headers["Authorization"] = p[2] end
  return wrk.format("GET", p[1], headers)
end
"""


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def status_counts(port: int) -> dict[str, int]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/status")
    text = c.getresponse().read().decode()
    c.close()
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r'fastgate_requests_total\{status="(\dxx)"\} (\d+)', text)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--engine", default="httptools")
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "taskset"):
        if shutil.which(tool) is None:
            print(f"soak: {tool} is missing (make soak installs wrk and nginx)", file=sys.stderr)
            return 1
    bench = Bench(argparse.Namespace(duration=10, runs=1, rows="quick", json=None))
    tmp = Path(tempfile.mkdtemp(prefix="fastgate-soak-"))
    try:
        bench.nginx("backend", f"""server {{ listen 127.0.0.1:{bench.backend_port};
            keepalive_requests 1000000; location / {{ return 200 "ok\\n"; }} }}""",
                    bench.backend_port, "1")
        port = free_port()
        conf = tmp / "soak.conf"
        conf.write_text(f"""
http {{ access_log off;
  upstream be {{ server 127.0.0.1:{bench.backend_port}; keepalive 64; keepalive_timeout 2s; }}
  map $jwt_claim_role $is_admin {{ "\\"admin\\"" 1; default 0; }}
  server {{
    listen 127.0.0.1:{port}; keepalive_requests 1000000;
    auth_jwt_key "{SECRET}";
    location /hs/ {{ auth_jwt on; proxy_set_header X-User-Id $jwt_claim_sub;
                    proxy_pass http://be; }}
    location /admin/ {{ auth_jwt on; auth_jwt_require $is_admin error=403; proxy_pass http://be; }}
    location /public/ {{ proxy_pass http://be; }}
    location = /health {{ return 200 "OK\\n"; }}
    location = /status {{ fastgate_status; }}
  }}
}}
""")
        proc = bench.start([PY, "-m", "fastgate", "-c", str(conf), "--http-engine",
                            args.engine], port)
        wait_port(port, proc)
        token = bench.token()
        script = tmp / "mix.lua"
        script.write_text(LUA.replace("TOKEN", token))
        fd_start = fds(proc.pid)
        samples: list[tuple[int, float]] = []
        total = 0
        print(f"soak: {args.requests} requests, mixed tokens and locations, one worker "
              f"({args.engine}); RSS every 10 s", flush=True)
        while total < args.requests:
            out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c50", "-d10s", "-s",
                                  str(script), f"http://127.0.0.1:{port}"],
                                 capture_output=True, text=True, timeout=60).stdout
            total += int(re.search(r"(\d+) requests in", out).group(1))
            samples.append((total, rss_mib(proc.pid)))
            print(f"  {total:>9} requests  RSS {samples[-1][1]:6.1f} MiB", flush=True)
        time.sleep(3)  # wrk's connections are closed, and idle pooled ones time out (2 s)
        counts = status_counts(port)
        fd_end = fds(proc.pid)
        warm = samples[min(2, len(samples) - 1)][1]
        last = samples[-1][1]
        print(f"\nRSS: {samples[0][1]:.1f} MiB after 10 s, {warm:.1f} MiB after warm-up, "
              f"{last:.1f} MiB at the end ({last - warm:+.1f} MiB since warm-up)")
        print(f"file descriptors: {fd_start} before, {fd_end} after")
        print(f"answers by class: {counts}")
        ok = True
        if counts.get("5xx", 0):
            print("FAILED: 5xx answers during the soak")
            ok = False
        if last - warm > 10:
            print("FAILED: RSS grew after warm-up")
            ok = False
        if fd_end > fd_start + 5:
            print("FAILED: file descriptors leaked")
            ok = False
        return 0 if ok else 1
    finally:
        bench.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
