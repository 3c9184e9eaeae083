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
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from e2e_util import NGINX, Listener, beside_nginx, stop_process
from helpers import self_signed

MODULE = Path("/usr/lib/nginx/modules/ngx_mail_module.so")


def _b64(text: bytes) -> bytes:
    return base64.b64encode(text)


class Recorder:
    """A TCP server that keeps every byte each connection sent it, and answers with
    ``respond(connection's bytes so far, the new line) -> reply | None``; a reply of
    b"CLOSE" closes the connection."""

    def __init__(self, greeting: bytes, respond: Callable[[bytes, bytes], bytes | None],
                 unix: Path | None = None) -> None:
        self.greeting = greeting
        self.respond = respond
        self.received: list[bytes] = []
        self.lock = threading.Lock()
        self.listener = Listener(self._serve, unix, backlog=64)
        self.port = self.listener.port

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
        self.listener.stop()


def imap_backend(refuse: bool = False) -> Recorder:
    """An IMAP server: literals are asked for, the password's line is answered with the
    LOGIN's tag (NO when ``refuse``), then each command is answered "TAG OK echo"."""
    state = {"tag": b"", "left": 0}

    def respond(seen: bytes, line: bytes) -> bytes | None:
        if line.startswith(b"PROXY "):
            return None
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

    def __init__(self, unix: Path | None = None) -> None:
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

        self.rec = Recorder(b"", respond, unix)
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
    ports of its own, AUTH the auth server's address, HOME the test's directory, SIDE a
    directory of its own (``self.home``)."""

    def __init__(self, kind: str, tmp: Path, block: str, auth: AuthServer,
                 nports: int) -> None:
        self.kind = kind
        self.ports = [free_port() for _ in range(nports)]
        home = self.home = tmp / kind
        home.mkdir(exist_ok=True)
        self.errors = home / "error.log"
        for i in reversed(range(nports)):
            block = block.replace(f"PORT{i}", str(self.ports[i]))
        block = (block.replace("AUTH", f"127.0.0.1:{auth.port}").replace("SIDE", str(home))
                 .replace("HOME", str(tmp)))
        mail = f"mail {{ server_name mail.test;\n{block}\n}}\n"
        self.proc = beside_nginx(kind, home, mail, "info", (MODULE,))
        stderr = home / "stderr"
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
        # (the start's notices and the probes' lines are not compared: each probe's
        # "connected", said on accept by both, ssl ports included)
        while time.time() < deadline and \
                self.errors.read_text().count(" connected to ") < nports:
            time.sleep(0.02)
        time.sleep(0.2)  # (and what the probes' closes log: an ssl port's handshake)
        self.errors.write_text("")

    def messages(self, level: str = "") -> list[str]:
        """The error log's messages (without the time and process prefix), at ``level``
        (or every level)."""
        time.sleep(0.1)
        out = []
        for line in self.errors.read_text().splitlines():
            m = re.match(r"\S+ \S+ \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)$", line)
            if m and (not level or m.group(1) == level):
                text = re.sub(r"(client 127\.0\.0\.\d+):\d+ connected", r"\1:N connected",
                              m.group(2))
                # (OpenSSL's error code and library, which Python's ssl does not give)
                text = re.sub(r"SSL: error:[0-9A-F]+:SSL routines::", "SSL: ", text)
                for i, port in enumerate(self.ports):
                    text = text.replace(f":{port}", f":PORT{i}")
                out.append(text)
        self.errors.write_text("")
        return out

    def stop(self) -> None:
        stop_process(self.proc)


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


# the pause after a line that ends what a step reads
LINE_QUIET = 0.04


class Client:
    """A mail client: each line sent, and what comes back until a pause."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock: socket.socket = tls.wrap_socket(sock) if tls is not None else sock

    def read(self, quiet: float = 0.15, until_closed: bool = False) -> bytes:
        """What comes until a pause: ``quiet`` for the first bytes, then a shorter one
        once a line has ended (a reply comes in one write; one later than that is
        read with the next step's, which ``same`` allows for)."""
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
            self.sock.settimeout(min(quiet, LINE_QUIET) if out.endswith(b"\r\n")
                                 and not until_closed else quiet)

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


CHALLENGE = re.compile(rb"(\+|334) ([A-Za-z0-9+/=]{24,})\r\n")


def _unsalted(answer: bytes) -> bytes:
    """An answer with its salt (in clear, or a CRAM-MD5 challenge's base64) named."""
    def challenge(m: re.Match[bytes]) -> bytes:
        decoded = base64.b64decode(m.group(2))
        return m.group(1) + b" <SALT64>\r\n" if SALT.fullmatch(decoded) else m.group(0)
    return CHALLENGE.sub(challenge, SALT.sub(b"<SALT>", answer))


def same(nginx: list[bytes], fastgate: list[bytes]) -> None:
    """The same answers, step by step — or, when a loaded machine made a reply come
    after its step's quiet time (it is then read with the next step's), the same bytes
    on each connection, in the same order."""
    norm = [[_unsalted(x) for x in side] for side in (nginx, fastgate)]
    if norm[1] != norm[0]:
        def per_connection(side: list[bytes]) -> list[bytes]:
            return b"".join(side).split(b"--")
        assert per_connection(norm[1]) == per_connection(norm[0]), (norm[0], norm[1])


def requests_same(nginx: list[bytes], fastgate: list[bytes]) -> None:
    """The auth server's requests: the same but for the salt and the client's port."""
    def norm(r: bytes) -> bytes:
        return SALT.sub(b"<SALT>", r)
    assert [norm(r) for r in fastgate] == [norm(r) for r in nginx]


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
    # (sessions one after another may end in either order in the log)
    assert sorted(logged[1]) == sorted(logged[0]), (logged[0], logged[1])


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
    assert len(asked[1]) == 1
    assert got[1][5] == b"a2 OK [CAPABILITY IMAP4rev1] Logged in\r\n"
    assert b"Auth-User: us%20er\r\n" in asked[1][0]
    assert received[1] == [b'a2 LOGIN {5}\r\nus er {3}\r\np"w\r\na3 SELECT INBOX\r\n'
                           b"a4 LOGOUT\r\n"]


