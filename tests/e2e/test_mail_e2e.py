"""The mail block end to end, beside nginx 1.22 and its mail modules (Debian's
libnginx-mod-mail, installed by ``make test``): the same configuration under both, the
same client bytes sent, and compared — what the client gets, what the auth_http server
is asked, what the mail server receives, and the error log's messages. IMAP and POP3:
capabilities, LOGIN with atoms, quoted strings and literals, AUTHENTICATE/AUTH PLAIN
and LOGIN, APOP and CRAM-MD5 with the salt, pipelined commands, a failed login with and
without Auth-Wait, STARTTLS (on and only), ``listen ... ssl``, the auth server's
errors, a mail server that refuses the login (with and without
proxy_pass_error_message), too many invalid commands, and a client that never logs in
getting nothing of the mail server's."""

from __future__ import annotations

import base64
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MODULE = Path("/usr/lib/nginx/modules/ngx_mail_module.so")


def _b64(text: bytes) -> bytes:
    return base64.b64encode(text)


class Recorder:
    """A TCP server that keeps every byte each connection sent it, and answers with
    ``respond(connection's bytes so far, the new line) -> reply | None``; a reply of
    b"CLOSE" closes the connection."""

    def __init__(self, greeting: bytes, respond: Callable[[bytes, bytes], bytes | None]
                 ) -> None:
        self.greeting = greeting
        self.respond = respond
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
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
            if self.greeting:
                conn.sendall(self.greeting)
            pending = b""
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                with self.lock:
                    self.received[index] += data
                pending += data
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    reply = self.respond(self.received[index], line + b"\n")
                    if reply == b"CLOSE":
                        return
                    if reply:
                        conn.sendall(reply)
        except OSError:
            return
        finally:
            conn.close()

    def take(self) -> list[bytes]:
        time.sleep(0.1)
        with self.lock:
            out = self.received
            self.received = []
        return out

    def close(self) -> None:
        self.sock.close()


def imap_backend(refuse: bool = False) -> Recorder:
    """An IMAP server: literals are asked for, the password's line is answered with the
    LOGIN's tag (NO when ``refuse``), then each command is answered "TAG OK echo"."""
    state = {"tag": b"", "left": 0}

    def respond(seen: bytes, line: bytes) -> bytes | None:
        m = re.match(rb"(\S+) LOGIN \{(\d+)\}\r\n$", line)
        if m and state["left"] == 0:
            state["tag"], state["left"] = m.group(1), 2
            return b"+ go ahead\r\n"
        if state["left"] == 2:
            state["left"] = 1
            return b"+ go ahead\r\n"
        if state["left"] == 1:
            state["left"] = 0
            if refuse:
                return state["tag"] + b" NO [AUTHENTICATIONFAILED] wrong password\r\n"
            return state["tag"] + b" OK [CAPABILITY IMAP4rev1] Logged in\r\n"
        tag = line.split(b" ", 1)[0]
        if b"LOGOUT" in line.upper():
            return b"* BYE backend\r\n" + tag + b" OK LOGOUT completed\r\n"
        return tag + b" OK echo " + line.strip() + b"\r\n"

    return Recorder(b"* OK [CAPABILITY IMAP4rev1] backend ready\r\n", respond)


def pop3_backend(refuse: bool = False) -> Recorder:
    def respond(seen: bytes, line: bytes) -> bytes | None:
        word = line.split(b" ", 1)[0].strip().upper()
        if word == b"USER":
            return b"+OK user\r\n"
        if word == b"PASS":
            return b"-ERR [AUTH] wrong password\r\n" if refuse else b"+OK logged in\r\n"
        if word == b"QUIT":
            return b"+OK bye\r\n"
        return b"+OK echo " + line.strip() + b"\r\n"

    return Recorder(b"+OK backend POP3\r\n", respond)


