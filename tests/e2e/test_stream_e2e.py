"""The stream block end to end, beside nginx 1.22 and its stream module (Debian's
libnginx-mod-stream, installed by ``make test``): the same configuration under both,
the same bytes sent, and what the client gets, what each backend receives and the
access log's lines compared — proxying and its byte counts, return, allow/deny, the
next server after a failed connect, no live servers, ssl_preread routing by SNI, the
PROXY protocol both ways, TLS termination, proxy_timeout, half-close, a client that
sends and leaves before the upstream is there, and the balancing methods."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from helpers import self_signed

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
FORMAT = ('$status $bytes_sent $bytes_received "$upstream_addr" "$upstream_bytes_sent" '
          '"$upstream_bytes_received" "$upstream_connect_time" [$ssl_preread_server_name] '
          '[$ssl_preread_alpn_protocols] [$ssl_preread_protocol] $protocol '
          '[$proxy_protocol_addr]')


def _free() -> int:
    return free_port()  # (a range of this worker's own: see conftest)


class TcpBackend:
    """Echoes each read as ``NAME:bytes``; at the client's end of sending, says
    ``bye:NAME`` and closes. Keeps every byte each connection sent it."""

    def __init__(self, name: str, unix: Path | None = None) -> None:
        self.name = name.encode()
        self.sock = socket.socket(socket.AF_UNIX if unix is not None else socket.AF_INET)
        self.sock.bind(str(unix) if unix is not None else ("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = 0 if unix is not None else self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.lock = threading.Lock()
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self.lock:
            index = len(self.received)
            self.received.append(b"")
        conn.settimeout(10)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    conn.sendall(b"bye:" + self.name + b"\n")
                    break
                with self.lock:
                    self.received[index] += data
                conn.sendall(self.name + b":" + data)
        except OSError:
            pass
        finally:
            conn.close()

    def got(self) -> list[bytes]:
        with self.lock:
            return [r for r in self.received if r]

    def stop(self) -> None:
        self.running = False
        self.sock.close()


class TlsBackend(TcpBackend):
    """A TcpBackend over TLS, keeping the name each client sent (SNI; "" for none)."""

    def __init__(self, name: str, crt: Path, key: Path, unix: Path | None = None) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(crt, key)
        self.names: list[str] = []
        self.ctx.sni_callback = lambda obj, sni, ctx: self.names.append(sni or "")  # type: ignore[assignment,func-returns-value]
        super().__init__(name, unix)

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except OSError:
            conn.close()
            return
        super()._serve(tls)


class Side:
    """nginx or fastgate running ``stream { BLOCK }``: PORTn in the block become free
    ports of its own, A/B/C the backends' addresses, HOME the test's directory, SIDE a
    directory of its own (``self.home``)."""

    def __init__(self, kind: str, tmp: Path, block: str, backends: dict[str, TcpBackend],
                 nports: int, modules: tuple[Path, ...] = ()) -> None:
        self.kind = kind
        self.ports = [_free() for _ in range(nports)]
        self.ready = _free()
        home = self.home = tmp / kind
        home.mkdir(exist_ok=True)
        self.log = home / "stream.log"
        self.errors = home / "error.log"
        for i in reversed(range(nports)):
            block = block.replace(f"PORT{i}", str(self.ports[i]))
        for name, be in backends.items():
            block = block.replace(f"@{name}", f"127.0.0.1:{be.port}")
        # (the access log written 50 ms after a line, not fastgate's default second:
        # each comparison waits for both sides' lines)
        block = re.sub(r"access_log LOG (\w+);", r"access_log LOG \1 buffer=32k flush=50ms;",
                       block)
        block = (block.replace("SIDE", str(home)).replace("HOME", str(tmp))
                 .replace("LOG", str(self.log)))
        stream = (f"stream {{ log_format test '{FORMAT}';\n"
                  f"  server {{ listen 127.0.0.1:{self.ready}; access_log off; return ''; }}\n"
                  f"{block}\n}}\n")
        if kind == "nginx":
            conf = home / "nginx.conf"
            loads = "".join(f"load_module {m};\n" for m in (MODULE, *modules))
            conf.write_text(f"{loads}daemon off; master_process off; "
                            f"worker_processes 1; user root; pid {home}/nginx.pid;\n"
                            f"error_log {self.errors} info;\nevents {{ }}\n{stream}")
            cmd = [NGINX, "-p", str(home), "-c", str(conf)]
        else:
            conf = home / "fastgate.conf"
            conf.write_text(f"pid {home}/fg.pid; error_log {self.errors} info;\n{stream}")
            cmd = [sys.executable, "-m", "fastgate", "-c", str(conf)]
        stderr = home / "stderr"
        with open(stderr, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=out)
        deadline = time.time() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{kind} did not start: {stderr.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.ready), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def lines(self) -> list[str]:
        for _ in range(50):  # (a session's line is written as it ends)
            if self.log.exists():
                break
            time.sleep(0.05)
        return self.log.read_text().splitlines() if self.log.exists() else []

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def both(tmp: Path, block: str, backends: dict[str, TcpBackend], nports: int,
         modules: tuple[Path, ...] = ()) -> Iterator[tuple[Side, Side]]:
    for needed in (Path(NGINX), MODULE):
        if not needed.exists():
            pytest.skip(f"{needed} is installed by make test (test-deps)")
    sides: list[Side] = []
    try:
        for kind in ("nginx", "fastgate"):
            sides.append(Side(kind, tmp, block, backends, nports, modules))
        yield sides[0], sides[1]
    finally:
        for side in sides:
            side.stop()


def talk(port: int, data: bytes = b"", shut: bool = False, wait: float = 0.3,
         sock: socket.socket | None = None) -> bytes:
    """Connect, send ``data`` (then shut the writing side with ``shut``), and read
    until the connection closes or nothing comes for ``wait`` seconds."""
    s = sock or socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        try:
            if data:
                s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:  # closed already (a refusal): what came is read below
            pass
        s.settimeout(wait)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                # a close with the client's bytes unread, which the system answers with a
                # reset (nginx's, when it has not read them; fastgate reads them first)
                out += b"<closed>"
                break
            if not chunk:
                out += b"<closed>"
                break
            out += chunk
        return out
    finally:
        s.close()


def settle(*sides: Side, n: int) -> None:
    """Until each side has logged ``n`` sessions."""
    deadline = time.time() + 5
    while time.time() < deadline and any(len(s.lines()) < n for s in sides):
        time.sleep(0.05)


@pytest.fixture
def backends() -> Iterator[dict[str, TcpBackend]]:
    made = {name: TcpBackend(name) for name in ("A", "B", "C")}
    yield made
    for be in made.values():
        be.stop()


def _same_lines(nginx: Side, fastgate: Side, n: int, answers: bool = True) -> None:
    """The access logs' lines alike; ``answers`` False: what the servers sent back is
    not compared (a client that reads the first bytes and goes: how much more came
    first is a race, on nginx's side too)."""
    settle(nginx, fastgate, n=n)
    theirs, ours = nginx.lines(), fastgate.lines()
    assert len(ours) == len(theirs) == n, (theirs, ours)
    dead = re.compile(r"127\.0\.0\.1:\d+")
    for a, b in zip(theirs, ours, strict=True):
        # the connect time is a measure, not a value; ports of a dead server differ
        a, b = (re.sub(r"\d+\.\d{3}", "T", x) for x in (a, b))
        if not answers:  # ($bytes_sent, $upstream_bytes_received)
            a, b = (re.sub(r'^(\d+) \d+ (\S+ "[^"]*" "[^"]*") "[^"]*"', r'\1 N \2 "N"', x)
                    for x in (a, b))
        assert dead.sub("ADDR", a) == dead.sub("ADDR", b)


def test_proxying_return_and_access(tmp_path: Path, backends: dict[str, TcpBackend]) -> None:
    dead = _free()
    block = f"""
  upstream two {{ server 127.0.0.1:{dead}; server @A; }}
  upstream none {{ server 127.0.0.1:{dead}; }}
  access_log LOG test;
  server {{ listen 127.0.0.1:PORT0; proxy_pass @A; }}
  server {{ listen 127.0.0.1:PORT1; return "hi $remote_addr $protocol $server_port-x\\n"; }}
  server {{ listen 127.0.0.1:PORT2; deny 127.0.0.1; allow all; proxy_pass @A; }}
  server {{ listen 127.0.0.1:PORT3; proxy_pass two; }}
  server {{ listen 127.0.0.1:PORT4; proxy_pass none; }}
  server {{ listen 127.0.0.1:PORT5; proxy_next_upstream off; proxy_pass two; }}
"""
    with both(tmp_path, block, backends, 6) as (nginx, fastgate):
        for step, (port, data, shut) in enumerate([
                (0, b"one\n", False), (1, b"", False), (2, b"two\n", True), (3, b"three\n", False),
                (4, b"four\n", False), (5, b"five\n", False)]):
            want = talk(nginx.ports[port], data, shut)
            got = talk(fastgate.ports[port], data, shut)
            assert got == want.replace(str(nginx.ports[port]).encode(),
                                       str(fastgate.ports[port]).encode()), (port, want, got)
            settle(nginx, fastgate, n=step + 1)
        # (the dead server failed once on port 3: out for fail_timeout, so port 5's
        # session goes to A without a next try)
        assert sorted(backends["A"].got()) == sorted([b"one\n", b"three\n", b"five\n"] * 2)
        _same_lines(nginx, fastgate, 6)
        for said in ("access forbidden by rule while initializing session",
                     "connect() failed (111: Connection refused) while connecting to upstream",
                     "upstream server temporarily disabled while connecting to upstream"):
            assert said in nginx.errors.read_text()
            assert said in fastgate.errors.read_text()


def _client_hello(name: str | None, alpn: list[str] | None) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def test_preread_routes_by_server_name(tmp_path: Path, backends: dict[str, TcpBackend]) -> None:
    block = """
  map $ssl_preread_server_name $route { a.example @A; b.example @B; default @C; }
  access_log LOG test;
  server { listen 127.0.0.1:PORT0; ssl_preread on; proxy_pass $route; }
  server { listen 127.0.0.1:PORT1; ssl_preread on; preread_timeout 500ms;
    return "[$ssl_preread_server_name]"; }
"""
    hellos = [_client_hello("a.example", ["h2", "http/1.1"]),
              _client_hello("b.example", None), _client_hello(None, ["x"]),
              b"GET / HTTP/1.0\r\n\r\n"]
    with both(tmp_path, block, backends, 2) as (nginx, fastgate):
        n = 0
        for hello in hellos:
            for cut in (None, 7):  # the hello whole, and in two writes
                for side in (nginx, fastgate):
                    with socket.create_connection(("127.0.0.1", side.ports[0]), timeout=5) as s:
                        if cut:
                            s.sendall(hello[:cut])
                            time.sleep(0.05)
                        s.sendall(hello[cut or 0:])
                        got = s.recv(2)
                    assert got in (b"A:", b"B:", b"C:"), got
                n += 1
                settle(nginx, fastgate, n=n)
        # a client that sends part of a hello and waits: preread_timeout ends it
        for side in (nginx, fastgate):
            assert talk(side.ports[1], hellos[0][:20], wait=2) == b"<closed>"
        n += 1
        _same_lines(nginx, fastgate, n, answers=False)
        assert backends["A"].got()[:1] == [hellos[0]]


def test_proxy_protocol_both_ways_and_tls(tmp_path: Path, backends: dict[str, TcpBackend]) -> None:
    crt, key = self_signed(tmp_path)
    block = f"""
  access_log LOG test;
  server {{ listen 127.0.0.1:PORT0; proxy_protocol on; proxy_pass @A; }}
  server {{ listen 127.0.0.1:PORT1 proxy_protocol; return "$proxy_protocol_addr:$proxy_protocol_port $remote_addr"; }}
  server {{ listen 127.0.0.1:PORT2 ssl; ssl_certificate {crt}; ssl_certificate_key {key};
    proxy_pass @B; }}
  server {{ listen 127.0.0.1:PORT3 ssl; ssl_certificate {crt}; ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3; ssl_alpn h2 http/1.1;
    return "[$ssl_alpn_protocol] $ssl_protocol $ssl_server_name"; }}
"""
    with both(tmp_path, block, backends, 4) as (nginx, fastgate):
        said = []
        for side in (nginx, fastgate):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["x-other", "http/1.1"])
            with socket.create_connection(("127.0.0.1", side.ports[3]), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="name.example") as t:
                    said.append(t.recv(100))
        assert said[0] == said[1] == b"[http/1.1] TLSv1.3 name.example"
        for side in (nginx, fastgate):
            assert talk(side.ports[0], b"x").startswith(b"A:PROXY TCP4 127.0.0.1 127.0.0.1 ")
            assert talk(side.ports[1], b"PROXY TCP4 10.1.2.3 10.0.0.1 5555 443\r\n") == \
                b"10.1.2.3:5555 127.0.0.1<closed>"
            assert talk(side.ports[1], b"NOT A HEADER\r\n") == b"<closed>"
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with socket.create_connection(("127.0.0.1", side.ports[2]), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="x") as t:
                    t.sendall(b"secret")
                    assert t.recv(100) == b"B:secret"
        settle(nginx, fastgate, n=5)
        for got in (backends["A"].got(), backends["B"].got()):
            assert len(got) == 2
        a, b = backends["A"].got()
        assert a.split(b" ")[:4] == b.split(b" ")[:4]
        theirs, ours = nginx.lines(), fastgate.lines()
        assert [line.split()[0] for line in ours] == [line.split()[0] for line in theirs]