def _scripts(port: int, runs: list[list[bytes]]) -> list[bytes]:
    """Several connections one after the other: every answer of each, in order."""
    out: list[bytes] = []
    for lines in runs:
        out += script(port, lines) + [b"--"]
    return out


def test_imap_authenticate_mechanisms(tmp_path: Path, auth: AuthServer) -> None:
    """AUTHENTICATE PLAIN (with and without the initial response), LOGIN (its two
    steps, a bad base64 user name), CRAM-MD5 (the salt; the auth server gives the
    password), literals (synchronizing and not): each compared with nginx."""
    backend = imap_backend()

    def answer(req: bytes) -> list[str]:
        return ok_to(backend, "secret" if b"Auth-Salt" in req else None)(req)

    auth.answer = answer
    plain = _b64(b"\0alice\0pw")
    runs = [
        [b"a1 AUTHENTICATE PLAIN\r\n", plain + b"\r\n", b"a2 NOOP\r\n"],
        [b"b1 AUTHENTICATE PLAIN " + plain + b"\r\n"],
        [b"c1 authenticate login\r\n", _b64(b"bob") + b"\r\n", _b64(b"pw2") + b"\r\n"],
        [b"d1 AUTHENTICATE LOGIN\r\n", b"%%%\r\n", b"d2 NOOP\r\n"],
        [b"e1 AUTHENTICATE LOGIN " + _b64(b"carol") + b"\r\n", _b64(b"pw3") + b"\r\n"],
        [b"f1 AUTHENTICATE PLAIN\r\n", _b64(b"nouser") + b"\r\n", b"f2 NOOP\r\n"],
        [b"g1 LOGIN {4}\r\n", b"dave {3}\r\n", b"pw4\r\n"],
        [b"h1 LOGIN {3+}\r\nerin {2+}\r\npw\r\n"],
        [b"i1 AUTHENTICATE EXTERNAL\r\n", b"i2 AUTHENTICATE OTHER\r\n"],
    ]
    got, asked, received, logged = _each(tmp_path, auth, backend, IMAP,
                                         lambda side: _scripts(side.ports[0], runs))
    _compare(got, asked, received, logged)
    assert len(asked[1]) == 6


CRAM = """
server { listen 127.0.0.1:PORT0; protocol imap; auth_http AUTH/auth;
         imap_auth cram-md5 plain external; }
server { listen 127.0.0.1:PORT1; protocol pop3; auth_http AUTH/auth;
         pop3_auth plain apop cram-md5 external; pop3_capabilities TOP USER UIDL SASL-IR; }
"""


def test_salted_logins(tmp_path: Path, auth: AuthServer) -> None:
    """CRAM-MD5 (IMAP and POP3), APOP, EXTERNAL: the salt in the greeting or the
    challenge, Auth-Salt sent, and the auth server's Auth-Pass needed (without it:
    nginx's "did not send password")."""
    backend = imap_backend()
    pop = pop3_backend()
    with_pass = {"on": True}

    def answer(req: bytes) -> list[str]:
        to = backend if b"Auth-Protocol: imap" in req else pop
        return ok_to(to, "real" if with_pass["on"] else None)(req)

    auth.answer = answer
    digest = b"0123456789abcdef0123456789abcdef"
    imap_runs = [[b"a1 AUTHENTICATE CRAM-MD5\r\n", _b64(b"alice " + digest) + b"\r\n"],
                 [b"b1 AUTHENTICATE CRAM-MD5\r\n", _b64(b"alice short") + b"\r\n",
                  b"b2 AUTHENTICATE EXTERNAL " + _b64(b"ext") + b"\r\n"]]
    pop_runs = [[b"CAPA\r\n", b"AUTH\r\n", b"APOP alice " + digest + b"\r\n", b"STAT\r\n"],
                [b"AUTH CRAM-MD5\r\n", _b64(b"bob " + digest) + b"\r\n"],
                [b"AUTH EXTERNAL\r\n", _b64(b"carl") + b"\r\n"]]

    pop_received: list[list[bytes]] = []

    def run(side: Side) -> list[bytes]:
        with_pass["on"] = True
        out = _scripts(side.ports[0], imap_runs) + _scripts(side.ports[1], pop_runs)
        with_pass["on"] = False
        out += _scripts(side.ports[1], [[b"APOP alice " + digest + b"\r\n"]])
        pop_received.append(pop.take())
        return out

    got, asked, received, logged = _each(tmp_path, auth, backend, CRAM, run, nports=2)
    _compare(got, asked, received, logged)
    assert pop_received[1] == pop_received[0]
    assert pop_received[1] == [b"USER alice\r\nPASS real\r\nSTAT\r\n", b"USER bob\r\nPASS real\r\n",
                               b"USER carl\r\nPASS real\r\n"]
    assert any(b"Auth-Salt: <" in r for r in asked[1])
    assert any("did not send password" in m for m in logged[1])


POP3 = """
server { listen 127.0.0.1:PORT0; protocol pop3; auth_http AUTH/pop; }
"""


