"""``listen unix:PATH`` beside nginx 1.22: an HTTP server on a unix socket, its
addresses as nginx's variables give them (``$remote_addr`` ``unix:``, ``$server_addr``
``unix:PATH``, no ports), redirects without a port, the proxied request; the socket's
file made at start and removed at the stop, as nginx's; a file already at the path is
nginx's ``bind() ... failed (98: Address already in use)``. Then, on both engines and
both exchange paths: a request auth_jwt refuses over the socket reaches no backend."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, wait_port
from e2e_util import NGINX, bearer, beside_nginx, stop_process
from raw_backend import RawBackend

SECRET = "unix-listen-secret-0123456789abcdef-xy"

BLOCK = """
http {
  access_log off;
  upstream be { server 127.0.0.1:BE; keepalive 4; }
  server {
    listen unix:SOCK; listen 127.0.0.1:PORT;
    location / { return 200 "[$remote_addr][$remote_port][$server_addr][$server_port][$host]\\n"; }
    location /r { return 301 /there; }
    location /dir/ { root HOME; }
    location /deny/ { deny unix:; empty_gif; }
    location /allowunix/ { allow unix:; deny all; empty_gif; }
    location /denyall/ { allow 127.0.0.1; allow ::1; deny all; empty_gif; }
    location /realip/ { set_real_ip_from unix:; real_ip_header X-Forwarded-For;
      add_header X-A "[$remote_addr][$remote_port][$realip_remote_addr]"; empty_gif; }
    location /realipdeny/ { set_real_ip_from unix:; real_ip_header X-Forwarded-For;
      deny unix:; empty_gif; }
    location /norealip/ { set_real_ip_from 127.0.0.1; real_ip_header X-Forwarded-For;
      add_header X-A "[$remote_addr]"; empty_gif; }
    location /api/ { proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Real-IP $remote_addr; proxy_pass http://be; }
  }
}
"""


def over_unix(path: Path, raw: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(raw)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def _answer(out: bytes, sock: Path) -> tuple[bytes, list[bytes], bytes]:
    """The status line, the Location header, the body (the socket's path as SOCK)."""
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    where = [h for h in lines[1:] if h.lower().startswith((b"location:", b"x-a:"))]
    return lines[0], where, body.replace(str(sock).encode(), b"SOCK").replace(
        b"nginx/1.22.1", b"fastgate")  # (the error page's signature)


class Side:
    def __init__(self, kind: str, tmp: Path, backend: int) -> None:
        self.port = free_port()
        self.home = tmp / kind
        self.home.mkdir()
        (self.home / "dir").mkdir()
        self.sock = self.home / "front.sock"
        block = (BLOCK.replace("SOCK", str(self.sock)).replace("PORT", str(self.port))
                 .replace("HOME", str(self.home)).replace("BE", str(backend)))
        self.proc = beside_nginx(kind, self.home, block, "error")
        wait_port(self.port, self.proc)

    def ask(self, raw: bytes) -> tuple[bytes, list[bytes], bytes]:
        return _answer(over_unix(self.sock, raw), self.sock)

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Side, Side, RawBackend]]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    backend = RawBackend()
    made: list[Side] = []
    try:
        for kind in ("nginx", "fastgate"):
            made.append(Side(kind, tmp_path, backend.port))
        yield made[0], made[1], backend
    finally:
        for side in made:
            side.stop()
        backend.stop()


REQUESTS = [
    b"GET /a HTTP/1.1\r\nHost: front.example\r\nConnection: close\r\n\r\n",
    b"GET /a HTTP/1.0\r\n\r\n",
    b"GET /r HTTP/1.1\r\nHost: front.example\r\nConnection: close\r\n\r\n",
    b"GET /dir HTTP/1.1\r\nHost: front.example\r\nConnection: close\r\n\r\n",
    b"GET /deny/ HTTP/1.0\r\n\r\n",
    b"GET /allowunix/ HTTP/1.0\r\n\r\n",
    b"GET /denyall/ HTTP/1.0\r\n\r\n",
    b"GET /realip/ HTTP/1.0\r\nX-Forwarded-For: 10.0.0.1, 192.0.2.7:8080\r\n\r\n",
    b"GET /realip/ HTTP/1.0\r\nX-Forwarded-For: nonsense\r\n\r\n",
    b"GET /realipdeny/ HTTP/1.0\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n",
    b"GET /norealip/ HTTP/1.0\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n",
]

# what nginx answers them (the status line and the X-A header)
EXPECTED = {
    b"/deny/": (b"HTTP/1.1 403 Forbidden", []), b"/allowunix/": (b"HTTP/1.1 200 OK", []),
    b"/denyall/": (b"HTTP/1.1 403 Forbidden", []),
    b"/realip/": (b"HTTP/1.1 200 OK", [b"X-A: [192.0.2.7][8080][unix:]"]),
    b"/realipdeny/": (b"HTTP/1.1 200 OK", []),  # (the real address is no socket's)
    b"/norealip/": (b"HTTP/1.1 200 OK", [b"X-A: [unix:]"]),
}


