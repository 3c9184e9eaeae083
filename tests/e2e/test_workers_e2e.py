"""Running in production: a master and workers, worker replacement, reload under load,
graceful stop, log reopening, TLS, and the status page summed across workers."""

from __future__ import annotations

import http.client
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers import self_signed


def get(port: int, path: str = "/", timeout: float = 10) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def workers_config(tmp: Path, port: int, body: str = 'return 200 "$pid";', extra: str = "") -> str:
    return f"""worker_processes 2;
pid {tmp}/fg.pid;
error_log {tmp}/error.log info;
{extra}
http {{
  server {{ listen 127.0.0.1:{port} reuseport;
    location = /status {{ fastgate_status; }}
    location / {{ {body} }}
  }}
}}
"""


def test_two_workers_serve_and_a_dead_one_is_replaced(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gw = gateway(workers_config(tmp_path, port), port)
    pids = {get(port)[1] for _ in range(60)}
    workers = children(gw.proc.pid)
    assert len(workers) == 2
    assert {int(p) for p in pids} <= set(workers)
    assert len(pids) == 2  # reuseport spreads new connections over both
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.time() + 2.0
    statuses = []
    while time.time() < deadline:
        statuses.append(get(port)[0])
    assert set(statuses) == {200}
    now = children(gw.proc.pid)
    assert len(now) == 2 and workers[0] not in now
    assert f"worker process {workers[0]} exited on signal 9" in (tmp_path / "error.log").read_text()


def test_reload_under_load_sees_only_200(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gw = gateway(workers_config(tmp_path, port, 'return 200 "one";'), port)
    results: list[object] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                results.append(get(port))
            except OSError as e:  # a refused or reset connection fails the test
                results.append(e)

    t = threading.Thread(target=loop)
    t.start()
    time.sleep(0.3)
    gw.conf.write_text(workers_config(tmp_path, port, 'return 200 "two";'))
    run = subprocess.run([sys.executable, "-m", "fastgate", "-s", "reload", "-c", str(gw.conf)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    deadline = time.time() + 5
    while time.time() < deadline and not (results and results[-1] == (200, b"two")):
        time.sleep(0.05)
    time.sleep(0.3)
    gw.conf.write_text("http { bogus; }")  # a bad config: rejected, traffic goes on
    gw.signal(signal.SIGHUP)
    time.sleep(0.5)
    stop.set()
    t.join(10)
    errors = [r for r in results if not isinstance(r, tuple)]
    assert errors == []
    assert {r[0] for r in results} == {200}  # type: ignore[index]
    assert results[-1] == (200, b"two")
    assert 'unknown directive "bogus"' in (tmp_path / "error.log").read_text()


def test_sigquit_finishes_slow_request(tmp_path: Path, backends, gateway, free) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    port = free()
    gw = gateway(workers_config(tmp_path, port, f"proxy_pass http://127.0.0.1:{be.port};"), port)
    result: dict[str, object] = {}

    def slow() -> None:
        result["r"] = get(port, "/stall?s=1.5")

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.4)
    gw.signal(signal.SIGQUIT)
    t.join(10)
    assert result["r"][0] == 200  # type: ignore[index]
    assert gw.proc.wait(15) == 0
    assert not (tmp_path / "fg.pid").exists()


def test_log_reopen_after_move(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    log = tmp_path / "access.log"
    gw = gateway(workers_config(tmp_path, port, "return 204;").replace(
        "http {", f"http {{ access_log {log};"), port)
    get(port, "/before")
    time.sleep(1.5)  # access logs are flushed every second
    moved = tmp_path / "access.log.1"
    log.rename(moved)
    run = subprocess.run([sys.executable, "-m", "fastgate", "-s", "reopen", "-c", str(gw.conf)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    time.sleep(0.5)
    get(port, "/after")
    deadline = time.time() + 3
    while time.time() < deadline and not (log.exists() and "/after" in log.read_text()):
        time.sleep(0.1)
    assert "/before" in moved.read_text()
    assert "/after" in log.read_text() and "/before" not in log.read_text()
    assert '"GET /after HTTP/1.1" 204' in log.read_text()  # the combined format


def test_tls(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    crt, key = self_signed(tmp_path)
    port = free()
    gateway(f"""http {{ server {{ listen 127.0.0.1:{port} ssl;
      ssl_certificate {crt}; ssl_certificate_key {key};
      location / {{ return 200 "$scheme $https"; }} }} }}""", port)
    ctx = ssl.create_default_context(cafile=str(crt))
    c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
    c.request("GET", "/")
    r = c.getresponse()
    assert (r.status, r.read()) == (200, b"https on")
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[union-attr]
    c.close()


def test_tls_without_certificate_fails_to_start(tmp_path: Path, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    conf = tmp_path / "t.conf"
    conf.write_text(f"pid {tmp_path}/x.pid;\nhttp {{ server {{ listen 127.0.0.1:{port} ssl; }} }}\n")
    run = subprocess.run([sys.executable, "-m", "fastgate", "-c", str(conf)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 1
    assert (f'no "ssl_certificate" is defined for the "listen ... ssl" directive in {conf}:2'
            in run.stderr)
    assert "Traceback" not in run.stderr


def test_status_page_sums_workers(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gateway(workers_config(tmp_path, port), port)
    for _ in range(30):
        assert get(port, "/x")[0] == 200
    for _ in range(5):
        get(port, "/status")
    # a request is counted once its answer is written: the client may ask again (of
    # another worker) a few microseconds before the last count lands
    time.sleep(0.2)
    status, body = get(port, "/status")
    text = body.decode()
    # 30 + 5 earlier status pages; this one is counted after it is written
    assert 'fastgate_requests_total{status="2xx"} 35' in text
    # 36 requests on their own connections, and the fixture's probe that the port is open
    assert "fastgate_connections_total 37" in text