def test_pop3_login_and_proxy(tmp_path: Path, auth: AuthServer) -> None:
    """CAPA, AUTH, USER/PASS (spaces kept), AUTH PLAIN and LOGIN, invalid commands,
    APOP when not enabled, then the session proxied."""
    backend = pop3_backend()
    auth.answer = ok_to(backend)
    runs = [
        [b"CAPA\r\n", b"NOOP\r\n", b"AUTH\r\n", b"bogus\r\n", b"APOP a b\r\n",
         b"USER us er\r\n", b"CAPA\r\n", b"PASS p w\r\n", b"STAT\r\n", b"QUIT\r\n"],
        [b"AUTH PLAIN\r\n", _b64(b"\0bob\0pw") + b"\r\n", b"LIST\r\n"],
        [b"AUTH LOGIN " + _b64(b"carol") + b"\r\n", _b64(b"pw3") + b"\r\n"],
        [b"PASS early\r\n", b"USER\r\n", b"QUIT\r\n"],
    ]
    got, asked, received, logged = _each(tmp_path, auth, backend, POP3,
                                         lambda side: _scripts(side.ports[0], runs))
    _compare(got, asked, received, logged)
    assert received[1][0] == b"USER us er\r\nPASS p w\r\nSTAT\r\nQUIT\r\n"


def test_failed_logins(tmp_path: Path, auth: AuthServer) -> None:
    """The auth server says no: the error to the client (tagged NO, -ERR), at once and
    closed without Auth-Wait, after the wait and another try with it; the attempt
    counted; nothing of it reaches a mail server, the pipelined command neither."""
    backend = imap_backend()
    tries: dict[bytes, int] = {}

    def answer(req: bytes) -> list[str]:
        user = re.search(rb"Auth-User: (\S+)", req).group(1)  # type: ignore[union-attr]
        tries[user] = tries.get(user, 0) + 1
        if user == b"wait" and tries[user] == 1:
            return ["Auth-Status: Invalid login or password", "Auth-Wait: 1"]
        if user == b"later" and tries[user] == 1:
            return ["Auth-Status: WAIT", "Auth-Wait: 1"]
        if user.startswith(b"no"):
            return ["Auth-Status: Invalid login", "Auth-Error-Code: 535 5.7.8"]
        return ok_to(backend)(req)

    auth.answer = answer
    block = IMAP + POP3.replace("PORT0", "PORT1")
    runs = [[b"a1 LOGIN no pw\r\na2 SELECT INBOX\r\n"],
            [b"b1 LOGIN wait pw\r\n", b"b2 LOGIN wait pw\r\n", b"b3 NOOP\r\n"]]
    later = [b"c1 LOGIN later pw\r\n"]

    def run(side: Side) -> list[bytes]:
        tries.clear()
        c = Client(side.ports[0])
        c.read()
        c.sock.sendall(b"w1 LOGIN wait pw\r\n")
        first = c.read(quiet=1.6)  # (Auth-Wait: 1, then the NO)
        c.close()
        c = Client(side.ports[0])
        c.read()
        c.sock.sendall(later[0])
        asked_again = c.read(quiet=1.6)  # (WAIT: asked again a second later)
        c.close()
        return (_scripts(side.ports[0], runs) + [first, asked_again]
                + _scripts(side.ports[1], [[b"USER nobody\r\n", b"PASS pw\r\n", b"STAT\r\n"]]))

    got, asked, received, logged = _each(tmp_path, auth, backend, block, run, nports=2)
    _compare(got, asked, received, logged)
    assert all(b"no" not in r for r in received[1])
    assert sum(b"Auth-User: later" in r for r in asked[1]) == 2
    assert b"c1 OK [CAPABILITY IMAP4rev1] Logged in\r\n" in got[1]


def test_auth_server_faults(tmp_path: Path, auth: AuthServer) -> None:
    """What the auth server gets wrong ends the login with the protocol's internal
    error and nginx's message: no server or port, an address that is not one, a bad
    port, a header it cannot read, no status line, and no auth server at all."""
    backend = imap_backend()
    raw: dict[bytes, bytes] = {
        b"noport": b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\n\r\n",
        b"name": b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: mail.local\r\n"
                 b"Auth-Port: 143\r\n\r\n",
        b"port": b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\n"
                 b"Auth-Port: 70000\r\n\r\n",
        b"header": b"HTTP/1.0 200 OK\r\nAuth Status: OK\r\n\r\n",
        b"nostatus": b"Auth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: PORT\r\n\r\n",
        b"deadport": b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\n"
                     b"Auth-Port: DEAD\r\n\r\n",
    }
    dead = str(_dead()).encode()

    def respond(seen: bytes, line: bytes) -> bytes | None:
        if line != b"\r\n":
            return None
        user = re.search(rb"Auth-User: (\S+)", seen).group(1)  # type: ignore[union-attr]
        return raw[user].replace(b"PORT", str(backend.port).encode()).replace(b"DEAD", dead)

    odd = Recorder(b"", lambda seen, line: (respond(seen, line) or b"") if line == b"\r\n"
                   else None)
    block = (IMAP.replace("AUTH/mail/auth", f"127.0.0.1:{odd.port}/x")
             + f"server {{ listen 127.0.0.1:PORT1; protocol imap; auth_http 127.0.0.1:{_dead()}; }}")
    runs = [[b"a1 LOGIN " + user + b" pw\r\n", b"a2 NOOP\r\n"] for user in raw]

    def run(side: Side) -> list[bytes]:
        out = _scripts(side.ports[0], runs)
        return out + _scripts(side.ports[1], [[b"z1 LOGIN u p\r\n"]])

    got, _, received, logged = _each(tmp_path, auth, backend, block, run, nports=2)
    odd.close()
    same(got[0], got[1])
    assert received[1] == received[0]
    assert sorted(logged[1]) == sorted(logged[0])
    assert got[1].count(b"* BAD internal server error\r\n<closed>") == 6