def test_tls_to_the_upstream(tmp_path: Path, backends: dict[str, TcpBackend]) -> None:
    crt, key = self_signed(tmp_path, "backend.example")
    tls = TlsBackend("T", crt, key)
    backends["T"] = tls
    # (without session reuse: nginx keeps one TLS session per upstream server, whichever
    # of its servers made it, so a verifying server would resume an unverified session)
    block = f"""
  access_log LOG test; proxy_ssl_session_reuse off;
  server {{ listen 127.0.0.1:PORT0; proxy_pass @T; proxy_ssl on; }}
  server {{ listen 127.0.0.1:PORT1; proxy_pass @T; proxy_ssl on; proxy_ssl_server_name on;
    proxy_ssl_name backend.example; }}
  server {{ listen 127.0.0.1:PORT2; proxy_pass @T; proxy_ssl on; proxy_ssl_verify on;
    proxy_ssl_trusted_certificate {crt}; proxy_ssl_name backend.example; }}
  server {{ listen 127.0.0.1:PORT3; proxy_pass @T; proxy_ssl on; proxy_ssl_verify on;
    proxy_ssl_trusted_certificate {crt}; proxy_ssl_name wrong.example; }}
  server {{ listen 127.0.0.1:PORT4; proxy_pass @T; proxy_ssl on; proxy_ssl_verify on;
    proxy_ssl_trusted_certificate {crt}; proxy_ssl_name $ssl_preread_server_name;
    ssl_preread on; }}
"""
    hello = _client_hello("backend.example", None)
    with both(tmp_path, block, backends, 5) as (nginx, fastgate):
        for i, data in enumerate((b"a", b"b", b"c", b"d", hello)):
            want = talk(nginx.ports[i], data)
            assert talk(fastgate.ports[i], data) == want, i
            settle(nginx, fastgate, n=i + 1)
        # no name without proxy_ssl_server_name, as nginx; with verify, the name checked
        # is sent (Python's ssl sends what it checks), which nginx does not
        assert tls.names[:4] == ["", "", "backend.example", "backend.example"]
        theirs, ours = nginx.lines(), fastgate.lines()
        assert [line.split()[0] for line in ours] == [line.split()[0] for line in theirs] \
            == ["200", "200", "200", "502", "200"]
        for side in (nginx, fastgate):
            assert 'upstream SSL certificate does not match "wrong.example" while SSL ' \
                   "handshaking to upstream" in side.errors.read_text()


