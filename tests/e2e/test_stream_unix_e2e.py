"""The stream block on unix sockets, beside nginx 1.22: ``listen unix:PATH`` (its
clients' variables, ``allow``/``deny unix:``, ``set_real_ip_from unix:``, the PROXY
protocol header sent for such a client, TLS terminated on it), ``proxy_pass unix:PATH``,
``server unix:PATH`` in an upstream block, a value with variables naming a socket, TLS
to a socket, a socket that is not there; and the values with variables nginx cannot
proxy to, with its statuses and messages."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, wait_port
from e2e_util import stop_process
from helpers import self_signed
from test_stream_e2e import Side, TcpBackend, TlsBackend, both, settle, talk

FORMAT = ('$status "$remote_addr" "$server_addr" '
          '"$upstream_addr" $bytes_received')


def over(path: Path, data: bytes, tls: bool = False) -> bytes:
    """``talk`` over the unix socket at ``path`` (over TLS with ``tls``)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(str(path))
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname="front.example")
    return talk(0, data, sock=s)


@pytest.fixture
def short() -> Iterator[Path]:
    """A directory with a short path: the name a socket's TLS sends by default is the
    socket's path, and Python's ssl sends no name with a part (between dots) past 63
    bytes, as pytest's directories' are."""
    made = Path(tempfile.mkdtemp(prefix="fg-"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


@pytest.fixture
def sockets(tmp_path: Path, short: Path) -> Iterator[dict[str, TcpBackend]]:
    crt, key = self_signed(tmp_path, "backend.example")
    made = {"A": TcpBackend("A"), "U": TcpBackend("U", tmp_path / "a.sock"),
            "T": TlsBackend("T", crt, key, short / "t.sock")}
    yield made
    for be in made.values():
        be.stop()


def _said(line: str) -> str:
    """An error line's level and words, without the time, the process, the connection's
    number, the listening port and nginx's byte counts."""
    level, _, words = line.partition(" [")[2].partition("] ")
    words = re.sub(r"^\d+#\d+: (\*\d+ )?", "", words)
    words = re.sub(r", server: 127\.0\.0\.1:\d+", "", words)
    return level + " " + words.partition(", bytes from/to client:")[0]


def _lines(side: Side) -> list[str]:
    return [line.replace(str(side.home), "SIDE") for line in side.lines()]


def test_listen_and_proxy_pass_on_unix_sockets(tmp_path: Path, short: Path,
                                               sockets: dict[str, TcpBackend]) -> None:
    crt, key = self_signed(tmp_path, "front.example", stem="front-")
    block = f"""
  log_format u '{FORMAT}';
  access_log LOG u;
  upstream sock {{ server unix:HOME/a.sock; }}
  server {{ listen unix:SIDE/front.sock;
    return "[$remote_addr][$remote_port][$server_addr][$server_port]"; }}
  server {{ listen 127.0.0.1:PORT0; proxy_pass unix:HOME/a.sock; }}
  server {{ listen 127.0.0.1:PORT1; proxy_pass sock; }}
  server {{ listen 127.0.0.1:PORT2; set $s unix:HOME/a.sock; proxy_pass $s; }}
  server {{ listen 127.0.0.1:PORT3; proxy_pass unix:HOME/missing.sock; }}
  server {{ listen unix:SIDE/deny.sock; deny unix:; proxy_pass @A; }}
  server {{ listen unix:SIDE/allow.sock; allow unix:; deny all; proxy_pass sock; }}
  server {{ listen unix:SIDE/all.sock; allow 127.0.0.1; deny all; proxy_pass sock; }}
  server {{ listen unix:SIDE/pp.sock; proxy_protocol on; proxy_pass @A; }}
  server {{ listen unix:SIDE/ppin.sock proxy_protocol; set_real_ip_from unix:;
    return "$remote_addr:$remote_port $realip_remote_addr"; }}
  server {{ listen unix:SIDE/tls.sock ssl; ssl_certificate {crt};
    ssl_certificate_key {key}; proxy_pass unix:{short}/t.sock; proxy_ssl on;
    proxy_ssl_server_name on; }}
"""
    with both(tmp_path, block, sockets, 4) as (nginx, fastgate):
        n = 0
        for side in (nginx, fastgate):
            home = str(side.home).encode()
            assert over(side.home / "front.sock", b"").replace(home, b"SIDE") == \
                b"[unix:][][unix:SIDE/front.sock][]<closed>", side.kind
            assert talk(side.ports[0], b"zero") == b"U:zero"
            assert talk(side.ports[1], b"one") == b"U:one"
            assert talk(side.ports[2], b"two") == b"U:two"
            assert talk(side.ports[3], b"three") == b"<closed>"
            assert over(side.home / "deny.sock", b"x") == b"<closed>"
            assert over(side.home / "allow.sock", b"four") == b"U:four"
            assert over(side.home / "all.sock", b"x") == b"<closed>"
            # (the backend echoes each read: the header may come in one of its own)
            assert over(side.home / "pp.sock", b"five").replace(b"A:", b"") == \
                b"PROXY UNKNOWN\r\nfive"
            assert over(side.home / "ppin.sock", b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 443"
                        b"\r\n") == b"192.0.2.7:5555 unix:<closed>"
            assert over(side.home / "tls.sock", b"six", tls=True) == b"T:six"
            n += 11
            settle(side, n=11)
        assert _lines(fastgate) == _lines(nginx)
        assert sockets["A"].got() == [b"PROXY UNKNOWN\r\nfive"] * 2
        # (the name a unix socket's TLS sends by default is its path, as nginx's)
        assert sockets["T"].names == [str(short / "t.sock")] * 2
        for side in (nginx, fastgate):
            errors = side.errors.read_text()
            assert "[crit] " in errors
            assert (f"connect() to unix:{tmp_path}/missing.sock failed (2: No such file or "
                    "directory) while connecting to upstream, client: 127.0.0.1, server: "
                    f'127.0.0.1:{side.ports[3]}, upstream: "unix:{tmp_path}/missing.sock"'
                    ) in errors
            assert ("access forbidden by rule while initializing session, client: unix:, "
                    f"server: unix:{side.home}/deny.sock") in errors
    for side in (nginx, fastgate):  # (stopped: the sockets' files went with them)
        assert not (side.home / "front.sock").exists(), side.kind


VALUES = ["", "unix:", "127.0.0.1", ":80", "127.0.0.1:99999", "nohost.example:80",
          "[::1", "127.0.0.1:0", "http://127.0.0.1:80", "unix:/nonexistent-fg/x.sock",
          "[::1]", "[]:80", "[zz]:80", "[::1]x", "name.example", "127.0.0.1:80x",
          "UNIX:/nonexistent-fg/y.sock", "127.0.0.1:99?x"]


def test_values_nginx_cannot_proxy_to(tmp_path: Path, sockets: dict[str, TcpBackend]) -> None:
    """``proxy_pass $value`` given what is no address: nginx's status (500 for what it
    cannot read, 502 for what it cannot reach) and message, session by session."""
    servers = "".join(f'  server {{ listen 127.0.0.1:PORT{i}; set $s "{v}"; proxy_pass $s; }}\n'
                      for i, v in enumerate(VALUES))
    block = f"  log_format u '{FORMAT}';\n  access_log LOG u;\n{servers}"
    with both(tmp_path, block, sockets, len(VALUES)) as (nginx, fastgate):
        said: dict[str, list[str]] = {}
        for side in (nginx, fastgate):
            for i in range(len(VALUES)):
                assert talk(side.ports[i], b"x") == b"<closed>", (side.kind, VALUES[i])
            settle(side, n=len(VALUES))
            said[side.kind] = [_said(line) for line in side.errors.read_text().splitlines()
                               if "[error]" in line or "[crit]" in line]
        assert _lines(fastgate) == _lines(nginx)
        assert said["fastgate"] == said["nginx"]


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_a_reload_and_the_stop(tmp_path: Path, workers: int) -> None:
    """A stream server on a unix socket under a master too (its workers share the
    socket): a reload keeps it and serves the new configuration; the stop removes the
    socket's file."""
    sock = tmp_path / "s.sock"
    port = free_port()
    conf = tmp_path / "s.conf"

    def write(word: str) -> None:
        conf.write_text(f"pid {tmp_path}/s.pid; error_log stderr info; "
                        f"worker_processes {workers};\n"
                        f"stream {{ server {{ listen 127.0.0.1:{port}; return x; }}\n"
                        f'  server {{ listen unix:{sock}; return "{word}"; }} }}\n')

    write("one")
    proc = subprocess.Popen([sys.executable, "-m", "fastgate", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, proc)
        assert over(sock, b"") == b"one<closed>"
        write("two")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while over(sock, b"") != b"two<closed>" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert over(sock, b"") == b"two<closed>"
    finally:
        stop_process(proc)
    assert proc.returncode == 0 and not sock.exists()
    assert b"Traceback" not in (proc.stderr.read() if proc.stderr else b"")