def _dead() -> int:
    """A port nothing listens on (one the system gave and took back)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_mail_server_refuses_the_login(tmp_path: Path, auth: AuthServer) -> None:
    """The mail server says NO to fastgate's login: the internal error (nginx's
    "upstream sent invalid response" at error), or its own words with
    proxy_pass_error_message on; and a POP3 server's -ERR alike."""
    backend = imap_backend(refuse=True)
    pop = pop3_backend(refuse=True)

    def answer(req: bytes) -> list[str]:
        return ok_to(backend if b"imap" in req else pop)(req)

    auth.answer = answer
    block = (IMAP + IMAP.replace("PORT0", "PORT1").replace("imap_auth", "proxy_pass_error_message on; imap_auth")
             + POP3.replace("PORT0", "PORT2"))

    def run(side: Side) -> list[bytes]:
        return (_scripts(side.ports[0], [[b"a1 LOGIN u p\r\n"]])
                + _scripts(side.ports[1], [[b"a1 LOGIN u p\r\n"]])
                + _scripts(side.ports[2], [[b"USER u\r\n", b"PASS p\r\n"]]))

    got, asked, received, logged = _each(tmp_path, auth, backend, block, run, nports=3)
    _compare(got, asked, received, logged)
    assert b"a1 NO [AUTHENTICATIONFAILED] wrong password\r\n<closed>" in got[1]


def test_limits_on_commands(tmp_path: Path, auth: AuthServer) -> None:
    """max_errors invalid commands end the session; so does a line longer than the
    buffer (imap_client_buffer; POP3's 128 bytes), with nginx's messages."""
    backend = imap_backend()
    auth.answer = ok_to(backend)
    block = (IMAP.replace("imap_auth", "max_errors 3; imap_client_buffer 64; imap_auth")
             + POP3.replace("PORT0", "PORT1").replace("auth_http", "timeout 1s; auth_http"))

    def run(side: Side) -> list[bytes]:
        out = (_scripts(side.ports[0], [[b"x\r\n", b"y\r\n", b"z\r\n", b"a1 NOOP\r\n"],
                                        [b"a1 LOGIN " + b"u" * 80 + b" p\r\n"]])
               + _scripts(side.ports[1], [[b"USER " + b"v" * 200 + b"\r\n"]]))
        c = Client(side.ports[1])
        out += [c.read(), c.say(b"USER u\r\n"), c.read(until_closed=True)]  # (timeout 1s)
        c.close()
        return out

    got, asked, received, logged = _each(tmp_path, auth, backend, block, run, nports=2)
    _compare(got, asked, received, logged)
    assert got[1][-1] == b"<closed>"
    assert any(m.startswith("client timed out (110: Connection timed out) while in auth "
                            "state") for m in logged[1])


def test_proxy_protocol_to_the_mail_server(tmp_path: Path, auth: AuthServer) -> None:
    """proxy_protocol on: a PROXY v1 line naming the client, then the login."""
    backend = imap_backend()
    auth.answer = ok_to(backend)
    block = IMAP.replace("imap_auth", "proxy_protocol on; imap_auth")
    got, asked, received, logged = _each(
        tmp_path, auth, backend, block, lambda side: script(side.ports[0], [b"a1 LOGIN u p\r\n"]))
    same(got[0], got[1])
    for side in received:
        assert re.fullmatch(rb"PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+\r\n"
                            rb"a1 LOGIN \{1\}\r\nu \{1\}\r\np\r\n", side[0])


TLS = """
ssl_certificate HOME/cert.pem; ssl_certificate_key HOME/key.pem; ssl_protocols TLSv1.2 TLSv1.3;
server { listen 127.0.0.1:PORT0; protocol imap; auth_http AUTH/auth; starttls on; }
server { listen 127.0.0.1:PORT1; protocol imap; auth_http AUTH/auth; starttls only; }
server { listen 127.0.0.1:PORT2; protocol pop3; auth_http AUTH/auth; starttls only; }
server { listen 127.0.0.1:PORT3 ssl; protocol imap; auth_http AUTH/auth; }
"""


def _client_tls() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def test_starttls_and_ssl(tmp_path: Path, auth: AuthServer) -> None:
    """STARTTLS on and only (IMAP's LOGINDISABLED, POP3's STLS; logins refused in
    clear with "only"; what came after STARTTLS in clear is dropped), ``listen ...
    ssl``; the auth server told Auth-SSL, the protocol and the cipher."""
    self_signed(tmp_path)
    backend = imap_backend()
    pop = pop3_backend()

    def answer(req: bytes) -> list[str]:
        return ok_to(backend if b"Auth-Protocol: imap" in req else pop)(req)

    auth.answer = answer
    pops: list[list[bytes]] = []

    def run(side: Side) -> list[bytes]:
        out = []
        for port, login in ((side.ports[0], True), (side.ports[1], False)):
            c = Client(port)
            out.append(c.read())
            out.append(c.say(b"a0 CAPABILITY\r\n"))
            if not login:
                out.append(c.say(b"a1 LOGIN u p\r\n"))
                out.append(c.say(b"a2 AUTHENTICATE PLAIN\r\n"))
            out.append(c.say(b"a3 STARTTLS\r\na4 LOGIN injected p\r\n"))
            c.starttls(_client_tls())
            out.append(c.say(b"a5 CAPABILITY\r\n"))
            out.append(c.say(b"a6 STARTTLS\r\n"))
            out.append(c.say(b"a7 LOGIN u p\r\n"))
            out.append(c.say(b"a8 NOOP\r\n"))
            c.close()
        c = Client(side.ports[2])
        out.append(c.read())
        out += [c.say(b"CAPA\r\n"), c.say(b"USER u\r\n"), c.say(b"STLS\r\n")]
        c.starttls(_client_tls())
        out += [c.say(b"CAPA\r\n"), c.say(b"USER u\r\n"), c.say(b"PASS p\r\n"),
                c.say(b"STAT\r\n")]
        c.close()
        out += script(side.ports[3], [b"b1 LOGIN v p\r\n", b"b2 NOOP\r\n"], _client_tls())
        # in clear to the ssl port: said on accept, and the handshake it spoils (fastgate
        # said neither)
        with socket.create_connection(("127.0.0.1", side.ports[3]), timeout=5) as s:
            s.sendall(b"c1 LOGIN w p\r\n")
            time.sleep(0.1)
        pops.append(pop.take())
        return out

    got, asked, received, logged = _each(tmp_path, auth, backend, TLS, run, nports=4)
    _compare(got, asked, received, logged)
    assert any(line.startswith("SSL_do_handshake() failed (SSL: wrong version number) "
                               "while SSL handshaking") for line in logged[1])
    assert pops[1] == pops[0] == [b"USER u\r\nPASS p\r\nSTAT\r\n"]
    assert all(b"Auth-SSL: on\r\nAuth-SSL-Protocol: TLSv1.3\r\n" in r for r in asked[1])
    assert not any(b"injected" in r for r in asked[1] + received[1])