class AuthServer:
    """The auth_http server: keeps each request, answers with ``answer(request)``'s
    headers (a list of "Name: value")."""

    def __init__(self) -> None:
        self.answer: Callable[[bytes], list[str]] = lambda req: []
        self.requests: list[bytes] = []
        self.lock = threading.Lock()

        def respond(seen: bytes, line: bytes) -> bytes | None:
            if line != b"\r\n":  # (the blank line that ends the request)
                return None
            with self.lock:
                self.requests.append(seen)
            headers = "".join(h + "\r\n" for h in self.answer(seen))
            return f"HTTP/1.0 200 OK\r\n{headers}\r\n".encode()

        self.rec = Recorder(b"", respond)
        self.port = self.rec.port

    def take(self) -> list[bytes]:
        time.sleep(0.1)
        with self.lock:
            out = self.requests
            self.requests = []
        return out


def ok_to(backend: Recorder, password: str | None = None) -> Callable[[bytes], list[str]]:
    def answer(req: bytes) -> list[str]:
        out = ["Auth-Status: OK", "Auth-Server: 127.0.0.1", f"Auth-Port: {backend.port}"]
        if password is not None:
            out.append(f"Auth-Pass: {password}")
        return out

    return answer


class Side:
    """nginx or fastgate running ``mail { BLOCK }``; PORTn in the block become free
    ports of its own, AUTH the auth server's address, HOME the test's directory."""

    def __init__(self, kind: str, tmp: Path, block: str, auth: AuthServer,
                 nports: int) -> None:
        self.kind = kind
        self.ports = [free_port() for _ in range(nports)]
        home = tmp / kind
        home.mkdir(exist_ok=True)
        self.errors = home / "error.log"
        for i in reversed(range(nports)):
            block = block.replace(f"PORT{i}", str(self.ports[i]))
        block = block.replace("AUTH", f"127.0.0.1:{auth.port}").replace("HOME", str(tmp))
        mail = f"mail {{ server_name mail.test;\n{block}\n}}\n"
        if kind == "nginx":
            conf = home / "nginx.conf"
            conf.write_text(f"load_module {MODULE};\ndaemon off; master_process off; "
                            f"worker_processes 1; user root; pid {home}/nginx.pid;\n"
                            f"error_log {self.errors} info;\nevents {{ }}\n{mail}")
            cmd = [NGINX, "-p", str(home), "-c", str(conf)]
        else:
            conf = home / "fastgate.conf"
            conf.write_text(f"pid {home}/fg.pid; error_log {self.errors} info;\n{mail}")
            cmd = [sys.executable, "-m", "fastgate", "-c", str(conf)]
        stderr = home / "stderr"
        with open(stderr, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=out)
        deadline = time.time() + 10
        for port in self.ports:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{kind} did not start: {stderr.read_text()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.05)
        # (the start's notices and the probes' "connected" lines are not compared)
        while self.errors.read_text().count(" connected to ") < nports \
                and time.time() < deadline:
            time.sleep(0.02)
        self.errors.write_text("")

    def messages(self, level: str = "") -> list[str]:
        """The error log's messages (without the time and process prefix), at ``level``
        (or every level)."""
        time.sleep(0.1)
        out = []
        for line in self.errors.read_text().splitlines():
            m = re.match(r"\S+ \S+ \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)$", line)
            if m and (not level or m.group(1) == level):
                text = re.sub(r"(client 127\.0\.0\.1):\d+ connected", r"\1:N connected",
                              m.group(2))
                for i, port in enumerate(self.ports):
                    text = text.replace(f":{port}", f":PORT{i}")
                out.append(text)
        self.errors.write_text("")
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def both(tmp: Path, block: str, auth: AuthServer, nports: int = 1
         ) -> Iterator[tuple[Side, Side]]:
    for needed in (Path(NGINX), MODULE):
        if not needed.exists():
            pytest.skip(f"{needed} is installed by make test (test-deps)")
    sides: list[Side] = []
    try:
        for kind in ("nginx", "fastgate"):
            sides.append(Side(kind, tmp, block, auth, nports))
        yield sides[0], sides[1]
    finally:
        for side in sides:
            side.stop()