def test_limit_conn(tmp_path: Path, backends: dict[str, TcpBackend]) -> None:
    block = """
  limit_conn_zone $binary_remote_addr zone=per_ip:1m;
  log_format lc '$status $limit_conn_status $bytes_sent';
  access_log LOG lc;
  server { listen 127.0.0.1:PORT0; limit_conn per_ip 1; proxy_pass @A; }
  server { listen 127.0.0.1:PORT1; limit_conn per_ip 1; limit_conn_dry_run on;
    limit_conn_log_level warn; proxy_pass @A; }
"""
    with both(tmp_path, block, backends, 2) as (nginx, fastgate):
        for side in (nginx, fastgate):
            held = socket.create_connection(("127.0.0.1", side.ports[0]), timeout=5)
            held.sendall(b"1")
            assert held.recv(10) == b"A:1"  # (one connection of this address, in use)
            assert talk(side.ports[0], b"2") == b"<closed>"  # a second: refused
            assert talk(side.ports[1], b"3") == b"A:3"  # dry run: let through, logged
            held.close()
            settle(side, n=3)
            assert talk(side.ports[0], b"4") == b"A:4"  # given back when it ended
        settle(nginx, fastgate, n=4)
        assert sorted(nginx.lines()) == sorted(fastgate.lines())
        assert "503 REJECTED 0" in fastgate.lines()
        for side in (nginx, fastgate):
            errors = side.errors.read_text()
            assert '[error]' in errors and 'limiting connections by zone "per_ip"' in errors
            assert '[warn]' in errors and 'limiting connections, dry run, by zone "per_ip"' \
                in errors