def test_nothing_sent_in_clear_after_starttls_is_read(tmp_path: Path, auth: AuthServer) -> None:
    """Bytes sent in clear after STARTTLS, in the same packet or the next, before the
    handshake: never a command (the STARTTLS command injection). The handshake they
    spoil fails; the auth server and the mail server get nothing."""
    self_signed(tmp_path)
    backend = imap_backend()
    auth.answer = ok_to(backend)
    got = []

    def run(side: Side) -> list[bytes]:
        out = []
        for port, start in ((side.ports[0], b"a3 STARTTLS\r\n"), (side.ports[2], b"STLS\r\n")):
            c = Client(port)
            out.append(c.read())
            c.sock.sendall(start)
            time.sleep(0.05)
            c.sock.sendall(b"a4 LOGIN injected p\r\nUSER injected\r\nPASS p\r\n")
            out.append(c.read(until_closed=True))
            c.close()
        got.append(out)
        return out

    _, asked, received, _ = _each(tmp_path, auth, backend, TLS, run, nports=4)
    assert got[1][1].startswith(b"a3 OK completed\r\n") and got[1][3].startswith(b"+OK\r\n")
    assert asked == [[], []] and received == [[], []]


def test_nothing_reaches_a_mail_server_without_a_login(tmp_path: Path,
                                                      auth: AuthServer) -> None:
    """A client the auth server refuses, one that never finishes logging in, one that
    sends mail commands first, and one that leaves mid-login: the mail server gets
    no connection at all (fastgate and nginx alike)."""
    backend = imap_backend()
    auth.answer = lambda req: ["Auth-Status: Invalid login"]
    runs = [[b"a1 SELECT INBOX\r\na2 FETCH 1:* BODY[]\r\n", b"a3 LOGIN u p\r\n"],
            [b"b1 AUTHENTICATE PLAIN\r\n"],
            [b"c1 LOGIN {3}\r\n", b"abc {5}\r\n"]]

    def run(side: Side) -> list[bytes]:
        return _scripts(side.ports[0], runs)

    got, asked, received, logged = _each(tmp_path, auth, backend, IMAP, run)
    _compare(got, asked, received, logged)
    assert received[1] == received[0] == []
    assert len(asked[1]) == 1


def test_bad_bytes_never_crash_it(tmp_path: Path, auth: AuthServer) -> None:
    """Random bytes, half of them after a command's start, to IMAP and POP3 servers
    (in clear, STARTTLS, ssl), cut at random points: no traceback, the auth server's
    refusal keeps every mail server untouched, and the gateway still logs a client in."""
    import random

    self_signed(tmp_path)
    backend = imap_backend()
    auth.answer = lambda req: ["Auth-Status: Invalid login", "Auth-Wait: 0"]
    block = TLS + POP3.replace("PORT0", "PORT4")
    side = Side("fastgate", tmp_path, block, auth, 5)
    try:
        rng = random.Random(2026)
        prefixes = [b"", b"a1 LOGIN ", b"a1 AUTHENTICATE PLAIN\r\n", b"a1 LOGIN {9}\r\n",
                    b"a1 STARTTLS\r\n", b"USER x\r\nPASS ", b"AUTH LOGIN\r\n", b"STLS\r\n",
                    b"a1 LOGIN u p\r\n", b'a1 LOGIN "\\', b"\x16\x03\x01\x00\x50\x01"]
        for _ in range(80):
            data = rng.choice(prefixes) + rng.randbytes(rng.randrange(0, 300))
            with socket.create_connection(("127.0.0.1", rng.choice(side.ports)),
                                          timeout=5) as s:
                try:
                    s.sendall(data)
                    if rng.random() < 0.5:
                        s.shutdown(socket.SHUT_WR)
                    s.settimeout(0.05)
                    s.recv(100)
                except OSError:
                    pass
        auth.answer = ok_to(backend)
        assert backend.take() == []
        got = script(side.ports[0], [b"a1 LOGIN u p\r\n", b"a2 NOOP\r\n"])
        assert got[1:] == [b"a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n", b"a2 OK echo a2 NOOP\r\n"]
    finally:
        side.stop()
    stderr = (tmp_path / "fastgate" / "stderr").read_text()
    log = side.errors.read_text()
    assert "Traceback" not in stderr + log and "unexpected error" not in log