class Client:
    """A mail client: each line sent, and what comes back until a pause."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock: socket.socket = tls.wrap_socket(sock) if tls is not None else sock

    def read(self, quiet: float = 0.15, until_closed: bool = False) -> bytes:
        out = b""
        self.sock.settimeout(quiet if not until_closed else 5)
        while True:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return out
            except OSError:
                return out + b"<reset>"
            if not data:
                return out + b"<closed>"
            out += data
            self.sock.settimeout(quiet)

    def say(self, data: bytes, quiet: float = 0.15) -> bytes:
        self.sock.sendall(data)
        return self.read(quiet)

    def starttls(self, ctx: ssl.SSLContext) -> None:
        self.sock = ctx.wrap_socket(self.sock)

    def close(self) -> None:
        self.sock.close()


def script(port: int, lines: list[bytes], tls: ssl.SSLContext | None = None) -> list[bytes]:
    """The greeting, then each line's answer; the last read waits for the close."""
    c = Client(port, tls)
    try:
        out = [c.read()]
        for line in lines:
            out.append(c.say(line))
        return out
    finally:
        c.close()


SALT = re.compile(rb"<\d+\.\d+@mail\.test>")


def same(nginx: list[bytes], fastgate: list[bytes]) -> None:
    norm = [[SALT.sub(b"<SALT>", x) for x in side] for side in (nginx, fastgate)]
    assert norm[1] == norm[0]


def requests_same(nginx: list[bytes], fastgate: list[bytes]) -> None:
    """The auth server's requests: the same but for the salt and the client's port."""
    def norm(r: bytes) -> bytes:
        return SALT.sub(b"<SALT>", r)
    assert [norm(r) for r in fastgate] == [norm(r) for r in nginx]
    assert nginx  # (the comparison saw requests)


IMAP = """
server { listen 127.0.0.1:PORT0; protocol imap; auth_http AUTH/mail/auth;
         auth_http_header X-Gateway test; imap_capabilities IMAP4rev1 IDLE;
         imap_auth plain login cram-md5; }
"""


@pytest.fixture
def auth() -> Iterator[AuthServer]:
    a = AuthServer()
    yield a
    a.rec.close()


def _each(tmp: Path, auth: AuthServer, backend: Recorder, block: str,
          run: Callable[[Side], list[bytes]], nports: int = 1,
          ) -> tuple[list[list[bytes]], list[list[bytes]], list[list[bytes]], list[list[str]]]:
    """``run`` on nginx then on fastgate: what the client got, what the auth server was
    asked, what the mail server received, and the error log's messages, for each."""
    got, asked, received, logged = [], [], [], []
    with both(tmp, block, auth, nports) as sides:
        for side in sides:
            got.append(run(side))
            asked.append(auth.take())
            received.append(backend.take())
            logged.append(side.messages())
    return got, asked, received, logged


def _compare(got: list[list[bytes]], asked: list[list[bytes]],
             received: list[list[bytes]], logged: list[list[str]]) -> None:
    same(got[0], got[1])
    requests_same(asked[0], asked[1])
    assert received[1] == received[0]
    assert logged[1] == logged[0], (logged[0], logged[1])


def test_imap_login_and_proxy(tmp_path: Path, auth: AuthServer) -> None:
    """Capabilities, NOOP, invalid commands, LOGIN with quoted strings: the auth server
    asked, the mail server logged in to with literals, the session proxied."""
    backend = imap_backend()
    auth.answer = ok_to(backend)
    lines = [b"a0 CAPABILITY\r\n", b"a1 NOOP\r\n", b"bogus\r\n", b"x1 FETCH 1\r\n",
             b'a2 LOGIN "us er" "p\\"w"\r\n', b"a3 SELECT INBOX\r\n", b"a4 LOGOUT\r\n"]
    out = _each(tmp_path, auth, backend, IMAP, lambda side: script(side.ports[0], lines))
    _compare(*out)
    got, asked, received, _ = out
    assert got[1][5] == b"a2 OK [CAPABILITY IMAP4rev1] Logged in\r\n"
    assert b"Auth-User: us%20er\r\n" in asked[1][0]
    assert received[1] == [b'a2 LOGIN {5}\r\nus er {3}\r\np"w\r\na3 SELECT INBOX\r\n'
                           b"a4 LOGOUT\r\n"]