def test_rates(tmp_path: Path, backends: dict[str, TcpBackend]) -> None:
    """proxy_upload_rate and proxy_download_rate hold 64 KiB at 32 KiB/s to more than a
    second each way, as nginx's (a lower bound only: a slow machine takes longer), given
    as a size or through variables, read once connected; a variable's value that is no
    size is no limit, logged as nginx logs it."""
    block = """
  server { listen 127.0.0.1:PORT0; proxy_upload_rate 32k; proxy_pass @A; }
  server { listen 127.0.0.1:PORT1; proxy_download_rate 32k; proxy_pass @B; }
  server { listen 127.0.0.1:PORT2; set $up 32; proxy_upload_rate ${up}k; proxy_pass @A; }
  server { listen 127.0.0.1:PORT3; set $down 32k; proxy_download_rate $down;
           proxy_pass @B; }
  server { listen 127.0.0.1:PORT4; set $bad 12x; proxy_download_rate $bad;
           proxy_upload_rate $bad; proxy_pass @B; }
"""
    data = bytes(range(256)) * 256  # 64 KiB
    with both(tmp_path, block, backends, 5) as (nginx, fastgate):
        for side in (nginx, fastgate):
            with socket.create_connection(("127.0.0.1", side.ports[4]), timeout=10) as s:
                s.sendall(b"x")
                assert s.recv(100) == b"B:x"
            settle(side, n=1)
            errors = side.errors.read_text()
            assert errors.count('[error]') == 2, (side.kind, errors)
            assert errors.count('invalid size "12x" while connecting to upstream, client: '
                                '127.0.0.1, server: 127.0.0.1:') == 2, (side.kind, errors)

            def transfer(port: int, name: bytes, kind: str = side.kind) -> tuple[bytes, float]:
                begun = time.monotonic()
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(data)
                    got = b""
                    while len(got.replace(name + b":", b"")) < len(data):  # (no "A:" in data)
                        chunk = s.recv(65536)
                        assert chunk, kind
                        got += chunk
                return got.replace(name + b":", b""), time.monotonic() - begun

            # (the four at once: each connection has its own rate)
            ways = ((side.ports[0], b"A"), (side.ports[1], b"B"), (side.ports[2], b"A"),
                    (side.ports[3], b"B"))
            with ThreadPoolExecutor(max_workers=4) as pool:
                done = list(pool.map(lambda way: transfer(*way), ways))
            for (_, name), (got, spent) in zip(ways, done, strict=True):
                assert got == data
                assert 0.9 < spent < 10, (side.kind, name, spent)


class UdpBackend:
    """Answers each datagram with ``NAME:`` and it (``silent``: never), keeping them."""

    def __init__(self, name: str, silent: bool = False) -> None:
        self.name = name.encode()
        self.silent = silent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.got: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(65536)
            except OSError:
                return
            self.got.append(data)
            if not self.silent:
                self.sock.sendto(self.name + b":" + data, addr)

    def stop(self) -> None:
        self.sock.close()