def test_as_nginx(sides: tuple[Side, Side, RawBackend]) -> None:
    nginx, fastgate, backend = sides
    for raw in REQUESTS:
        want = nginx.ask(raw)
        assert fastgate.ask(raw) == want, raw
        expected = EXPECTED.get(raw.split(b" ")[1])
        if expected is not None and b"nonsense" not in raw:
            assert want[:2] == expected, (raw, want)
    assert nginx.ask(REQUESTS[0])[2] == b"[unix:][][unix:SOCK][][front.example]\n"
    ok = b"GET /api/y HTTP/1.1\r\nHost: h\r\nX-Real-IP: 6.6.6.6\r\nConnection: close\r\n\r\n"
    assert nginx.ask(ok)[0] == fastgate.ask(ok)[0] == b"HTTP/1.1 200 OK"
    (by_nginx, by_fastgate) = backend.requests()
    assert by_nginx.header(b"x-real-ip") == by_fastgate.header(b"x-real-ip") == [b"unix:"]
    assert nginx.sock.exists() and fastgate.sock.exists()
    for side in (nginx, fastgate):  # (the socket's file goes with the server)
        side.stop()
        assert not side.sock.exists(), side


def test_a_file_at_the_path_is_refused_as_nginx(tmp_path: Path) -> None:
    taken = tmp_path / "taken.sock"
    taken.write_text("")
    conf = tmp_path / "f.conf"
    conf.write_text(f"pid {tmp_path}/p.pid; error_log stderr;\n"
                    f"http {{ server {{ listen unix:{taken}; return 200; }} }}\n")
    done = subprocess.run([sys.executable, "-m", "fastgate", "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert f"bind() to unix:{taken} failed (98: Address already in use)" in done.stderr
    assert "Traceback" not in done.stderr and taken.exists()  # (not someone else's file)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_start_that_fails_leaves_no_socket_file(tmp_path: Path, workers: int) -> None:
    """The socket is bound, then another address cannot be: the start fails and the
    socket's file is gone with it (a second start would find it in the way)."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    sock = tmp_path / "front.sock"
    conf = tmp_path / "f.conf"
    conf.write_text(f"pid {tmp_path}/p.pid; error_log stderr; worker_processes {workers};\n"
                    f"http {{ server {{ listen unix:{sock}; return 200; }}\n"
                    f"  server {{ listen 127.0.0.1:{held.getsockname()[1]}; return 200; }} }}\n")
    try:
        done = subprocess.run([sys.executable, "-m", "fastgate", "-c", str(conf)],
                              capture_output=True, text=True, timeout=30)
    finally:
        held.close()
    assert done.returncode == 1 and "Address already in use" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not sock.exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_refused_request_reaches_no_backend(tmp_path: Path, engine: str,
                                              workers: int) -> None:
    """Over the socket, a request without a valid token reaches no backend, over a
    fresh upstream connection and over a pooled idle one (the callback path); a valid
    one does, its address ``unix:``. Under a master too (its workers share the socket,
    the master removes it at the stop)."""
    backend = RawBackend()
    sock = tmp_path / "front.sock"
    port = free_port()
    conf = tmp_path / "g.conf"
    conf.write_text(f"""pid {tmp_path}/g.pid; error_log stderr info;
worker_processes {workers}; http_engine {engine};
http {{ access_log off;
  upstream be {{ server 127.0.0.1:{backend.port}; keepalive 4; }}
  server {{ listen unix:{sock}; listen 127.0.0.1:{port};
    auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
    proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_set_header X-User $jwt_claim_sub;
    location / {{ proxy_pass http://be; }}
  }} }}
""")
    proc = subprocess.Popen([sys.executable, "-m", "fastgate", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, proc)
        good = bearer(SECRET)["Authorization"].encode()
        for _ in range(2):  # (the second over the pooled connection)
            out = over_unix(sock, b"GET /ok HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
                                  b"Authorization: " + good + b"\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 200")
        for auth in (b"", b"Authorization: Bearer a.b.c\r\n",
                     b"Authorization: " + bearer(SECRET, -60)["Authorization"].encode()
                     + b"\r\n",
                     b"Authorization: " + bearer("another-secret-of-32-bytes-01234")[
                         "Authorization"].encode() + b"\r\n"):
            out = over_unix(sock, b"POST /no HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n"
                                  b"X-User: forged\r\nConnection: close\r\n" + auth
                                  + b"\r\nSECRET-BODY")
            assert out.startswith(b"HTTP/1.1 401"), out
        time.sleep(0.1)
        assert len(backend.requests()) == 2 and not backend.seen(b"SECRET-BODY")
        assert not backend.seen(b"/no") and not backend.seen(b"forged")
        assert all(r.header(b"x-user") == [b'"alice"'] for r in backend.requests())
    finally:
        stop_process(proc)
        backend.stop()
    assert proc.returncode == 0 and not sock.exists()
    assert b"Traceback" not in (proc.stderr.read() if proc.stderr else b"")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_reload_keeps_the_socket_and_one_without_it_removes_it(tmp_path: Path,
                                                                 workers: int) -> None:
    sock = tmp_path / "front.sock"
    port = free_port()
    conf = tmp_path / "r.conf"

    def write(with_socket: bool, word: str) -> None:
        listen = f"listen unix:{sock}; " if with_socket else ""
        conf.write_text(f"pid {tmp_path}/r.pid; error_log stderr info; "
                        f"worker_processes {workers};\n"
                        f"http {{ access_log off; server {{ {listen}listen 127.0.0.1:{port}; "
                        f'return 200 "{word}\\n"; }} }}\n')

    def answer() -> bytes:
        return over_unix(sock, b"GET / HTTP/1.0\r\n\r\n").partition(b"\r\n\r\n")[2]

    write(True, "one")
    proc = subprocess.Popen([sys.executable, "-m", "fastgate", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        assert answer() == b"one\n"
        write(True, "two")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while answer() != b"two\n" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert answer() == b"two\n" and sock.exists()
        write(False, "three")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while sock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not sock.exists()
    finally:
        stop_process(proc)