def test_client_certificates(tmp_path: Path, auth: AuthServer) -> None:
    """ssl_verify_client on: no certificate, an untrusted one (the protocol's BYE/-ERR
    and nginx's info line), a trusted one — the auth server told its verify result,
    subject, issuer, serial, fingerprint and, with auth_http_pass_client_cert, the
    certificate itself, escaped."""
    self_signed(tmp_path)
    ca, ca_key = self_signed(tmp_path, name="client", stem="client")
    other, other_key = self_signed(tmp_path, name="stranger", stem="other")
    backend = imap_backend()
    pop = pop3_backend()

    def answer(req: bytes) -> list[str]:
        return ok_to(backend if b"Auth-Protocol: imap" in req else pop)(req)

    auth.answer = answer
    block = f"""
ssl_certificate HOME/cert.pem; ssl_certificate_key HOME/key.pem; ssl_protocols TLSv1.2 TLSv1.3;
ssl_verify_client on; ssl_client_certificate {ca};
server {{ listen 127.0.0.1:PORT0 ssl; protocol imap; auth_http AUTH/auth;
         auth_http_pass_client_cert on; }}
server {{ listen 127.0.0.1:PORT1 ssl; protocol pop3; auth_http AUTH/auth; }}
"""

    def tls(cert: Path | None, key: Path | None) -> ssl.SSLContext:
        ctx = _client_tls()
        if cert is not None and key is not None:
            ctx.load_cert_chain(cert, key)
        return ctx

    def run(side: Side) -> list[bytes]:
        out = []
        for port in side.ports:
            for cert, key in ((None, None), (other, other_key), (ca, ca_key)):
                lines = [b"a1 LOGIN u p\r\n"] if port == side.ports[0] else [b"USER u\r\n",
                                                                             b"PASS p\r\n"]
                out += script(port, lines, tls(cert, key)) + [b"--"]
        pop.take()
        return out

    got, asked, received, logged = _each(tmp_path, auth, backend, block, run, nports=2)
    # (the test's client writes its command after the server's close_notify: nginx's
    # OpenSSL reports that at its SSL_shutdown, asyncio's says nothing)
    logged = [[m for m in side if not m.startswith("SSL_shutdown() failed")]
              for side in logged]
    _compare(got, asked, received, logged)
    assert got[1][0] == b"* BYE No required SSL certificate\r\n<closed>"
    assert got[1][3] == b"* BYE SSL certificate error\r\n<closed>"
    assert any(b"Auth-SSL-Verify: SUCCESS\r\nAuth-SSL-Subject: CN=client\r\n" in r
               and b"Auth-SSL-Cert: -----BEGIN%20CERTIFICATE-----%0A" in r for r in asked[1])


# --- SMTP ----------------------------------------------------------------------------------


def smtp_backend() -> Recorder:
    """An SMTP server that answers EHLO with several lines, XCLIENT with a new
    greeting, takes AUTH PLAIN, and a message after DATA."""
    state = {"data": False}

    def respond(seen: bytes, line: bytes) -> bytes | None:
        if state["data"]:
            if line == b".\r\n":
                state["data"] = False
                return b"250 2.0.0 Ok: queued as 1\r\n"
            return None
        word = line.split(b" ", 1)[0].strip().upper()
        if word == b"EHLO":
            return b"250-backend\r\n250-XCLIENT ADDR NAME LOGIN\r\n250 8BITMIME\r\n"
        if word == b"XCLIENT":
            return b"220 backend ESMTP again\r\n"
        if word == b"AUTH":
            return b"235 2.7.0 Authentication successful\r\n"
        if word == b"DATA":
            state["data"] = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if word == b"QUIT":
            return b"221 2.0.0 Bye\r\n"
        return {b"HELO": b"250 backend\r\n", b"MAIL": b"250 2.1.0 Ok\r\n",
                b"RCPT": b"250 2.1.5 Ok\r\n"}.get(word, b"250 2.0.0 Ok\r\n")

    return Recorder(b"220 backend ESMTP\r\n", respond)


SMTP = """
server { listen 127.0.0.1:PORT0; protocol smtp; auth_http AUTH/smtp;
         smtp_capabilities "SIZE 10485760" PIPELINING 8BITMIME; }
server { listen 127.0.0.1:PORT1; protocol smtp; auth_http AUTH/smtp; smtp_auth none plain;
         xclient off; }
server { listen 127.0.0.1:PORT2; protocol smtp; auth_http AUTH/smtp; xclient off;
         proxy_smtp_auth on; smtp_auth login cram-md5; smtp_greeting_delay 300ms; }
"""