def _udp(port: int, *datagrams: bytes, wait: float = 0.5) -> list[bytes]:
    """Send ``datagrams`` from one socket; what comes back within ``wait``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", port))
        for d in datagrams:
            s.send(d)
        s.settimeout(wait)
        out = []
        while True:
            try:
                out.append(s.recv(65536))
            except TimeoutError:
                return out
            except ConnectionRefusedError:
                out.append(b"<refused>")
                return out


def test_udp(tmp_path: Path, backends: dict[str, TcpBackend]) -> None:
    udp, quiet = UdpBackend("U"), UdpBackend("Q", silent=True)
    block = f"""
  log_format udp '$status $protocol $bytes_sent $bytes_received "$upstream_addr" '
                 '"$upstream_bytes_sent" "$upstream_bytes_received"';
  access_log LOG udp;
  server {{ listen 127.0.0.1:PORT0 udp; proxy_pass 127.0.0.1:{udp.port};
    proxy_responses 1; proxy_timeout 1s; }}
  server {{ listen 127.0.0.1:PORT1 udp; proxy_pass 127.0.0.1:{udp.port}; proxy_timeout 300ms; }}
  server {{ listen 127.0.0.1:PORT2 udp; return "hi $remote_addr $protocol"; }}
  server {{ listen 127.0.0.1:PORT3 udp; deny all; proxy_pass 127.0.0.1:{udp.port}; }}
  server {{ listen 127.0.0.1:PORT4 udp; proxy_pass 127.0.0.1:{quiet.port};
    proxy_responses 1; proxy_timeout 300ms; }}
  server {{ listen 127.0.0.1:PORT5 udp; proxy_pass 127.0.0.1:{udp.port}; proxy_requests 2;
    proxy_responses 1; proxy_timeout 1s; }}
  server {{ listen 127.0.0.1:PORT5; return tcp; }}
