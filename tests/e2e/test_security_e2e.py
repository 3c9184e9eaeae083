"""No request without a valid token reaches a protected backend (issue #14).

Every attack runs on both engines and on both exchange paths — the callback path (a
bodiless request over a pooled idle upstream connection, warmed before each attack and
checked to be reused) and the task path (``keepalive 0``: every exchange a new upstream
connection) — against a backend that keeps every byte it receives. Each attack carries
a marker of its own, and the assertion that matters is what the backend did *not* get.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from e2e_util import proc_status_kib, wait_for_text
from raw_backend import RawBackend

SECRET = "security-test-secret-0123456789abcdef"
API = "api.example.com"


def token(**claims: object) -> str:
    return pyjwt.encode({"sub": "alice", **claims}, SECRET, algorithm="HS256")


def marker() -> str:
    return "m" + uuid.uuid4().hex[:16]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PAGES = "pages.example.com"


def config(port: int, backend: int, keepalive: int, errlog: Path, jwks: Path) -> str:
    return f"""
error_log {errlog} info;
http {{
  upstream be {{ server 127.0.0.1:{backend}; keepalive {keepalive}; keepalive_requests 1000; }}
  upstream be2 {{ server 127.0.0.1:{backend}; keepalive 16; keepalive_requests 2; }}
  upstream be3 {{ server 127.0.0.1:{backend}; keepalive 16; keepalive_time 1s; }}
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  limit_req_zone $uri zone=by_uri:1m rate=1000r/s;

  # the protected API: every location checks a token
  server {{
    listen 127.0.0.1:{port};
    server_name {API};
    auth_jwt_key "{SECRET}";
    location / {{ auth_jwt on; proxy_pass http://be; }}
    location /api/ {{
      auth_jwt on;
      proxy_set_header X-User $jwt_claim_sub;
      proxy_set_header X-Host $host;
      proxy_set_header X-Length $request_length;
      proxy_set_header X-Proxy-Port $proxy_port;
      proxy_pass http://be;
    }}
    location /ws {{
      auth_jwt on;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_pass http://be;
    }}
    location /cookie/ {{ auth_jwt $cookie_token; proxy_pass http://be; }}
    location /xtoken/ {{ auth_jwt $http_x_token; proxy_pass http://be; }}
    location /arg/ {{ auth_jwt $arg_token; proxy_pass http://be; }}
    location /small/ {{ auth_jwt on; client_max_body_size 1k; proxy_pass http://be; }}
    location /claim/ {{
      auth_jwt on;
      proxy_set_header X-Name $jwt_claim_name;
      add_header X-Name $jwt_claim_name;
      limit_req zone=by_uri burst=100 nodelay;
      proxy_pass http://be;
    }}
    location /jwks/ {{ auth_jwt on; auth_jwt_key_file {jwks}; proxy_pass http://be; }}
    # the rewrite module: a CORS preflight answered before access, and a rewrite into
    # the protected API (whose access rules then apply)
    location /cors/ {{
      auth_jwt on;
      if ($request_method = 'OPTIONS') {{
        add_header Access-Control-Allow-Origin "*" always;
        return 204;
      }}
      proxy_pass http://be;
    }}
    location /old/ {{ rewrite ^/old/(.*)$ /api/$1 last; }}
    # satisfy any: the LAN passes without a token; this test client is not on it, and
    # an X-Forwarded-For from a peer not trusted to send one does not put it there
    location /lan/ {{
      satisfy any;
      set_real_ip_from 192.0.2.1;
      real_ip_header X-Forwarded-For;
      allow 10.0.0.0/8;
      deny all;
      auth_jwt on;
      proxy_pass http://be;
    }}
    # the only open location of this server: a case-insensitive regex
    location ~* ^/static/ {{ proxy_pass http://be; }}
    location ~* ^/kit/ {{ proxy_pass http://be; }}
  }}

  # the default server: open, with protected prefixes (where fall-through would hurt)
  server {{
    listen 127.0.0.1:{port} default_server;
    server_name open.example.com;
    keepalive_requests 1000000;  # the pipelining flood stays on one connection
    auth_jwt_key "{SECRET}";
    location / {{ proxy_pass http://be; }}
    location /api/ {{ auth_jwt on; proxy_pass http://be; }}
    location = /api2 {{ return 200 "exact"; }}
    location /api2/ {{ auth_jwt on; proxy_pass http://be; }}
    location /pipe/ {{ return 200 "p"; }}
    location /kr/ {{ proxy_pass http://be2; }}
    location /kt/ {{ proxy_pass http://be3; }}
  }}

  # a protected server whose error page for what the HTTP layer refuses is proxied
  server {{
    listen 127.0.0.1:{port};
    server_name {PAGES};
    auth_jwt_key "{SECRET}";
    error_page 400 494 /oops?from=$request_uri;
    location = /oops {{ proxy_set_header X-Page oops; proxy_pass http://be; }}
    location / {{ auth_jwt on; proxy_set_header X-User $jwt_claim_sub; proxy_pass http://be; }}
  }}
}}
"""


class Gate:
    """A fastgate process and its backend, for one engine and one exchange path."""

    def __init__(self, tmp: Path, engine: str, path: str) -> None:
        self.engine, self.path = engine, path
        self.backend = RawBackend()
        self.port = free_port()
        self.errlog = tmp / "error.log"
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        jwk = json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(key))
        jwks = tmp / "jwks.json"
        jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
        conf = tmp / "fastgate.conf"
        conf.write_text(config(self.port, self.backend.port, 16 if path == "callback" else 0,
                               self.errlog, jwks))
        self.stderr_path = tmp / "stderr"
        self._err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastgate", "-c", str(conf), "--http-engine", engine],
            stdout=subprocess.DEVNULL, stderr=self._err)
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(self.stderr_path.read_text()) from None
                time.sleep(0.05)

    def warm(self) -> None:
        """On the callback path: leave an idle pooled upstream connection behind, so that
        the next bodiless proxied request takes the callback exchange."""
        if self.path != "callback":
            return
        m = marker()
        resp = self.send(request("GET", f"/api/warm?{m}", auth=token()))
        assert status(resp) == 200, resp
        time.sleep(0.02)

    def send(self, data: bytes, timeout: float = 3.0) -> bytes:
        """One connection: send, half-close, read until the gateway closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (TimeoutError, ConnectionResetError):
                    break
                if not chunk:
                    break
                out += chunk
            return out

    def got(self, m: str) -> list:
        return [r for r in self.backend.requests() if m.encode() in r.target]

    def check_path(self, m: str) -> None:
        """The request marked ``m`` went the way this gate is meant to exercise: on the
        callback path over the warm-up's upstream connection, else a new one."""
        (rec,) = self.got(m)
        warm = [r for r in self.backend.requests() if b"/api/warm?" in r.target]
        if self.path == "callback":
            assert rec.connection == warm[-1].connection
        else:
            assert all(rec.connection != r.connection for r in self.backend.requests()
                       if r is not rec)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        self.backend.stop()
        err = self.stderr_path.read_text() + self.errlog.read_text()
        assert "Traceback" not in err and "unexpected error" not in err, err


@pytest.fixture(scope="module", params=[(e, p) for e in ("h11", "httptools")
                                        for p in ("callback", "task")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def gate(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Gate]:
    engine, path = request.param
    g = Gate(tmp_path_factory.mktemp(f"sec-{engine}-{path}"), engine, path)
    yield g
    g.stop()


def request(method: str, target: str, host: str = API, auth: str | None = None,
            headers: list[tuple[str, str]] | None = None, body: bytes | None = None,
            version: str = "1.1") -> bytes:
    lines = [f"{method} {target} HTTP/{version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    if auth is not None:
        lines.append(f"Authorization: Bearer {auth}")
    for n, v in headers or []:
        lines.append(f"{n}: {v}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def status(resp: bytes) -> int:
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.") else 0


def statuses(resp: bytes) -> list[int]:
    """Every status line's code (a body without a CRLF may run into the next line)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", resp)]


# --- 1. duplicate unique headers, and a token source given twice -------------------------------

UNIQUE = ["Host", "Content-Length", "Transfer-Encoding", "Authorization", "Expect",
          "If-Modified-Since", "If-Unmodified-Since", "If-Match", "If-None-Match", "If-Range",
          "Content-Range"]
VALUE = {"Host": API, "Content-Length": "0", "Transfer-Encoding": "chunked",
         "Authorization": "Bearer forged.forged.forged", "Expect": "100-continue",
         "If-Modified-Since": "Sat, 29 Oct 1994 19:43:31 GMT",
         "If-Unmodified-Since": "Sat, 29 Oct 1994 19:43:31 GMT", "If-Match": '"a"',
         "If-None-Match": '"a"', "If-Range": '"a"', "Content-Range": "bytes 0-1/2"}


@pytest.mark.parametrize("name", UNIQUE)
def test_a_unique_header_twice_is_400_and_never_forwarded(gate: Gate, name: str) -> None:
    gate.warm()
    m = marker()
    extra = [(name, VALUE[name]), (name.lower(), VALUE[name])]
    if name == "Host":
        data = request("GET", f"/api/x?{m}", host=None, auth=token(), headers=extra)
    elif name == "Authorization":
        data = request("GET", f"/api/x?{m}", auth=token(),
                       headers=[("Authorization", VALUE[name])])
    else:
        data = request("GET", f"/api/x?{m}", auth=token(), headers=extra)
    if name == "Transfer-Encoding":
        data += b"0\r\n\r\n"
    resp = gate.send(data)
    assert status(resp) == 400, resp
    assert not gate.backend.seen(m.encode())


@pytest.mark.parametrize("where", ["xtoken", "cookie", "arg"])
def test_a_token_source_given_twice_is_refused(gate: Gate, where: str) -> None:
    """The rule: a token taken from a header, cookie or argument that the request
    carries more than once is refused (401) — which copy the backend reads is its own
    choice, so neither is verified."""
    gate.warm()
    good, forged = token(), token(sub="mallory")[:-4] + "AAAA"
    for first, second in ((good, forged), (forged, good)):
        m = marker()
        if where == "xtoken":
            data = request("GET", f"/xtoken/x?{m}", headers=[("X-Token", first),
                                                             ("X-Token", second)])
        elif where == "cookie":
            data = request("GET", f"/cookie/x?{m}",
                           headers=[("Cookie", f"token={first}; a=1"), ("Cookie", f"token={second}")])
        else:
            data = request("GET", f"/arg/x?token={first}&{m}&token={second}")
        assert status(gate.send(data)) == 401
        assert not gate.backend.seen(m.encode())
    if where == "cookie":  # spellings nginx's parser reads as the same cookie, in one line
        for line in (f"token = {good}; TOKEN={forged}", f"Token={forged};token ={good}"):
            m = marker()
            data = request("GET", f"/cookie/x?{m}", headers=[("Cookie", line)])
            assert status(gate.send(data)) == 401
            assert not gate.backend.seen(m.encode())
    # given once, each source works, and that one copy is what the backend receives
    m = marker()
    assert status(gate.send(request("GET", f"/cookie/x?{m}",
                                    headers=[("Cookie", f"a=1; token={good}")]))) == 200
    assert len(gate.got(m)) == 1


# --- 2, 11. Host normalised before server selection, and validated -------------------------------

@pytest.mark.parametrize("host", [f"{API}.", "API.Example.COM", f"{API}.:8443", f"Api.{API[4:]}.:80"])
def test_host_spellings_select_the_protected_server(gate: Gate, host: str) -> None:
    gate.warm()
    m = marker()
    assert status(gate.send(request("GET", f"/x?{m}", host=host))) == 401
    assert not gate.backend.seen(m.encode())
    m = marker()
    assert status(gate.send(request("GET", f"/api/x?{m}", host=host, auth=token()))) == 200
    (rec,) = gate.got(m)
    assert rec.header(b"x-host") == [API.encode()]  # $host is the normalised name
    gate.check_path(m)


def test_absolute_form_target_selects_by_its_authority(gate: Gate) -> None:
    gate.warm()
    m = marker()
    resp = gate.send(request("GET", f"http://API.example.com.:80/x?{m}", host="open.example.com"))
    assert status(resp) == 401
    assert not gate.backend.seen(m.encode())


@pytest.mark.parametrize("host", ["", ".", f"{API}/..", "a..b", "a\\b", "a b", "[::1",
                                  f"x[{API}", ":8080", f"u@{API}", f"[::1]{API}",
                                  f"{API}:8o"])
def test_invalid_hosts_are_400(gate: Gate, host: str) -> None:
    m = marker()
    resp = gate.send(request("GET", f"/x?{m}", host=host, auth=token()))
    assert status(resp) == 400, resp
    assert not gate.backend.seen(m.encode())


# --- 3. upgrades only when asked and configured -------------------------------------------------

def test_upgrade_headers_stay_on_their_hop(gate: Gate) -> None:
    gate.warm()
    m = marker()
    resp = gate.send(request("GET", f"/api/x?{m}", auth=token(),
                             headers=[("Upgrade", "websocket"), ("Connection", "Upgrade")]))
    assert status(resp) == 200
    (rec,) = gate.got(m)
    assert rec.header(b"upgrade") == []
    assert all(b"upgrade" not in v.lower() for v in rec.header(b"connection"))


@pytest.mark.parametrize("upgrade", [False, True])
def test_a_101_nobody_asked_for_is_502(gate: Gate, upgrade: bool) -> None:
    gate.warm()
    extra = [("Upgrade", "websocket"), ("Connection", "Upgrade")] if upgrade else []
    m = marker()
    resp = gate.send(request("GET", f"/switch?{m}", auth=token(), headers=extra)
                     + request("GET", f"/api/after?{m}"))
    assert statuses(resp)[:1] == [502], resp
    assert b" 101 " not in resp
    # the bytes after the refused switch are never a tunnel into the backend
    assert not gate.backend.seen(f"/api/after?{m}".encode())


def test_websocket_upgrade_when_configured(gate: Gate) -> None:
    m = marker()
    with socket.create_connection(("127.0.0.1", gate.port), timeout=5) as s:
        s.sendall(request("GET", f"/ws?{m}", auth=token(),
                          headers=[("Upgrade", "websocket"), ("Connection", "Upgrade")]))
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1000)
        assert head.startswith(b"HTTP/1.1 101")
        s.sendall(b"ping")
        got = b""
        while len(got) < 4:
            got += s.recv(100)
        assert got == b"ping"
    (rec,) = gate.got(m)
    assert rec.header(b"upgrade") == [b"websocket"]
    assert rec.header(b"connection") == [b"upgrade"]
    # a first frame sent with the upgrade request (reading held back behind it) goes
    # through, and so does everything after the switch
    m = marker()
    with socket.create_connection(("127.0.0.1", gate.port), timeout=5) as s:
        s.sendall(request("GET", f"/ws?{m}", auth=token(),
                          headers=[("Upgrade", "websocket"), ("Connection", "Upgrade")])
                  + b"early")
        got = b""
        while b"early" not in got:
            got += s.recv(1000)
        assert got.startswith(b"HTTP/1.1 101")
        s.sendall(b"later")
        while not got.endswith(b"later"):
            got += s.recv(1000)
    # without a token: refused before anything reaches the backend
    m = marker()
    resp = gate.send(request("GET", f"/ws?{m}", headers=[("Upgrade", "websocket"),
                                                        ("Connection", "Upgrade")])
                     + b"GET /api/x?" + m.encode() + b" HTTP/1.1\r\nHost: " + API.encode() + b"\r\n\r\n")
    assert statuses(resp)[:1] == [401]
    assert not gate.backend.seen(m.encode())


def test_h2c_is_never_tunnelled(gate: Gate) -> None:
    m = marker()
    resp = gate.send(request("GET", f"/ws?{m}", auth=token(),
                             headers=[("Upgrade", "h2c"), ("Connection", "Upgrade, HTTP2-Settings"),
                                      ("HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA")])
                     + b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert status(resp) == 200 and b" 101 " not in resp
    (rec,) = gate.got(m)
    assert rec.header(b"upgrade") == []


# --- 4. prefix locations ending in "/" redirect their name without it ---------------------------

def test_auto_redirect_keeps_unslashed_prefix_protected(gate: Gate) -> None:
    gate.warm()
    m = marker()
    resp = gate.send(request("GET", f"/api?{m}", host="open.example.com"))
    assert status(resp) == 301
    location = [line for line in resp.split(b"\r\n")
                if line.lower().startswith(b"location:")]
    assert location == [f"Location: http://open.example.com:{gate.port}/api/?{m}".encode()]
    assert not gate.backend.seen(m.encode())
    # an exact location of the very URI wins
    assert gate.send(request("GET", "/api2", host="open.example.com")).endswith(b"exact")


# --- 5. header names nginx calls invalid never reach the backend ------------------------------------

def test_invalid_header_names_are_dropped(gate: Gate) -> None:
    gate.warm()
    m = marker()
    # (and names no parser takes as tokens but nginx reads — "@", "{}", a quote, "/":
    # taken, then dropped as nginx drops them, on both engines)
    resp = gate.send(request("GET", f"/api/x?{m}", auth=token(),
                             headers=[("X_User", "admin"), ("X.Role", "admin"), ("X-Fine", "1"),
                                      ("X-User_", "admin"), ("X@User", "admin"),
                                      ("{X-User}", "admin"), ('"X-User"', "admin"),
                                      ("Transfer-Encoding@", "chunked"),
                                      ("X-User/", "admin")]))
    assert status(resp) == 200
    (rec,) = gate.got(m)
    names = {n.lower() for n, _ in rec.headers}
    assert b"x-fine" in names
    assert not {b"x_user", b"x.role", b"x-user_", b"x@user", b"{x-user}", b'"x-user"',
                b"transfer-encoding@", b"x-user/"} & names
    assert rec.header(b"x-user") == [b'"alice"']  # only the verified claim
    gate.check_path(m)
    assert wait_for_text(gate.errlog, 'client sent invalid header line: "X_User: admin" while '
                                      "reading client request headers")


def test_a_refused_head_reaches_its_error_page_without_its_credentials(gate: Gate) -> None:
    """A head the HTTP layer refuses (a header line it cannot read, headers too large)
    after its Host chose a protected server goes to that server's error_page, as
    nginx's: the page's request carries none of the refused request's headers — its
    token, cookies and a forged claim header reach nothing — and the protected location
    it asked for gets nothing."""
    gate.warm()
    for tail in ("Bad\x01Header: y", "X-Big: " + "x" * 40000):
        m = marker()
        tok = token(nonce=m)  # (its own: no other test's request carries it)
        resp = gate.send(request("GET", f"/api/x?{m}", host=PAGES, auth=tok,
                                 headers=[("Cookie", f"s=secret-{m}"), ("X-User", "admin"),
                                          ("X-Tail", "1\r\n" + tail)]))
        assert status(resp) == 400
        (page,) = gate.got(m)  # (the page's request: its args name the refused URI)
        assert page.target.startswith(b"/oops?from=/api/x?") and page.method == b"GET"
        assert page.header(b"x-page") == [b"oops"]
        for name in (b"authorization", b"cookie", b"x-user", b"x-tail"):
            assert page.header(name) == [], name
        assert not gate.backend.seen(tok.encode()) and not gate.backend.seen(
            f"secret-{m}".encode())


# --- 6. pipelining: each request on its own, and bounded ---------------------------------------

def test_pipelined_requests_are_each_checked(gate: Gate) -> None:
    gate.warm()
    m = marker()
    resp = gate.send(request("GET", f"/api/a?{m}", auth=token())
                     + request("GET", f"/api/b?{m}")
                     + request("GET", f"/api/c?{m}", auth=token()))
    assert statuses(resp) == [200, 401, 200]
    assert [r.target.split(b"?")[0] for r in gate.got(m)] == [b"/api/a", b"/api/c"]


# --- 7. client_max_body_size counts the bytes of a chunked body ----------------------------------

def test_chunked_body_over_the_limit_is_413(gate: Gate) -> None:
    m = marker()
    chunk = b"x" * 1000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
    resp = gate.send(request("POST", f"/small/x?{m}", auth=token(),
                             headers=[("Transfer-Encoding", "chunked")]) + body)
    assert status(resp) == 413
    assert gate.got(m) == []  # never a whole request upstream
    m = marker()
    resp = gate.send(request("POST", f"/small/x?{m}", auth=token(), body=b"y" * 2000))
    assert status(resp) == 413
    assert not gate.backend.seen(m.encode())


def test_a_chunked_bodys_trailers_never_reach_the_backend(gate: Gate) -> None:
    """Trailer fields come after the phases checked the head (the token, the
    headers set from its claims): the backend gets the body and the verified head,
    never a trailer — a second Authorization, a forged X-User, anything else."""
    m = marker()
    body = (b"5\r\nhello\r\n0\r\nAuthorization: Bearer forged-" + m.encode()
            + b"\r\nX-User: admin-" + m.encode() + b"\r\nX-Role: root-" + m.encode()
            + b"\r\n\r\n")
    resp = gate.send(request("POST", f"/api/t?{m}", auth=token(),
                             headers=[("Transfer-Encoding", "chunked")]) + body)
    assert status(resp) == 200
    (rec,) = gate.got(m)
    assert rec.body == b"hello" and rec.header(b"x-user") == [b"\"alice\""]
    assert len(rec.header(b"authorization")) == 1 and rec.header(b"x-role") == []
    for forged in (b"forged-", b"admin-", b"root-"):
        assert not gate.backend.seen(forged + m.encode())


# --- 8. claims that cannot be encoded; no exception reaches the event loop ----------------------

def test_a_lone_surrogate_claim_is_refused(gate: Gate) -> None:
    gate.warm()
    bad = token(name="\ud800")
    payload = bad.split(".")[1]
    assert b"\\ud800" in pyjwt.utils.base64url_decode(payload)  # valid JSON text
    for target in ("/claim/x", "/api/x"):
        m = marker()
        resp = gate.send(request("GET", f"{target}?{m}", auth=bad))
        assert status(resp) == 401, resp
        assert not gate.backend.seen(m.encode())
    # a path that decodes to no UTF-8 still renders into a limit key and a header
    m = marker()
    resp = gate.send(request("GET", f"/claim/%ff%fe?{m}", auth=token(name="\u00e9")))
    assert status(resp) == 200, resp
    (rec,) = gate.got(m)
    assert rec.header(b"x-name") == ['"\u00e9"'.encode()]


# --- 9. regexes are ASCII ------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/%C5%BFtatic/x", "/\u017ftatic/x", "/%E2%84%AAit/x"])
def test_regexes_never_fold_beyond_ascii(gate: Gate, path: str) -> None:
    """``ſ`` (U+017F) folds to ``s`` and the Kelvin sign to ``k`` under Unicode rules:
    the open ``~* ^/static/`` and ``~* ^/kit/`` must not match them."""
    m = marker()
    raw = path.encode("utf-8")
    resp = gate.send(b"GET " + raw + b"?" + m.encode() + b" HTTP/1.1\r\nHost: " + API.encode()
                     + b"\r\n\r\n")
    assert status(resp) in (400, 401), resp
    assert not gate.backend.seen(m.encode())
    m = marker()
    assert status(gate.send(request("GET", f"/STATIC/x?{m}"))) == 200  # ASCII case folds


# --- 10. TRACE and CONNECT --------------------------------------------------------------------

@pytest.mark.parametrize("method,target,code", [
    ("TRACE", "/api/x", 405), ("CONNECT", "/api/x", 405),
    ("CONNECT", f"{API}:443", 400)])  # (nginx's: an invalid request line)
def test_trace_and_connect_are_refused(gate: Gate, method: str, target: str,
                                       code: int) -> None:
    m = marker()
    resp = gate.send(request(method, target, auth=token(), headers=[("X-M", m)])
                     + request("GET", f"/api/x?{m}"))
    assert statuses(resp) == [code]
    assert not gate.backend.seen(m.encode())


@pytest.mark.parametrize("method", ["PROPFIND", "PURGE", "REPORT"])
def test_extension_methods_are_checked_and_proxied(gate: Gate, method: str) -> None:
    m = marker()
    assert status(gate.send(request(method, f"/api/x?{m}"))) == 401
    assert not gate.backend.seen(m.encode())
    assert status(gate.send(request(method, f"/api/x?{m}", auth=token()))) == 200
    assert gate.backend.seen(f"{method} /api/x?{m} ".encode())


@pytest.mark.parametrize("method", ["FOO", "X_Y-Z", "DESCRIBE"])
def test_any_method_nginx_takes_is_checked_and_proxied(gate: Gate, method: str) -> None:
    # nginx takes any [A-Z_-]+ method and proxies it; llhttp knows none of these, so the
    # fast engine parses them under a stand-in and must put the real name back
    m = marker()
    resp = gate.send(request("GET", f"/api/ok?{m}", auth=token())
                     + request(method, f"/api/x?{m}", body=b"hello")
                     + request(method, f"/api/y?{m}", auth="forged." + token()))
    assert statuses(resp) == [200, 401, 401]
    assert not gate.backend.seen(f"/api/x?{m}".encode())
    assert not gate.backend.seen(f"/api/y?{m}".encode())
    gate.warm()
    m = marker()
    assert status(gate.send(request(method, f"/api/x?{m}", auth=token()))) == 200
    gate.check_path(m)
    (plain,) = gate.got(m)
    assert plain.method == method.encode() and plain.header(b"x-user") == [b'"alice"']
    m = marker()
    resp = gate.send(request("GET", f"/api/ok?{m}", auth=token())
                     + request(method, f"/api/z?{m}", auth=token(), body=b"hello"))
    assert statuses(resp) == [200, 200]
    (with_body,) = gate.got(f"/api/z?{m}")
    assert with_body.method == method.encode() and with_body.body == b"hello"


@pytest.mark.parametrize("method", ["get", "G3T", "FOO\t"])
def test_a_method_nginx_refuses_is_400_and_never_forwarded(gate: Gate, method: str) -> None:
    m = marker()
    resp = gate.send(request(method, f"/api/x?{m}", auth=token()) + request("GET", f"/api/x?{m}"))
    assert statuses(resp) == [400]
    assert not gate.backend.seen(m.encode())


@pytest.mark.parametrize("where", ["everywhere", "request line", "one header"])
def test_bare_lf_line_ends_are_400_and_never_forwarded(gate: Gate, where: str) -> None:
    # nginx accepts a bare LF; RFC 9112 lets a recipient do so. fastgate refuses it on
    # both engines (README: differences from nginx): a proxy that reads LF as a line end
    # in front of a backend that does not is a way to smuggle a request
    m = marker()
    data = request("GET", f"/api/x?{m}", auth=token())
    if where == "everywhere":
        data = data.replace(b"\r\n", b"\n")
    elif where == "request line":
        data = data.replace(b"\r\n", b"\n", 1)
    else:
        data = data.replace(b"\r\nAuthorization", b"\nAuthorization")
    assert statuses(gate.send(data)) == [400]
    assert not gate.backend.seen(m.encode())


@pytest.mark.parametrize("body", [b"5\nhello\n0\n\n", b"5\r\nhello\r\n0\n\n",
                                  b"5\r\nhello\r\n0\r\n\n",
                                  b"5\r\nhello\r\n0\r\nX: 1\nY: 2\r\n\r\n"])
def test_a_chunked_body_with_bare_lf_lines_is_400_and_smuggles_nothing(gate: Gate,
                                                                        body: bytes) -> None:
    """h11 took a bare LF as the end of a chunked body's last line: the tokenless
    request after it would have been read as the next one (and the body as whole).
    Both engines refuse the body at once; neither request reaches the backend."""
    gate.warm()
    m, smuggled = marker(), marker()
    data = (request("POST", f"/api/ok?{m}", auth=token(),
                    headers=[("Transfer-Encoding", "chunked")]) + body
            + request("GET", f"/api/x?{smuggled}"))
    assert statuses(gate.send(data)) == [400]
    assert not gate.backend.seen(m.encode()) and not gate.backend.seen(smuggled.encode())


# --- 13, 14. key sets replace; Bearer takes spaces only ------------------------------------------

def test_a_location_with_its_own_keys_refuses_the_outer_secret(gate: Gate) -> None:
    gate.warm()
    m = marker()
    assert status(gate.send(request("GET", f"/jwks/x?{m}", auth=token()))) == 401
    assert not gate.backend.seen(m.encode())


def test_bearer_with_a_tab_is_refused(gate: Gate) -> None:
    m = marker()
    data = request("GET", f"/api/x?{m}").replace(
        b"\r\n\r\n", b"\r\nAuthorization: Bearer\t" + token().encode() + b"\r\n\r\n")
    assert status(gate.send(data)) == 401
    assert not gate.backend.seen(m.encode())


# --- the silent no-ops: $request_length, $proxy_port, upstream keepalive_requests -----------------

def test_request_length_and_proxy_port(gate: Gate) -> None:
    gate.warm()
    m = marker()
    data = request("GET", f"/api/x?{m}", auth=token())
    assert status(gate.send(data)) == 200
    (rec,) = gate.got(m)
    assert rec.header(b"x-length") == [str(len(data)).encode()]
    assert rec.header(b"x-proxy-port") == [b"80"]


def test_upstream_keepalive_requests_is_enforced(gate: Gate) -> None:
    m = marker()
    for i in range(4):
        assert status(gate.send(request("GET", f"/kr/{i}?{m}", host="open.example.com"))) == 200
    conns = [r.connection for r in gate.got(m)]
    assert conns[0] == conns[1] and conns[2] == conns[3] and conns[1] != conns[2], conns


def test_upstream_keepalive_time_is_enforced(gate: Gate) -> None:
    """nginx's upstream keepalive_time: a connection older than it carries the request
    it has, then closes."""
    m = marker()
    for i in range(2):
        assert status(gate.send(request("GET", f"/kt/{i}?{m}", host="open.example.com"))) == 200
    time.sleep(1.2)
    for i in range(2, 4):
        assert status(gate.send(request("GET", f"/kt/{i}?{m}", host="open.example.com"))) == 200
    conns = [r.connection for r in gate.got(m)]
    assert conns[0] == conns[1] == conns[2] and conns[2] != conns[3], conns


def test_a_refused_body_is_never_forwarded(gate: Gate) -> None:
    """Expect: 100-continue without a token: the 401 comes first, no 100, and neither
    the head nor the body reaches the backend; nor does a request pipelined after it."""
    m = marker()
    body = b"secret-body-" + m.encode()
    resp = gate.send(request("POST", f"/api/x?{m}", headers=[("Expect", "100-continue")],
                             body=body) + request("GET", f"/api/y?{m}"))
    assert statuses(resp)[0] == 401 and 100 not in statuses(resp)
    assert not gate.backend.seen(m.encode())


def test_a_missing_claim_never_lets_the_client_header_through(gate: Gate) -> None:
    gate.warm()
    m = marker()
    no_sub = pyjwt.encode({"name": "x"}, SECRET, algorithm="HS256")
    resp = gate.send(request("GET", f"/api/x?{m}", auth=no_sub,
                             headers=[("X-User", "admin"), ("Connection", "X-Host")]))
    assert status(resp) == 200
    (rec,) = gate.got(m)
    assert rec.header(b"x-user") == []  # the claim renders empty: the header is removed
    assert rec.header(b"x-host") == [API.encode()]  # listing it in Connection drops the client's only


# --- 6. a flood of pipelined requests is read one request ahead ---------------------------------

@pytest.mark.parametrize("engine", ["h11", "httptools"])
def test_200k_pipelined_requests_without_reads_stay_bounded(tmp_path: Path, engine: str) -> None:
    g = Gate(tmp_path, engine, "task")
    try:
        one = b"GET /pipe/x HTTP/1.1\r\nHost: open.example.com\r\n\r\n"
        for _ in range(50):  # the worker's steady size first
            assert status(g.send(one)) == 200
        before = proc_status_kib(g.proc.pid, "VmRSS")
        flood = one * 200_000
        s = socket.create_connection(("127.0.0.1", g.port))
        s.setblocking(False)
        sent, deadline = 0, time.time() + 4.0
        while sent < len(flood) and time.time() < deadline:
            try:
                sent += s.send(flood[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.01)
        time.sleep(0.5)
        grown = (proc_status_kib(g.proc.pid, "VmRSS") - before) / 1024
        s.close()
        assert sent > 0
        assert grown < 8, f"worker grew {grown:.1f} MiB with {sent} bytes pipelined"
        assert status(g.send(one)) == 200  # and it still serves
    finally:
        g.stop()


# --- 11. the rewrite module ---------------------------------------------------------------

def test_a_cors_preflight_is_answered_and_nothing_else_passes(gate: Gate) -> None:
    m = marker()
    resp = gate.send(request("OPTIONS", f"/cors/x?{m}")
                     + request("GET", f"/cors/x?{m}")
                     + request("POST", f"/cors/x?{m}", body=b"payload")
                     + request("GET", f"/cors/x?{m}", auth="forged." + token()))
    assert statuses(resp) == [204, 401, 401, 401]
    assert b"Access-Control-Allow-Origin: *" in resp
    assert not gate.backend.seen(m.encode())
    gate.warm()
    m = marker()
    resp = gate.send(request("GET", f"/cors/x?{m}", auth=token()))
    assert status(resp) == 200 and b"Access-Control-Allow-Origin" not in resp
    gate.check_path(m)


def test_a_rewrite_into_the_api_takes_the_api_access_rules(gate: Gate) -> None:
    m = marker()
    resp = gate.send(request("GET", f"/old/x?{m}")
                     + request("GET", f"/old/x?{m}", auth="forged." + token())
                     + request("GET", f"/old/x?{m}", auth=token(exp=1)))
    assert statuses(resp) == [401, 401, 401]
    assert not gate.backend.seen(m.encode())
    gate.warm()
    m = marker()
    assert status(gate.send(request("GET", f"/old/x?{m}", auth=token()))) == 200
    assert gate.backend.seen(f"GET /api/x?{m} ".encode())
    gate.check_path(m)


def test_satisfy_any_outside_the_allowed_network_needs_a_valid_token(gate: Gate) -> None:
    m = marker()
    spoof = [("X-Forwarded-For", "10.0.0.1"), ("X-Real-IP", "10.0.0.1")]
    resp = gate.send(request("GET", f"/lan/x?{m}")
                     + request("GET", f"/lan/x?{m}", headers=spoof)
                     + request("GET", f"/lan/x?{m}", auth="forged." + token(), headers=spoof)
                     + request("GET", f"/lan/x?{m}", auth=token(exp=1)))
    assert statuses(resp) == [401, 401, 401, 401]
    assert not gate.backend.seen(m.encode())
    gate.warm()
    m = marker()
    assert status(gate.send(request("GET", f"/lan/x?{m}", auth=token()))) == 200
    gate.check_path(m)



# --- absolute-form targets and requests without Host, as nginx reads them -----------------------

def test_an_absolute_form_target_takes_its_hosts_token_check(gate: Gate) -> None:
    """An absolute-form target chooses its server by its authority whatever its scheme,
    port, case, or where its path starts (a query straight after the authority), and
    that server's token check runs; a request without Host goes to the default server's
    check: without a valid token none of them reaches the backend. With one, the path
    goes as nginx sends it ("/?..."), beside only the verified claim."""
    m = marker()
    for ask in (request("GET", f"http://{API}?{m}", host="open.example.com"),
                request("GET", f"ftp://{API}/api/x?{m}", host="open.example.com"),
                request("GET", f"HTTP://{API.upper()}:{gate.port}/api/x?{m}",
                        host="open.example.com", auth="forged." + token()),
                request("GET", f"http://open.example.com/api/x?{m}", host=API),
                request("GET", f"/api/x?{m}", host=None, version="1.0")):
        assert status(gate.send(ask)) == 401, ask
    # (an authority nginx's request-line parser refuses: 400, nothing goes on)
    assert status(gate.send(request("GET", f"http://{API}_x/api/x?{m}", auth=token()))) == 400
    assert not gate.backend.seen(m.encode())
    m = marker()
    claim = gate.send(request("GET", f"ftp://{API}/api/x?{m}", host="open.example.com",
                              auth=token(), headers=[("X-User", "mallory")]))
    assert status(claim) == 200
    (rec,) = gate.got(m)
    assert rec.header(b"x-user") == [b"\"alice\""] and rec.target == f"/api/x?{m}".encode()
    gate.warm()
    m = marker()
    assert status(gate.send(request("GET", f"http://{API}?{m}", host="open.example.com",
                                    auth=token()))) == 200
    (rec,) = gate.got(m)
    assert rec.target == f"/?{m}".encode()
    gate.check_path(m)