def test_smtp_logins_and_relay(tmp_path: Path, auth: AuthServer) -> None:
    """SMTP as nginx's: the greeting, HELO and EHLO's capability lines, the invalid
    commands and arguments, AUTH (PLAIN, LOGIN, CRAM-MD5) and ``smtp_auth none`` (MAIL
    FROM and RCPT TO asked of the auth server), then the login to the mail server — EHLO,
    XCLIENT with the client's address, login and name, its own HELO, AUTH PLAIN with
    proxy_smtp_auth, MAIL FROM and RCPT TO — and the message relayed; a refused login
    with the auth server's error code or nginx's; a client that speaks before a delayed
    greeting."""
    backend = smtp_backend()

    def answer(req: bytes) -> list[str]:
        if b"Auth-User: bad" in req:
            return ["Auth-Status: Invalid credentials"]
        if b"Auth-User: coded" in req:
            return ["Auth-Status: Temporary failure", "Auth-Error-Code: 451 4.3.0"]
        return ok_to(backend, "upstream-pw" if b"Auth-Salt" in req else None)(req)

    auth.answer = answer
    digest = b"0123456789abcdef0123456789abcdef"
    runs0 = [[b"EHLO client.example\r\n", b"HELO\r\n", b"VRFY x\r\n", b"NOOP\r\n", b"RSET\r\n",
              b"AUTH\r\n", b"MAIL FROM:<a@b>\r\n", b"RCPT TO:<c@d>\r\n", b"bogus\r\n",
              b"AUTH PLAIN " + _b64(b"\0alice\0pw") + b"\r\n",
              b"MAIL FROM:<alice@example>\r\n", b"RCPT TO:<bob@example>\r\n", b"DATA\r\n",
              b"Subject: hi\r\n\r\nhello\r\n.\r\n", b"QUIT\r\n"],
             [b"HELO there\r\n", b"AUTH LOGIN\r\n", _b64(b"bad") + b"\r\n", _b64(b"pw") + b"\r\n",
              b"NOOP\r\n"],
             [b"EHLO x\r\n", b"AUTH PLAIN " + _b64(b"\0coded\0pw") + b"\r\n"]]
    runs1 = [[b"EHLO sender.example\r\n", b"MAIL FROM:<x@y> SIZE=100\r\n",
              b"MAIL FROM:<again@y>\r\n", b"RCPT TO:<z@w> NOTIFY=NEVER\r\n", b"DATA\r\n",
              b"body\r\n.\r\n"],
             [b"RCPT TO:<first@x>\r\n", b"MAIL FROM:\r\n", b"QUIT\r\n"]]
    runs2 = [[b"EHLO late\r\n"]]

    def run(side: Side) -> list[bytes]:
        out = _scripts(side.ports[0], runs0) + _scripts(side.ports[1], runs1)
        c = Client(side.ports[2])
        out += [c.read(quiet=0.6), c.say(b"EHLO patient\r\n"),
                c.say(b"AUTH CRAM-MD5\r\n"), c.say(_b64(b"carol " + digest) + b"\r\n"),
                c.say(b"QUIT\r\n")]
        c.close()
        return out + _scripts(side.ports[2], runs2)

    got, asked, received, logged = _each(tmp_path, auth, backend, SMTP, run, nports=3)
    _compare(got, asked, received, logged)
    assert b"235 2.0.0 OK\r\n" in got[1]
    assert any(b"Auth-Method: none\r\n" in r and b"Auth-SMTP-From: MAIL FROM:<x@y> SIZE=100"
               in r for r in asked[1])
    assert any(re.search(rb"XCLIENT ADDR=127\.0\.0\.1 LOGIN=alice NAME=\[UNAVAILABLE\]", r)
               for r in received[1])


SMTP_TLS = """
ssl_certificate HOME/cert.pem; ssl_certificate_key HOME/key.pem; ssl_protocols TLSv1.2 TLSv1.3;
server { listen 127.0.0.1:PORT0; protocol smtp; auth_http AUTH/smtp; starttls on; }
server { listen 127.0.0.1:PORT1; protocol smtp; auth_http AUTH/smtp; starttls only; }
server { listen 127.0.0.1:PORT2 ssl; protocol smtp; auth_http AUTH/smtp; }
"""


def test_smtp_starttls(tmp_path: Path, auth: AuthServer) -> None:
    """SMTP's STARTTLS (on, only: AUTH refused in clear, the capability lines without
    it), what the client said before it forgotten; SMTP over ``listen ... ssl``."""
    self_signed(tmp_path)
    backend = smtp_backend()
    auth.answer = ok_to(backend)
    plain = b"AUTH PLAIN " + _b64(b"\0u\0p") + b"\r\n"

    def run(side: Side) -> list[bytes]:
        out = []
        for port in side.ports[:2]:
            c = Client(port)
            out += [c.read(), c.say(b"EHLO before\r\n")]
            if port == side.ports[1]:
                out.append(c.say(plain))  # (only: refused in clear)
            out.append(c.say(b"STARTTLS\r\n"))
            c.starttls(_client_tls())
            out += [c.say(b"EHLO after\r\n"), c.say(b"STARTTLS\r\n"), c.say(plain),
                    c.say(b"NOOP\r\n")]
            c.close()
        return out + script(side.ports[2], [b"EHLO s\r\n", plain], _client_tls())

    got, asked, received, logged = _each(tmp_path, auth, backend, SMTP_TLS, run, nports=3)
    _compare(got, asked, received, logged)
    assert all(b"EHLO after" in r for r in received[1][:2])


def test_smtp_client_names(tmp_path: Path, auth: AuthServer) -> None:
    """``resolver``: the client's address's PTR name, confirmed by its own addresses,
    is Client-Host and XCLIENT's NAME; no PTR name, or one that names other addresses,
    is [UNAVAILABLE] (with nginx's message)."""
    from dns_server import DnsServer

    dns = DnsServer()
    dns.ptr["127.0.0.2"] = "good.client.test"
    dns.set("good.client.test", ["127.0.0.2"])
    dns.ptr["127.0.0.3"] = "liar.client.test"
    dns.set("liar.client.test", ["10.9.9.9"])
    backend = smtp_backend()
    auth.answer = ok_to(backend)
    block = (f"resolver 127.0.0.1:{dns.port} ipv6=off; resolver_timeout 2s;\n"
             + SMTP.split("server {")[0]
             + "server { listen 127.0.0.1:PORT0; protocol smtp; auth_http AUTH/smtp; }")

    def run(side: Side) -> list[bytes]:
        out = []
        for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            sock = socket.create_connection(("127.0.0.1", side.ports[0]), timeout=5,
                                            source_address=(source, 0))
            c = Client.__new__(Client)
            c.sock = sock
            out += [c.read(quiet=0.5), c.say(b"EHLO me\r\n"),
                    c.say(b"AUTH PLAIN " + _b64(b"\0u\0p") + b"\r\n")]
            c.close()
        return out

    try:
        got, asked, received, logged = _each(tmp_path, auth, backend, block, run)
    finally:
        dns.stop()
    _compare(got, asked, received, logged)
    hosts = [re.search(rb"Client-Host: (\S+)", r).group(1) for r in asked[1]]  # type: ignore[union-attr]
    assert hosts == [b"good.client.test", b"[UNAVAILABLE]", b"[UNAVAILABLE]"]