"""
    try:
        with both(tmp_path, block, backends, 6) as (nginx, fastgate):
            n = 0
            for port, datagrams, sessions in (
                    (0, (b"q1",), 1), (0, (b"q2",), 1), (1, (b"a", b"bb"), 1), (2, (b"x",), 1),
                    (3, (b"x",), 1), (4, (b"x",), 1), (5, (b"1", b"2", b"3"), 2)):
                want = _udp(nginx.ports[port], *datagrams)
                got = _udp(fastgate.ports[port], *datagrams)
                assert sorted(got) == sorted(want), (port, want, got)
                n += sessions
                settle(nginx, fastgate, n=n)
            for side in (nginx, fastgate):  # (TCP beside UDP, on one port)
                assert talk(side.ports[5]) == b"tcp<closed>"
            n += 1
            _same_lines(nginx, fastgate, n)
            assert "upstream timed out" in fastgate.errors.read_text()
    finally:
        udp.stop()
        quiet.stop()


def _issue(tmp: Path, name: str, issuer: tuple[Any, Any] | None, ca: bool) -> tuple[Any, Any]:
    """A certificate for ``name`` (signed by ``issuer``'s key, else by its own), written
    as NAME.pem with NAME.key."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer, issuer_name = issuer if issuer is not None else (key, subject)
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
            .public_key(key.public_key()).serial_number(0x1234)
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256()))
    (tmp / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return key, subject


def test_client_certificates(tmp_path: Path, backends: dict[str, TcpBackend]) -> None:
    crt, key = self_signed(tmp_path)
    ca = _issue(tmp_path, "ca", None, True)
    _issue(tmp_path, "alice", ca, False)
    _issue(tmp_path, "mallory", None, False)
    tls = f"ssl_certificate {crt}; ssl_certificate_key {key}; ssl_client_certificate HOME/ca.pem;"
    block = f"""
  log_format cert '$status "$ssl_client_verify" "$ssl_client_s_dn" "$ssl_client_serial"';
  access_log LOG cert;
  server {{ listen 127.0.0.1:PORT0 ssl; {tls} ssl_verify_client on; proxy_pass @A; }}
  server {{ listen 127.0.0.1:PORT1 ssl; {tls} ssl_verify_client optional_no_ca;
    return "$ssl_client_verify $ssl_client_s_dn"; }}
"""

    def speak(port: int, who: str | None) -> bytes:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if who:
            ctx.load_cert_chain(tmp_path / f"{who}.pem", tmp_path / f"{who}.key")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            try:
                with ctx.wrap_socket(raw, server_hostname="x") as t:
                    t.sendall(b"hi")
                    out = b""
                    while chunk := t.recv(100):
                        out += chunk
                        if out.startswith(b"A:"):
                            break
                    return out
            except (ssl.SSLError, OSError):
                return b"<cut>"

    with both(tmp_path, block, backends, 2) as (nginx, fastgate):
        n = 0
        for port in (0, 1):
            for who in ("alice", "mallory", None):
                assert speak(fastgate.ports[port], who) == speak(nginx.ports[port], who), \
                    (port, who)
                n += 1
                settle(nginx, fastgate, n=n)
        assert nginx.lines() == fastgate.lines()
        assert fastgate.lines()[:3] == ['200 "SUCCESS" "CN=alice" "1234"',
                                        '500 "FAILED:self-signed certificate" "CN=mallory" "1234"',
                                        '500 "NONE" "-" "-"']
        for said in ("client SSL certificate verify error: (18:self-signed certificate) while "
                     "SSL handshaking", "client sent no required SSL certificate while SSL "
                     "handshaking"):
            assert said in fastgate.errors.read_text() and said in nginx.errors.read_text()


def test_real_ip_from_a_trusted_proxy(tmp_path: Path, backends: dict[str, TcpBackend]) -> None:
    block = """
  log_format rip '$status $remote_addr $realip_remote_addr';
  access_log LOG rip;
  server { listen 127.0.0.1:PORT0 proxy_protocol; set_real_ip_from 127.0.0.0/8;
    return "$remote_addr:$remote_port $realip_remote_addr"; }
  server { listen 127.0.0.1:PORT1 proxy_protocol; set_real_ip_from 127.0.0.0/8;
    deny 10.9.9.9; return "let in"; }
  server { listen 127.0.0.1:PORT2 proxy_protocol; set_real_ip_from 192.0.2.0/24;
    set $who "from $remote_addr"; set $who "$who!"; return $who; }
"""
    header = b"PROXY TCP4 10.9.9.9 10.0.0.1 4444 443\r\n"
    with both(tmp_path, block, backends, 3) as (nginx, fastgate):
        for port in (0, 1, 2):
            assert talk(fastgate.ports[port], header) == talk(nginx.ports[port], header), port
        settle(nginx, fastgate, n=3)
        assert nginx.lines() == fastgate.lines() == [
            "200 10.9.9.9 127.0.0.1", "403 10.9.9.9 127.0.0.1", "200 127.0.0.1 127.0.0.1"]


def test_a_set_writes_a_map_s_variable(tmp_path: Path,
                                       backends: dict[str, TcpBackend]) -> None:
    """nginx's map variables are changeable: a server's set writes one (fastgate refused
    the configuration: "the duplicate variable"); where no set ran, the map answers."""
    block = """
  map $server_port $picked { default "map"; }
  server { listen 127.0.0.1:PORT0; set $before $picked; set $picked "set";
    return "$before:$picked"; }
  server { listen 127.0.0.1:PORT1; return "$picked"; }
"""
    with both(tmp_path, block, backends, 2) as (nginx, fastgate):
        for port in (0, 1):
            assert talk(fastgate.ports[port], b"") == talk(nginx.ports[port], b""), port
        assert talk(fastgate.ports[0], b"") == b"map:set<closed>"
        assert talk(fastgate.ports[1], b"") == b"map<closed>"


def test_names_resolved_by_the_resolver(tmp_path: Path, backends: dict[str, TcpBackend]) -> None:
    """The Docker-DNS idiom: set $to NAME:PORT; proxy_pass $to; with a resolver — the
    name asked of it (one question, then its TTL) and a name it does not know refused
    (502), as nginx."""
    from dns_server import DnsServer

    dns = DnsServer()
    dns.set("db.internal", ["127.0.0.1"], ttl=300)
    block = f"""
  log_format r '$status "$upstream_addr"';
  access_log LOG r;
  resolver 127.0.0.1:{dns.port} valid=300s; resolver_timeout 2s;
  server {{ listen 127.0.0.1:PORT0; set $to db.internal:{backends["A"].port}; proxy_pass $to; }}
  server {{ listen 127.0.0.1:PORT1; set $to nowhere.internal:{backends["A"].port};
    proxy_pass $to; }}
"""
    try:
        with both(tmp_path, block, backends, 2) as (nginx, fastgate):
            for side in (nginx, fastgate):
                assert talk(side.ports[0], b"1") == b"A:1"
                assert talk(side.ports[0], b"2") == b"A:2"
                assert talk(side.ports[1], b"3") == b"<closed>"
            settle(nginx, fastgate, n=6)
            theirs = [re.sub(r"\d+", "N", x) for x in nginx.lines()]
            assert [re.sub(r"\d+", "N", x) for x in fastgate.lines()] == theirs
            assert "nowhere.internal could not be resolved (3: Host not found)" in \
                fastgate.errors.read_text()
            assert "nowhere.internal could not be resolved (3: Host not found)" in \
                nginx.errors.read_text()
            assert dns.asked("db.internal") == 2  # (once each: the answer kept)
    finally:
        dns.stop()


def test_geoip_variables(tmp_path: Path, backends: dict[str, TcpBackend]) -> None:
    """$geoip_* of the client a trusted proxy names (Debian's databases), as nginx's
    stream GeoIP module (libnginx-mod-stream-geoip) finds them."""
    geoip = Path("/usr/share/GeoIP")
    module = Path("/usr/lib/nginx/modules/ngx_stream_geoip_module.so")
    for needed in (geoip / "GeoIP.dat", module):
        if not needed.exists():
            pytest.skip(f"{needed} is installed by make test (test-deps)")
    block = f"""
  geoip_country {geoip}/GeoIP.dat;
  map $geoip_country_code $zone {{ default other; US us; NL nl; }}
  server {{ listen 127.0.0.1:PORT0 proxy_protocol; set_real_ip_from 127.0.0.1;
    return "$remote_addr|$geoip_country_code|$geoip_country_code3|$geoip_country_name|$zone"; }}
"""
    with both(tmp_path, block, backends, 1, (module,)) as (nginx, fastgate):
        seen = set()
        for addr in ("8.8.8.8", "193.0.6.139", "81.2.69.160", "200.160.2.3", "10.1.2.3",
                     "127.0.0.1"):
            header = f"PROXY TCP4 {addr} 10.0.0.1 4444 443\r\n".encode()
            want = talk(nginx.ports[0], header)
            assert talk(fastgate.ports[0], header) == want, addr
            seen.add(want.split(b"|")[1])
        assert len(seen) > 2  # (the databases told the places apart)


def test_timeouts_half_close_and_early_leave(tmp_path: Path,
                                             backends: dict[str, TcpBackend]) -> None:
    block = """
  access_log LOG test;
  server { listen 127.0.0.1:PORT0; proxy_timeout 1s; proxy_pass @A; }
  server { listen 127.0.0.1:PORT1; proxy_half_close on; proxy_pass @B; }
  server { listen 127.0.0.1:PORT2; proxy_pass @C; }
"""
    with both(tmp_path, block, backends, 3) as (nginx, fastgate):
        for side in (nginx, fastgate):
            # idle past proxy_timeout: closed
            s = socket.create_connection(("127.0.0.1", side.ports[0]), timeout=5)
            s.sendall(b"ping")
            assert talk(0, sock=s, wait=3) == b"A:ping<closed>"
            # half-close: the upstream's answer after the client's end still comes
            assert talk(side.ports[1], b"q", True, wait=2) == b"B:qbye:B\n<closed>"
            # without it: the session ends with the client's end of sending
            out = talk(side.ports[2], b"r", True, wait=2)
            assert out.endswith(b"<closed>") and b"bye" not in out
        settle(nginx, fastgate, n=3)
        assert len(nginx.lines()) == len(fastgate.lines()) == 3


def test_balancing_as_nginx(tmp_path: Path, backends: dict[str, TcpBackend]) -> None:
    block = """
  upstream rr { server @A weight=2; server @B; server @C backup; }
  upstream hashed { hash $remote_port; server @A; server @B; server @C; }
  upstream ring { hash $remote_port consistent; server @A; server @B; server @C; }
  server { listen 127.0.0.1:PORT0; proxy_pass rr; }
  server { listen 127.0.0.1:PORT1; proxy_pass hashed; }
  server { listen 127.0.0.1:PORT2; proxy_pass ring; }
"""
    with both(tmp_path, block, backends, 3) as (nginx, fastgate):
        for index in range(3):
            seq: dict[str, dict[int, bytes]] = {}
            for side in (nginx, fastgate):
                names = {}
                # (the first 12 source ports that bind: under the full suite's two
                # workers, others' connections hold some of a short range)
                for port in range(40000 + index * 100, 40000 + index * 100 + 80):
                    if len(names) == 12:
                        break
                    s = socket.socket()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        s.bind(("127.0.0.1", port))
                    except OSError:  # (a port another test holds: left out, below)
                        s.close()
                        continue
                    s.settimeout(5)
                    with s:
                        s.connect(("127.0.0.1", side.ports[index]))
                        s.sendall(b".")
                        names[port] = s.recv(100)[:1]  # the answering backend's name
                seq[side.kind] = names
            theirs, ours = seq["nginx"], seq["fastgate"]
            if index == 0:  # round robin: the order, whatever the source ports
                n = min(len(theirs), len(ours))
                assert n >= 8 and list(ours.values())[:n] == list(theirs.values())[:n]
            else:  # hash of $remote_port: port by port, those both sides could use
                common = theirs.keys() & ours.keys()
                assert len(common) >= 8
                assert {p: ours[p] for p in common} == {p: theirs[p] for p in common}, index


def _unanswered() -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket whose accept queue is full: a connect to it hangs (its SYN is
    dropped) until the connecting side gives up. And the connections that fill it."""
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(full.getsockname())
        except BlockingIOError:
            pass
        fillers.append(s)
    time.sleep(0.2)
    return full, fillers


def test_max_conns_counts_a_connect_in_progress(tmp_path: Path,
                                                backends: dict[str, TcpBackend]) -> None:
    """A server's session counts against its max_conns from the connect on, as nginx's
    peer->conns does: while the first client's connect to a server that never answers
    is in progress, the second goes to the backup (fastgate counted a session once
    connected, and sent the second to the same hanging connect)."""
    full, fillers = _unanswered()
    block = f"""
  upstream held {{ server 127.0.0.1:{full.getsockname()[1]} max_conns=1; server @B backup; }}
  server {{ listen 127.0.0.1:PORT0; proxy_pass held; proxy_connect_timeout 3s; }}
"""
    try:
        with both(tmp_path, block, backends, 1) as (nginx, fastgate):
            for side in (nginx, fastgate):
                first = socket.create_connection(("127.0.0.1", side.ports[0]), timeout=10)
                first.sendall(b"1")
                time.sleep(0.3)  # (its connect to the full server is in progress)
                # (within the connect timeout: not after the full server's try gave up)
                with socket.create_connection(("127.0.0.1", side.ports[0]),
                                              timeout=1.5) as second:
                    second.sendall(b"2")
                    assert second.recv(100) == b"B:2", side.kind
                first.close()
    finally:
        for s in (full, *fillers):
            s.close()


def test_workers_and_a_reload(tmp_path: Path, backends: dict[str, TcpBackend],
                              gateway: Any, free: Any) -> None:
    """Under a master (worker_processes 2) the stream block's sockets and TLS contexts
    are the master's, beside an HTTP server; a reload (SIGHUP) changes what a stream
    server does without dropping its address."""
    crt, key = self_signed(tmp_path)
    http, plain, tls = free(), free(), free()

    def config(text: str) -> str:
        return (f"worker_processes 2; error_log {tmp_path}/error.log info;\n"
                f"http {{ access_log off; server {{ listen 127.0.0.1:{http}; return 200 web; }} }}\n"
                f"stream {{ server {{ listen 127.0.0.1:{plain}; return {text}; }}\n"
                f"  server {{ listen 127.0.0.1:{tls} ssl; ssl_certificate {crt}; "
                f"ssl_certificate_key {key}; proxy_pass 127.0.0.1:{backends['A'].port}; }} }}\n")

    gw = gateway(config("one"), http)  # (stopped by the fixture, failing on a traceback)
    assert talk(plain) == b"one<closed>"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for _ in range(4):  # (either worker)
        with socket.create_connection(("127.0.0.1", tls), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="x") as t:
                t.sendall(b"ping")
                assert t.recv(100) == b"A:ping"
    gw.conf.write_text(config("two"))
    gw.signal(signal.SIGHUP)
    deadline = time.time() + 10
    while talk(plain) != b"two<closed>":
        assert time.time() < deadline
        time.sleep(0.1)
    assert "Traceback" not in gw.stderr


def test_bad_bytes_never_crash_it(tmp_path: Path, backends: dict[str, TcpBackend],
                                  gateway: Any, free: Any) -> None:
    """Random bytes to every kind of stream listener (a PROXY header expected, a hello
    read ahead, TLS, UDP), cut at random points: no traceback, nothing past the phases
    that should refuse it, and the gateway still answers."""
    import random

    crt, key = self_signed(tmp_path)
    ports = [free() for _ in range(5)]
    be, guarded, behind_tls = backends["A"], backends["B"], backends["C"]
    gw = gateway(f"""error_log {tmp_path}/error.log info;
stream {{
  server {{ listen 127.0.0.1:{ports[0]} proxy_protocol; proxy_pass 127.0.0.1:{guarded.port}; }}
  server {{ listen 127.0.0.1:{ports[1]}; ssl_preread on; preread_timeout 1s;
    proxy_pass 127.0.0.1:{be.port}; }}
  server {{ listen 127.0.0.1:{ports[2]} ssl; ssl_certificate {crt}; ssl_certificate_key {key};
    ssl_handshake_timeout 1s; proxy_pass 127.0.0.1:{behind_tls.port}; }}
  server {{ listen 127.0.0.1:{ports[3]} udp; proxy_pass 127.0.0.1:{be.port}; proxy_timeout 1s; }}
  server {{ listen 127.0.0.1:{ports[4]}; return ok; }}
}}""", ports[4], wait=False)  # (its UDP port takes no TCP connection to wait with)
    deadline = time.time() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", ports[4]), timeout=0.2).close()
            break
        except OSError:
            assert time.time() < deadline, gw.stderr
            time.sleep(0.05)
    rng = random.Random(1905)
    prefixes = [b"", b"PROXY TCP4 ", b"PROXY TCP6 ::1 ", b"\r\n\r\n\x00\r\nQUIT\n",
                b"\x16\x03\x01\x00\x50\x01\x00\x00\x4c\x03\x03", b"\x16\x03\x03\xff\xff"]
    for _ in range(60):
        data = rng.choice(prefixes) + rng.randbytes(rng.randrange(0, 300))
        port = rng.choice(ports[:4])
        if port == ports[3]:
            _udp(port, data, wait=0.01)
            continue
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            try:
                s.sendall(data)
                if rng.random() < 0.5:
                    s.shutdown(socket.SHUT_WR)
                s.settimeout(0.05)
                s.recv(100)
            except OSError:
                pass
    # no PROXY header was whole, no handshake completed: those servers got nothing
    assert guarded.got() == [] and behind_tls.got() == []
    assert talk(ports[4]) == b"ok<closed>"
    assert "Traceback" not in gw.stderr and "unexpected error" not in gw.stderr


def test_a_slow_reader_slows_the_server_and_gets_every_byte(tmp_path: Path, gateway: Any,
                                                            free: Any) -> None:
    """Flow control both ways: a client that does not read holds the server's sending
    back (fastgate does not buffer without end), and then gets every byte, in order."""
    total = 48 * 1024 * 1024
    sent = [0]
    done = threading.Event()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve() -> None:
        while True:  # (the gateway's start is waited for with a connection that says nothing)
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.settimeout(20)
            try:
                if conn.recv(1) != b"g":
                    conn.close()
                    continue
            except OSError:
                conn.close()
                continue
            break
        block = bytes(range(256)) * 256  # 64 KiB
        with conn:
            try:
                while sent[0] < total:
                    conn.sendall(block)
                    sent[0] += len(block)
            except OSError:
                pass
        done.set()

    threading.Thread(target=serve, daemon=True).start()
    port = free()
    gateway(f"stream {{ server {{ listen 127.0.0.1:{port}; "
            f"proxy_pass 127.0.0.1:{srv.getsockname()[1]}; }} }}", port)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as c:
            c.sendall(b"g")
            time.sleep(1.5)  # (not reading)
            held_back = sent[0]
            assert held_back < total // 2, held_back  # the server waits on the client
            got = 0
            while got < total:
                chunk = c.recv(1 << 20)
                assert chunk
                for i in range(0, len(chunk), 4099):  # (spot checks of the order)
                    assert chunk[i] == (got + i) % 256
                got += len(chunk)
            assert got == total
        assert done.wait(10)
    finally:
        srv.close()
