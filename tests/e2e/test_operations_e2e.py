"""What an operator meets on day one (issue #15): logs that cannot be opened are refused
with FILE:LINE instead of losing lines, logs to syslog, conditional and buffered access
logs, bytes logged as nginx escapes them, the default access log, the pid file handled
safely, and the command line's -p, -g, -T, -V."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from conftest import wait_port
from e2e_util import fastgate, raw_exchange, status_of, wait_for_text
from helpers import self_signed
from raw_backend import RawBackend
from test_workers_e2e import children

ROOT = Path(__file__).resolve().parents[2]


def refused(tmp_path: Path, text: str) -> tuple[Path, str]:
    """The configuration ``text`` fails -t: its path and what fastgate said."""
    conf = tmp_path / "f.conf"
    conf.write_text(text)
    run = fastgate("-t", "-c", str(conf))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    return conf, run.stderr


def server(port: int, body: str = "return 204;", http: str = "") -> str:
    return (f"http {{ {http}\n server {{ listen 127.0.0.1:{port};\n"
            f" location / {{ {body} }} }} }}\n")


def get(port: int, target: str = "/", headers: bytes = b"") -> int:
    return status_of(raw_exchange(port, b"GET " + target.encode() + b" HTTP/1.1\r\n"
                                  b"Host: a\r\n" + headers + b"Connection: close\r\n\r\n"))


# --- 1. a log that cannot be opened ------------------------------------------------------------

@pytest.mark.parametrize("directive,line", [
    ("error_log {bad}/error.log;", 1),
    ("http {{ access_log {bad}/access.log; server {{ listen 127.0.0.1:1; }} }}", 1),
])
@pytest.mark.parametrize("kind", ["missing directory", "file in place of a directory"])
def test_a_log_that_cannot_be_opened_fails_t_and_start(tmp_path: Path, directive: str,
                                                       line: int, kind: str) -> None:
    bad = tmp_path / "nowhere"
    if kind == "file in place of a directory":
        bad.write_text("")
        reason = "(20: Not a directory)"
    else:
        reason = "(2: No such file or directory)"
    conf = tmp_path / "f.conf"
    conf.write_text(directive.format(bad=bad) + "\n")
    for args in (["-t"], []):
        run = fastgate(*args, "-c", str(conf))
        assert run.returncode == 1
        assert "Traceback" not in run.stderr
        path = f"{bad}/{'error' if 'error_log' in directive else 'access'}.log"
        assert f'[emerg] open() "{path}" failed {reason} in {conf}:{line}' in run.stderr, \
            run.stderr


def test_a_log_without_permission_fails_t(tmp_path: Path) -> None:
    # the tests may run as root, whom file modes do not stop: a file of /sys that takes no
    # writes refuses even root with the same EACCES a user meets
    target = "/sys/kernel/uevent_seqnum"
    if not os.path.exists(target):
        pytest.skip(f"no {target} here")
    conf, err = refused(tmp_path, f"http {{ access_log {target}; }}\n")
    assert f'[emerg] open() "{target}" failed (13: Permission denied) in {conf}:1' in err


def test_a_reload_naming_a_log_that_cannot_be_opened_keeps_the_old_configuration(
        tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    errlog = tmp_path / "error.log"
    gw = gateway(f"error_log {errlog} notice;\n" + server(port, "return 204;"), port)
    assert get(port) == 204
    gw.conf.write_text(f"error_log {errlog} notice;\n"
                       + server(port, "return 200 new;", f"access_log {tmp_path}/no/a.log;"))
    gw.signal(signal.SIGHUP)
    assert wait_for_text(errlog, "the old configuration keeps serving")
    assert f'open() "{tmp_path}/no/a.log" failed' in errlog.read_text()
    assert get(port) == 204


def test_reopen_that_fails_keeps_the_old_file(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    logs = tmp_path / "logs"
    logs.mkdir()
    errlog = tmp_path / "error.log"
    gw = gateway(f"error_log {errlog} notice;\n"
                 + server(port, "return 204;", f"access_log {logs}/access.log;"), port)
    assert get(port, "/before") == 204
    assert wait_for_text(logs / "access.log", "/before")
    moved = tmp_path / "logs.old"
    logs.rename(moved)  # the directory is gone: reopen cannot open the path again
    gw.signal(signal.SIGUSR1)
    assert wait_for_text(errlog, "; the old file is kept")
    assert f'[alert] {gw.proc.pid}#{gw.proc.pid}: open() "{logs}/access.log" failed (2: No such file or ' \
        "directory) in " in errlog.read_text()
    assert get(port, "/after") == 204
    assert wait_for_text(moved / "access.log", "/after")  # nothing lost
    assert gw.proc.poll() is None


# --- 2. syslog, if=, buffer= and flush= -------------------------------------------------------------

@pytest.fixture
def syslog_server() -> tuple[socket.socket, int]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    yield s, s.getsockname()[1]
    s.close()


def _datagrams(s: socket.socket, want: int) -> list[bytes]:
    out = []
    while len(out) < want:
        out.append(s.recv(4096))
    return out


def test_access_and_error_log_to_syslog(tmp_path: Path, gateway, free,  # type: ignore[no-untyped-def]
                                        syslog_server) -> None:
    sock, sport = syslog_server
    port = free()
    gateway(server(
        port, "return 204;",
        f"access_log syslog:server=127.0.0.1:{sport},facility=local0,tag=gw,nohostname;"
        f"\nlog_format plain '$request_method $uri $status';"
        f"\naccess_log syslog:server=127.0.0.1:{sport},severity=notice plain;"), port)
    assert get(port, "/x") == 204
    got = _datagrams(sock, 2)
    # local0 (16) * 8 + info (6) = 134; no hostname; the combined format
    combined = next(d for d in got if d.startswith(b"<134>"))
    assert re.fullmatch(rb"<134>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d gw: 127\.0\.0\.1 - - "
                        rb'\[.*\] "GET /x HTTP/1\.1" 204 0 "-" "-"', combined), combined
    # local7 (23) * 8 + notice (5) = 189; the hostname; the default tag
    plain = next(d for d in got if d.startswith(b"<189>"))
    host = socket.gethostname().encode()
    assert plain.endswith(b" " + host + b" fastgate: GET /x 204"), plain


def test_error_log_to_syslog_carries_the_level(tmp_path: Path, gateway, free,  # type: ignore[no-untyped-def]
                                               syslog_server) -> None:
    sock, sport = syslog_server
    port = free()
    gateway(f"error_log syslog:server=127.0.0.1:{sport},tag=gw_err info;\n"
            + server(port, "return 204;", "access_log off;"), port)
    raw_exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    got = [d for d in _datagrams(sock, 2)]
    # local7 * 8 + notice (5) for the start line, + info (6) for the refused request
    assert any(d.startswith(b"<189>") and b" gw_err: " in d and b"[notice]" in d for d in got)
    assert any(d.startswith(b"<190>") and b"[info]" in d for d in got), got


def test_syslog_parameters_are_checked(tmp_path: Path) -> None:
    for value, message in [("syslog:facility=local0", "no syslog server specified"),
                           ("syslog:server=127.0.0.1,facility=nope", 'unknown syslog facility "nope"'),
                           ("syslog:server=127.0.0.1,tag=a-b", 'syslog "tag" only allows'),
                           ("syslog:server=127.0.0.1,colour=red", 'unknown syslog parameter "colour=red"')]:
        conf, err = refused(tmp_path, f"http {{ access_log {value}; }}\n")
        assert message in err and f"{conf}:1" in err, err


def test_access_log_if_skips_empty_and_zero(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    log = tmp_path / "a.log"
    gateway(server(port, "return 204;", "map $arg_log $loggable { default 1; no 0; empty ''; }"
                   f"\naccess_log {log} combined if=$loggable;"), port)
    for target in ("/one", "/two?log=no", "/three?log=empty", "/four?log=yes"):
        assert get(port, target) == 204
    assert wait_for_text(log, "/four")
    text = log.read_text()
    assert "/one" in text and "/two" not in text and "/three" not in text


def test_a_buffered_access_log_waits_for_its_buffer_and_loses_nothing_at_stop(
        tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    log = tmp_path / "a.log"
    timed = tmp_path / "t.log"
    gw = gateway(server(port, "return 204;", f"access_log {log} combined buffer=64k;\n"
                        f"access_log {timed} combined buffer=64k flush=1s;"), port)
    assert get(port, "/held") == 204
    assert wait_for_text(timed, "/held", timeout=4)  # flush=1s: out within a tick or two
    assert "/held" not in log.read_text()  # 64k not reached, no flush=: still held
    gw.signal(signal.SIGQUIT)
    assert gw.proc.wait(10) == 0
    assert "/held" in log.read_text()  # written at stop


def test_gzip_is_warned_and_flush_needs_no_buffer(tmp_path: Path) -> None:
    conf = tmp_path / "f.conf"
    conf.write_text(f"http {{ access_log {tmp_path}/a.log combined gzip flush=5s; }}\n")
    run = fastgate("-t", "-c", str(conf))
    assert run.returncode == 0, run.stderr
    assert '[warn] "gzip" of "access_log" is ignored' in run.stderr


# --- 3. bytes in logged values --------------------------------------------------------------------

def test_non_ascii_is_escaped_as_nginx_and_forwarded_unchanged(
        tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    backend = RawBackend()
    try:
        port = free()
        log = tmp_path / "a.log"
        jlog = tmp_path / "j.log"
        gateway(f"""http {{
  log_format j escape=json '{{"ua":"$http_user_agent"}}';
  server {{ listen 127.0.0.1:{port};
    access_log {log}; access_log {jlog} j;
    location / {{ proxy_set_header X-UA $http_user_agent;
                 proxy_pass http://127.0.0.1:{backend.port}; }} }} }}
""", port)
        ua = "café \"q\"".encode()
        assert get(port, "/u", b"User-Agent: " + ua + b"\r\n") == 200
        assert wait_for_text(log, "/u") and wait_for_text(jlog, "ua")
        assert '"caf\\xC3\\xA9 \\x22q\\x22"' in log.read_text()
        assert jlog.read_bytes().strip() == '{"ua":"café \\"q\\""}'.encode()
        (rec,) = backend.requests()
        assert rec.header(b"x-ua") == [ua]  # the bytes that came, not re-encoded
    finally:
        backend.stop()


# --- 4. the default access log --------------------------------------------------------------------

def test_access_log_is_on_by_default_beside_the_configuration(
        tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gw = gateway(server(port), port)
    assert get(port, "/by-default") == 204
    assert wait_for_text(tmp_path / "logs" / "access.log", '"GET /by-default HTTP/1.1" 204')
    assert gw.proc.poll() is None


def test_prefix_moves_relative_paths(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    gw = gateway(server(port), port, extra_args=["-p", str(prefix)])
    assert get(port, "/p") == 204
    assert wait_for_text(prefix / "logs" / "access.log", "/p")
    assert not (tmp_path / "logs").exists()
    gw.stop()
    assert not any(prefix.glob("*.pid"))  # removed at stop...
    conf = tmp_path / "off.conf"
    conf.write_text(server(port, "return 204;", "access_log off;"))
    assert fastgate("-t", "-c", str(conf), "-p", str(prefix / "elsewhere")).returncode == 0
    assert not (prefix / "elsewhere").exists()  # access_log off: no default log made


# --- 5, 7. the pid file ---------------------------------------------------------------------------

@pytest.mark.parametrize("content", ["0", "-1", "99999999999999999999999", "12ab", "٣"])
def test_a_bad_pid_file_never_signals(tmp_path: Path, content: str) -> None:
    conf = tmp_path / "f.conf"
    pid = tmp_path / "f.pid"
    conf.write_text(f"pid {pid};\n" + server(1))
    pid.write_text(content + "\n")
    run = fastgate("-s", "reload", "-c", str(conf))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "invalid PID number" in run.stderr


def test_a_pid_file_naming_another_program_never_signals_it(tmp_path: Path) -> None:
    conf = tmp_path / "f.conf"
    pid = tmp_path / "f.pid"
    conf.write_text(f"pid {pid};\n" + server(1))
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        pid.write_text(f"{stranger.pid}\n")
        run = fastgate("-s", "stop", "-c", str(conf))
        assert run.returncode == 1 and "is not fastgate" in run.stderr
        time.sleep(0.2)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_pid_off_writes_no_pid_file(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gw = gateway("pid off;\n" + server(port, "return 204;", "access_log off;"), port)
    assert get(port) == 204
    assert not list(tmp_path.glob("*.pid"))
    run = fastgate("-s", "reload", "-c", str(gw.conf))
    assert run.returncode == 1 and '"pid off"' in run.stderr


def test_the_default_pid_file_is_beside_the_configuration(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gw = gateway(server(port, "return 204;", "access_log off;"), port)
    pid = gw.conf.with_suffix(".pid")
    assert pid.read_text().strip() == str(gw.proc.pid)
    assert fastgate("-s", "quit", "-c", str(gw.conf)).returncode == 0
    assert gw.proc.wait(10) == 0
    assert not pid.exists()


# --- 7. -g, -T, -V ---------------------------------------------------------------------------------

def test_g_adds_main_directives(tmp_path: Path) -> None:
    conf = tmp_path / "f.conf"
    conf.write_text(server(1, "return 204;", "access_log off;"))
    run = fastgate("-t", "-c", str(conf), "-g", "worker_processes 2; pid off;")
    assert run.returncode == 0, run.stderr
    conf.write_text("pid off;\n" + server(1, "return 204;", "access_log off;"))
    run = fastgate("-t", "-c", str(conf), "-g", "pid off;")
    assert run.returncode == 1
    assert '"pid" directive is duplicate' in run.stderr
    run = fastgate("-t", "-c", str(conf), "-g", "nonsense;")
    assert 'unknown directive "nonsense" in command line' in run.stderr


def test_T_dumps_every_included_file(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "s.conf").write_text("server { listen 127.0.0.1:1; }\n")
    conf = tmp_path / "f.conf"
    conf.write_text("http { access_log off; include conf.d/*.conf; }\n")
    run = fastgate("-T", "-c", str(conf))
    assert run.returncode == 0, run.stderr
    assert f"# configuration file {conf}:\nhttp {{ access_log off;" in run.stdout
    assert f"# configuration file {tmp_path}/conf.d/s.conf:\nserver {{" in run.stdout
    assert "test is successful" in run.stderr


def test_V_names_what_fastgate_runs_on() -> None:
    run = fastgate("-V")
    assert run.returncode == 0
    for name in ("python 3.", "OpenSSL", "uvloop ", "httptools ", "h11 ", "cryptography ",
                 "fastgate._core"):
        assert name in run.stdout, run.stdout
    assert "not built" not in run.stdout


# --- 5. an unbuilt checkout ------------------------------------------------------------------------

def test_an_unbuilt_checkout_says_what_to_do(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "fastgate", tmp_path / "fastgate",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    conf = tmp_path / "f.conf"
    conf.write_text(server(1))
    # site-packages without its .pth files: this venv's editable install of the real
    # checkout would otherwise fill in the missing modules (a pip-installed fastgate has
    # no such finder, and the copy in the current directory shadows it)
    env = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"])
    run = subprocess.run([sys.executable, "-S", "-m", "fastgate", "-t", "-c", str(conf)],
                         capture_output=True, text=True, timeout=30, cwd=tmp_path, env=env)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "source checkout that was not built" in run.stderr, run.stderr
    assert 'Run "make build" there' in run.stderr


# --- 8, 9, 10. running as a service -------------------------------------------------------------

def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


def test_start_says_where_it_listens_and_processes_have_titles(
        tmp_path: Path, gateway, free, engine: str) -> None:  # type: ignore[no-untyped-def]
    port = free()
    errlog = tmp_path / "error.log"
    gw = gateway(f"worker_processes 2;\nerror_log {errlog} notice;\n"
                 + server(port, "return 204;", "access_log off;"), port)
    line = f"listening on http://127.0.0.1:{port} (2 workers, {engine})"
    assert wait_for_text(gw.stderr_path, f"fastgate: {line}")
    assert wait_for_text(errlog, f"[notice] {gw.proc.pid}#{gw.proc.pid}: {line}")
    assert _cmdline(gw.proc.pid).startswith("fastgate: master process -c ")
    workers = children(gw.proc.pid)
    assert len(workers) == 2
    # a worker names itself just after the fork, maybe after the master's announcement
    deadline = time.monotonic() + 5
    while (not all(_cmdline(w) == "fastgate: worker process" for w in workers)
           and time.monotonic() < deadline):
        time.sleep(0.02)
    assert all(_cmdline(w) == "fastgate: worker process" for w in workers)


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGQUIT, signal.SIGINT])
def test_an_idle_gateway_stops_at_once(tmp_path: Path, gateway, free, workers: int,  # type: ignore[no-untyped-def]
                                       sig: int) -> None:
    port = free()
    gw = gateway(f"worker_processes {workers};\n"
                 + server(port, "return 204;", "access_log off;"), port)
    assert get(port) == 204
    t0 = time.monotonic()
    gw.signal(sig)
    assert gw.proc.wait(10) == 0
    # a functional bound, not a speed test: the master used to poll every 0.1 s and a
    # stop took 1-2 s; it now wakes on the signal and on each worker's exit
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("workers", [1, 2])
def test_worker_shutdown_timeout_bounds_a_graceful_stop(tmp_path: Path, gateway, free,  # type: ignore[no-untyped-def]
                                                         workers: int) -> None:
    """A request its backend never answers holds a graceful stop only as long as
    worker_shutdown_timeout says (30 s unset), then its connection is closed."""
    backend = RawBackend(answer=lambda req: b"")  # takes the request, never answers
    try:
        port = free()
        gw = gateway(f"worker_processes {workers};\nworker_shutdown_timeout 1s;\n"
                     + server(port, f"proxy_pass http://127.0.0.1:{backend.port};",
                              "access_log off;"), port)
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        client.sendall(b"GET /held HTTP/1.1\r\nHost: a\r\n\r\n")
        deadline = time.monotonic() + 10
        while not backend.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert backend.requests, "the request did not reach the backend"
        t0 = time.monotonic()
        gw.signal(signal.SIGQUIT)
        time.sleep(0.5)
        assert gw.proc.poll() is None  # still draining: the request is in flight
        assert gw.proc.wait(10) == 0
        assert 0.9 < time.monotonic() - t0 < 5.0
        assert client.recv(1024) == b""  # closed, no answer made up
        client.close()
    finally:
        backend.stop()


def test_many_workers_start_reload_and_stop(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    # above 32 a reload, above 64 a start crash-looped on the shared counters' slots
    port = free()
    errlog = tmp_path / "error.log"
    gw = gateway(f"worker_processes 70;\nerror_log {errlog} notice;\n"
                 + server(port, "return 204;", "access_log off;"), port)
    deadline = time.time() + 60
    while time.time() < deadline and len(children(gw.proc.pid)) < 70:
        time.sleep(0.2)
    assert len(children(gw.proc.pid)) == 70
    assert get(port) == 204
    gw.signal(signal.SIGHUP)
    assert wait_for_text(errlog, "reconfiguring: new worker processes started", timeout=30)
    for _ in range(20):
        assert get(port) == 204
    assert "exited with code 1" not in errlog.read_text()
    assert "exited on signal" not in errlog.read_text()
    gw.signal(signal.SIGQUIT)
    assert gw.proc.wait(60) == 0


def test_worker_processes_above_512_is_refused(tmp_path: Path) -> None:
    conf, err = refused(tmp_path, "worker_processes 513;\n")
    assert f'"worker_processes" above 512 is not supported in {conf}:1' in err


def test_worker_processes_auto_counts_the_cpus_this_process_may_use(tmp_path: Path) -> None:
    conf = tmp_path / "f.conf"
    conf.write_text("worker_processes auto;\n")
    probe = ("from fastgate.config import load_config; import sys; "
             "print(load_config(sys.argv[1]).worker_processes)")
    run = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", probe, str(conf)],
                         capture_output=True, text=True, timeout=30)
    assert run.stdout.strip() == "1", run.stderr


def test_worker_processes_auto_honours_a_cgroup_quota(tmp_path: Path) -> None:
    from fastgate.config.directives.core import usable_cpus

    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs: 2 workers
    assert usable_cpus(str(tmp_path)) == min(2, len(os.sched_getaffinity(0)))
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: still one
    assert usable_cpus(str(tmp_path)) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert usable_cpus(str(tmp_path)) == len(os.sched_getaffinity(0))
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cpus(str(v1)) == 1


# --- 10. the demo ---------------------------------------------------------------------------------

def test_the_demo_checks_its_port_first_and_leaves_nothing_behind(tmp_path: Path, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    env = dict(os.environ, TMPDIR=str(tmp_path))
    start = [sys.executable, "-c", f"from fastgate.demo import main; raise SystemExit(main({port}))"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        run = subprocess.run(start, capture_output=True, text=True, timeout=30, env=env)
    assert run.returncode == 1
    assert f"bind() to 127.0.0.1:{port} failed (98: Address already in use)" in run.stderr
    assert "curl" not in run.stdout  # no banner for a demo that cannot start
    proc = subprocess.Popen(start, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        banner = ""
        while "Ctrl-C" not in banner:
            banner += proc.stdout.readline()  # type: ignore[union-attr]
        token = re.search(r"^  (ey\S+)$", banner, re.M).group(1)  # type: ignore[union-attr]
        wait_port(port, proc)  # the banner comes before the gateway binds
        assert get(port, "/api/x") == 401
        assert get(port, "/api/x", f"Authorization: Bearer {token}\r\n".encode()) == 200
        assert list(tmp_path.glob("fastgate-demo-*"))  # its configuration, while it runs
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert proc.returncode == 0
    assert not list(tmp_path.glob("fastgate-demo-*"))


# --- 3. requests the HTTP layer refuses are logged ---------------------------------------------

@pytest.mark.parametrize("data,status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    # headers too large: nginx's 494, a 400 ("Request Header Or Cookie Too Large")
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 20000 + b"\r\n\r\n", 400),
    (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", 413),
])
def test_refused_requests_are_in_the_access_log(tmp_path: Path, gateway, free,  # type: ignore[no-untyped-def]
                                                data: bytes, status: int) -> None:
    port = free()
    log = tmp_path / "a.log"
    gateway(server(port, "return 204;", f"access_log {log};"), port)
    got = raw_exchange(port, data)
    assert status_of(got) == status
    assert wait_for_text(log, f" {status} ")
    (line,) = log.read_text().splitlines()
    # (the line as nginx logs it: as read, a line too long for the 8k buffer cut there)
    assert re.fullmatch(rf'127\.0\.0\.1 - - \[.*\] "(GARBAGE|GET / HTTP/1\.1|POST / HTTP/1\.1|'
                        rf'GET / HTTP/2\.0|GET /a{{8187}})" '
                        rf'{status} \d+ "-" "-"',
                        line), line[:100]


@pytest.mark.parametrize("data", [
    b"GET /a%00 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a%00 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET /a%00 HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    b"GARBAGE\r\n\r\n",
])
def test_a_refusal_says_connection_close_once(gateway, free,  # type: ignore[no-untyped-def]
                                               data: bytes) -> None:
    # (the engine framed its own "connection: close" for a client that asked to close,
    # beside the refusal's: two Connection headers)
    port = free()
    gateway(server(port, "return 204;"), port)
    head = raw_exchange(port, data).split(b"\r\n\r\n")[0].lower()
    assert status_of(head + b"\r\n\r\n") == 400
    assert head.count(b"\r\nconnection:") == 1 and b"\r\nconnection: close" in head


@pytest.mark.parametrize("data,logged", [
    # nginx refuses a target as its line is read: no header has been
    (b"GET /a%00 HTTP/1.1\r\nHost: t\r\nUser-Agent: ua/1\r\n\r\n", '"-" "-"'),
    (b"GET /a/../../x HTTP/1.1\r\nHost: t\r\nUser-Agent: ua/1\r\n\r\n", '"-" "-"'),
    # a second Host is refused once the headers before it were read; the first counts
    (b"GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: ua/1\r\nHost: u\r\n\r\n",
     '"ua/1" "t"'),
])
def test_a_refused_request_logs_the_headers_nginx_had_read(
        tmp_path: Path, gateway, free, data: bytes,  # type: ignore[no-untyped-def]
        logged: str) -> None:
    port = free()
    log = tmp_path / "a.log"
    gateway(server(port, "return 204;", "log_format h '$status \"$http_user_agent\" "
                   f"\"$http_host\"'; access_log {log} h;"), port)
    assert status_of(raw_exchange(port, data)) == 400
    assert wait_for_text(log, "400 ")
    assert log.read_text().strip() == f"400 {logged}"


# --- 6. user --------------------------------------------------------------------------------------

def _privileged_port() -> int:
    # (in a random order: the test's four cases may run at once on two workers, and
    # two that both took 1023 failed the second's bind)
    for port in random.sample(range(901, 1024), 123):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free port below 1024")


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid")


@pytest.mark.skipif(os.geteuid() != 0, reason="user needs a root master")
@pytest.mark.parametrize("workers", [1, 2])
def test_user_binds_as_root_then_workers_drop_and_logs_still_reopen(
        gateway, workers: int) -> None:  # type: ignore[no-untyped-def]
    import pwd
    import tempfile

    nobody = pwd.getpwnam("nobody")
    home = Path(tempfile.mkdtemp(prefix="fastgate-user-"))
    try:
        home.chmod(0o755)  # the workers reach their logs through it
        (home / "logs").mkdir()
        port = _privileged_port()
        gw = gateway(f"user nobody;\nworker_processes {workers};\n"
                     f"error_log {home}/error.log notice;\n"
                     + server(port, 'return 200 "$pid";', f"access_log {home}/logs/a.log;"), port)
        assert get(port, "/first") == 200
        assert _uid(gw.proc.pid) == 0
        deadline = time.time() + 10  # the port answers (the master's) before workers drop
        while time.time() < deadline:
            kids = children(gw.proc.pid)
            if len(kids) == workers and all(_uid(k) == nobody.pw_uid for k in kids):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"workers {kids} did not become nobody")
        assert wait_for_text(home / "logs" / "a.log", "/first")
        (home / "logs" / "a.log").rename(home / "logs" / "a.log.1")
        gw.signal(signal.SIGUSR1)  # the workers (nobody) open a.log again: it must exist
        time.sleep(0.5)
        assert get(port, "/second") == 200
        assert wait_for_text(home / "logs" / "a.log", "/second")
        assert (home / "logs" / "a.log").stat().st_uid == nobody.pw_uid
        assert "[alert]" not in (home / "error.log").read_text()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_user_is_checked_at_load(tmp_path: Path) -> None:
    conf, err = refused(tmp_path, "user no-such-user-here;\n")
    assert f'getpwnam("no-such-user-here") failed in {conf}:1' in err
    conf, err = refused(tmp_path, "user nobody no-such-group-here;\n")
    assert f'getgrnam("no-such-group-here") failed in {conf}:1' in err


@pytest.mark.skipif(os.geteuid() != 0, reason="user needs a root master")
def test_user_workers_serve_tls_with_a_key_only_root_reads(gateway, free) -> None:  # type: ignore[no-untyped-def]
    import http.client
    import ssl
    import tempfile


    home = Path(tempfile.mkdtemp(prefix="fastgate-user-"))
    try:
        home.chmod(0o755)
        crt, key = self_signed(home)
        key.chmod(0o600)  # root's: the master loads it, the workers (nobody) could not
        port = free()
        gateway(f"""user nobody;\nworker_processes 2;\nhttp {{ access_log off;
          server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {crt};
          ssl_certificate_key {key}; location / {{ return 200 "$scheme"; }} }} }}""", port)
        for _ in range(4):
            c = http.client.HTTPSConnection(
                "localhost", port, context=ssl.create_default_context(cafile=str(crt)),
                timeout=10)
            c.request("GET", "/")
            r = c.getresponse()
            assert (r.status, r.read()) == (200, b"https")
            c.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


# --- 11. fastgate_status ------------------------------------------------------------------------

def _status(port: int) -> str:
    raw = raw_exchange(port, b"GET /status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    return raw.split(b"\r\n\r\n", 1)[1].decode()


def _metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m is not None, f"{name} not in:\n{text}"
    return float(m.group(1))


@pytest.mark.parametrize("workers", [1, 2])
def test_status_has_process_build_reload_and_limit_metrics(
        tmp_path: Path, gateway, free, engine: str, workers: int,  # type: ignore[no-untyped-def]
        request: pytest.FixtureRequest) -> None:
    backend = RawBackend()
    request.addfinalizer(backend.stop)
    port = free()
    errlog = tmp_path / "error.log"
    body = f"""worker_processes {workers};\nerror_log {errlog} notice;
http {{ access_log off; limit_req_zone $remote_addr zone=tight:1m rate=1r/m;
  server {{ listen 127.0.0.1:{port};
    location = /status {{ fastgate_status; }}
    location / {{ limit_req zone=tight; proxy_pass http://127.0.0.1:{backend.port}; }} }} }}
"""
    gw = gateway(body, port)
    statuses = [get(port, f"/{i}") for i in range(6)]
    assert statuses.count(200) == 1 and statuses.count(503) == 5
    text = _status(port)
    assert _metric(text, 'fastgate_limit_rejected_total{zone="tight"}') == 5
    assert _metric(text, f'fastgate_build_info{{version="0.1.0",engine="{engine}",python="'
                   f'{".".join(map(str, sys.version_info[:3]))}"}}') == 1
    assert _metric(text, "process_resident_memory_bytes") > 10e6
    assert _metric(text, "process_open_fds") >= 3
    assert abs(_metric(text, "process_start_time_seconds") - time.time()) < 120
    assert _metric(text, "fastgate_last_reload_success") == 1
    assert _metric(text, 'fastgate_reloads_total{result="ok"}') == 0
    # a bad reload, then a good one
    good = gw.conf.read_text()
    gw.conf.write_text(good.replace("fastgate_status;", "nonsense;"))
    gw.signal(signal.SIGHUP)
    assert wait_for_text(errlog, "keeps serving")
    text = _status(port)
    assert _metric(text, 'fastgate_reloads_total{result="failed"}') == 1
    assert _metric(text, "fastgate_last_reload_success") == 0
    gw.conf.write_text(good)
    gw.signal(signal.SIGHUP)
    assert wait_for_text(errlog, "reconfiguring")
    deadline = time.time() + 10
    while time.time() < deadline:
        text = _status(port)
        if _metric(text, 'fastgate_reloads_total{result="ok"}') == 1:
            break
        time.sleep(0.1)
    assert _metric(text, "fastgate_last_reload_success") == 1
    assert abs(_metric(text, "fastgate_last_reload_timestamp_seconds") - time.time()) < 60
    assert _metric(text, 'fastgate_limit_rejected_total{zone="tight"}') == 5  # zone kept
    promtool = shutil.which("promtool")
    if promtool is not None:
        check = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                               capture_output=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr


def test_fastgate_alone_runs_fastgate_conf_when_there_is_one(tmp_path: Path, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    (tmp_path / "fastgate.conf").write_text(server(port, "return 204;", "access_log off;"))
    proc = subprocess.Popen([sys.executable, "-m", "fastgate"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, proc)
        assert get(port) == 204  # this configuration, not the demo's /api/
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "curl" not in out, err
    assert f"listening on http://127.0.0.1:{port}" in err


def test_a_head_that_never_completes_is_logged_408(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    log = tmp_path / "a.log"
    gateway(server(port, "return 204;", f"access_log {log}; client_header_timeout 1s;"), port)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")  # and nothing more
        assert s.recv(100) == b""  # closed without an answer, as nginx
    assert wait_for_text(log, " 408 ")
    assert re.fullmatch(r'127\.0\.0\.1 - - \[.*\] "-" 408 0 "-" "-"\n', log.read_text())


@pytest.mark.parametrize("sig", [signal.SIGQUIT, signal.SIGTERM])
def test_a_stop_while_workers_start_stops_them(tmp_path: Path, free, sig: int) -> None:  # type: ignore[no-untyped-def]
    # the signal reaches workers that have no handler yet (they were left to the default
    # action, a core dump for SIGQUIT, and a stop hung)
    port = free()
    conf = tmp_path / "f.conf"
    conf.write_text("worker_processes 8;\n" + server(port, "return 204;", "access_log off;"))
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "fastgate", "-c", str(conf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_port(port, proc)  # the master's socket: the workers are still starting
        proc.send_signal(sig)
        try:
            proc.wait(15)
        finally:
            if proc.poll() is None:
                proc.kill()
        err = proc.stderr.read()  # type: ignore[union-attr]
        assert proc.returncode == 0, err
        assert "exited on signal" not in err and "Traceback" not in err