PROXIED = """
ssl_certificate HOME/cert.pem; ssl_certificate_key HOME/key.pem; ssl_protocols TLSv1.2 TLSv1.3;
server { listen 127.0.0.1:PORT0 proxy_protocol; protocol imap; auth_http AUTH/auth;
         set_real_ip_from 127.0.0.0/8; }
server { listen 127.0.0.1:PORT1 proxy_protocol; protocol imap; auth_http AUTH/auth;
         set_real_ip_from 10.0.0.0/8; }
server { listen 127.0.0.1:PORT2 ssl proxy_protocol; protocol imap; auth_http AUTH/auth;
         set_real_ip_from 127.0.0.1; }
server { listen 127.0.0.1:PORT3 proxy_protocol; protocol smtp; auth_http AUTH/auth;
         set_real_ip_from 127.0.0.1; }
"""


def test_proxy_protocol_and_real_ip(tmp_path: Path, auth: AuthServer) -> None:
    """``listen ... proxy_protocol`` (in clear, and before the handshake with ssl):
    the auth server told the header's addresses; from a ``set_real_ip_from`` peer the
    header's client is Client-IP, XCLIENT's address and the log's client; a broken
    header ends the connection with nginx's message."""
    self_signed(tmp_path)
    backend = imap_backend()
    smtp = smtp_backend()

    def answer(req: bytes) -> list[str]:
        return ok_to(smtp if b"Auth-Protocol: smtp" in req else backend)(req)

    auth.answer = answer
    header = b"PROXY TCP4 203.0.113.7 198.51.100.1 5555 143\r\n"
    smtps: list[list[bytes]] = []

    def run(side: Side) -> list[bytes]:
        out = []
        for port in side.ports[:2]:
            c = Client(port)
            c.sock.sendall(header)
            out += [c.read(), c.say(b"a1 LOGIN u p\r\n"), c.say(b"a2 NOOP\r\n")]
            c.close()
        sock = socket.create_connection(("127.0.0.1", side.ports[2]), timeout=5)
        sock.sendall(header)
        c = Client.__new__(Client)
        c.sock = _client_tls().wrap_socket(sock)
        out += [c.read(), c.say(b"b1 LOGIN v p\r\n")]
        c.close()
        c = Client(side.ports[3])
        c.sock.sendall(header)
        out += [c.read(), c.say(b"EHLO x\r\n"), c.say(b"AUTH PLAIN " + _b64(b"\0w\0p") + b"\r\n")]
        c.close()
        out += _scripts(side.ports[0], [[b"GARBAGE\r\n"]])
        smtps.append(smtp.take())
        return out

    got, asked, received, logged = _each(tmp_path, auth, backend, PROXIED, run, nports=4)
    _compare(got, asked, received, logged)
    assert smtps[1] == smtps[0]
    assert b"XCLIENT ADDR=203.0.113.7 " in smtps[1][0]
    assert [re.search(rb"Client-IP: (\S+)", r).group(1) for r in asked[1]] == [  # type: ignore[union-attr]
        b"203.0.113.7", b"127.0.0.1", b"203.0.113.7", b"203.0.113.7"]
    assert b"Proxy-Protocol-Addr: 203.0.113.7\r\nProxy-Protocol-Port: 5555\r\n" in asked[1][1]
    assert any(m.startswith('broken header: "GARBAGE') for m in logged[1])


def test_workers_and_a_reload(tmp_path: Path, auth: AuthServer, gateway: Any,
                              free: Any) -> None:
    """Under a master (worker_processes 2) the mail block's sockets and TLS contexts
    (``ssl`` and STARTTLS) are the master's, beside an HTTP server; a reload changes
    what a mail server says without dropping its address."""
    self_signed(tmp_path)
    backend = imap_backend()
    auth.answer = ok_to(backend)
    http, plain, tls = free(), free(), free()

    def config(capability: str) -> str:
        return (f"worker_processes 2; error_log {tmp_path}/error.log info;\n"
                f"http {{ access_log off; server {{ listen 127.0.0.1:{http}; return 200 web; }} }}\n"
                f"mail {{ auth_http 127.0.0.1:{auth.port}/auth; starttls on;\n"
                f"  ssl_certificate {tmp_path}/cert.pem; ssl_certificate_key {tmp_path}/key.pem;\n"
                f"  imap_capabilities {capability};\n"
                f"  server {{ listen 127.0.0.1:{plain}; protocol imap; }}\n"
                f"  server {{ listen 127.0.0.1:{tls} ssl; protocol imap; }} }}\n")

    gw = gateway(config("ONE"), http)  # (stopped by the fixture, failing on a traceback)
    for _ in range(4):  # (either worker)
        c = Client(plain)
        assert c.read() == b"* OK IMAP4 ready\r\n"
        assert c.say(b"a STARTTLS\r\n") == b"a OK completed\r\n"
        c.starttls(_client_tls())
        assert c.say(b"b CAPABILITY\r\n") == b"* CAPABILITY ONE AUTH=PLAIN\r\nb OK completed\r\n"
        assert c.say(b"c LOGIN u p\r\n") == b"c OK [CAPABILITY IMAP4rev1] Logged in\r\n"
        c.close()
        got = script(tls, [b"d CAPABILITY\r\n"], _client_tls())
        assert got[1] == b"* CAPABILITY ONE AUTH=PLAIN\r\nd OK completed\r\n"
    gw.conf.write_text(config("TWO"))
    gw.signal(signal.SIGHUP)
    deadline = time.time() + 10
    while script(plain, [b"e CAPABILITY\r\n"])[1] != (b"* CAPABILITY TWO AUTH=PLAIN STARTTLS\r\n"
                                                     b"e OK completed\r\n"):
        assert time.time() < deadline
        time.sleep(0.1)
