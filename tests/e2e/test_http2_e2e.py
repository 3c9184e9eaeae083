"""HTTP/2 to clients (``listen ... http2``) end to end, on both engines: h2c by prior
knowledge and h2 by ALPN beside HTTP/1.1 on the same addresses, the variables, bodies in
and out through flow control, many streams on one connection, resets, the connection's
limits (streams over its life, idle timeout, GOAWAY on a graceful stop) — and the token
check: each attack over HTTP/2, on the callback path (a pooled idle upstream connection)
and the task path, against a backend that keeps every byte it receives, asserting what
it did not get."""

from __future__ import annotations

import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import jwt as pyjwt
import pytest
from conftest import Gateway, free_port
from h2_client import H2Client
from helpers import self_signed
from raw_backend import RawBackend, Received

from fastgate.http.http2 import PREFACE

SECRET = "http2-test-secret-0123456789abcdef-xyz"
BIG = bytes(range(256)) * 4096  # 1 MiB: past every window


def token(sub: str = "alice", exp: int = 60, key: str = SECRET) -> str:
    return pyjwt.encode({"sub": sub, "exp": int(time.time()) + exp}, key, algorithm="HS256")


def _answer(req: Received) -> bytes:
    path = req.target.split(b"?", 1)[0]
    if path.endswith(b"/big"):
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: %d\r\n\r\n%b" % (len(BIG), BIG))
    if path.endswith(b"/chunked"):
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
                b"Keep-Alive: timeout=5\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
    body = (b"%b %b user=%b len=%d body=%b" % (
        req.method, req.target, b",".join(req.header(b"x-user")), len(req.body), req.body[:64]))
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)


def config(port: int, tls_port: int, backend: int, keep: int, tmp: Path, extra: str = "") -> str:
    cert, key = self_signed(tmp, "localhost")
    return f"""error_log stderr info;
http {{
  access_log off;
  upstream be {{ server 127.0.0.1:{backend}; keepalive {keep}; }}
  server {{
    listen 127.0.0.1:{port} http2;
    listen 127.0.0.1:{tls_port} ssl http2;
    ssl_certificate {cert}; ssl_certificate_key {key};
    auth_jwt_key "{SECRET}";
    keepalive_requests 50;
    location / {{ return 200 "proto=$server_protocol h2=$http2 scheme=$scheme req=$request host=$host cl=$content_length\\n"; }}
    location /api/ {{
      auth_jwt on; auth_jwt_alg HS256;
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-User $jwt_claim_sub;
      proxy_pass http://be;
    }}
    location /open/ {{ proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://be; }}
    location /hop/ {{ add_header TE gzip; add_header Upgrade foo; add_header X-Ok 1;
                     proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://be; }}
    location /files/ {{ root {tmp}; }}
    location = /pushing {{ http2_push /api/pushed; http2_push /open/pushed; return 200 "page\n"; }}
    location = /cors {{
      if ($request_method = OPTIONS) {{ add_header Access-Control-Allow-Origin "*"; return 204; }}
      return 200 "get\\n";
    }}
    {extra}
  }}
}}
"""


class Gate:
    def __init__(self, tmp: Path, engine: str, path: str, extra: str = "") -> None:
        self.path = path
        self.backend = RawBackend(answer=_answer)
        self.port, self.tls_port = free_port(), free_port()
        (tmp / "files").mkdir(exist_ok=True)
        (tmp / "files" / "big.bin").write_bytes(BIG)
        self.gw = Gateway(tmp, config(self.port, self.tls_port, self.backend.port,
                                      16 if path == "callback" else 0, tmp, extra),
                          self.port, extra_args=["--http-engine", engine])

    def client(self, tls: bool = False, **kw: object) -> H2Client:
        return H2Client(self.tls_port if tls else self.port, tls=tls, **kw)  # type: ignore[arg-type]

    def warm(self, c: H2Client) -> None:
        """On the callback path: an idle pooled upstream connection for the next
        bodiless request (a warm-up over the same HTTP/2 connection)."""
        if self.path == "callback":
            assert c.get("/api/warm", headers={"authorization": f"Bearer {token()}"}).status == 200
            time.sleep(0.02)

    def got(self, marker: bytes) -> list[Received]:
        return [r for r in self.backend.requests() if marker in r.target]

    def check_path(self, marker: bytes) -> None:
        (rec,) = self.got(marker)
        warm = [r for r in self.backend.requests() if b"/api/warm" in r.target]
        if self.path == "callback":
            assert rec.connection == warm[-1].connection
        else:
            assert all(rec.connection != r.connection for r in self.backend.requests()
                       if r is not rec)

    def stop(self) -> None:
        code = self.gw.stop()
        self.backend.stop()
        err = self.gw.stderr
        assert "Traceback" not in err and "unexpected error" not in err, err
        assert code in (0, -signal.SIGTERM), (code, err)


@pytest.fixture(scope="module", params=[(e, p) for e in ("h11", "httptools")
                                        for p in ("callback", "task")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def gate(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Gate]:
    engine, path = request.param
    g = Gate(tmp_path_factory.mktemp(f"h2-{engine}-{path}"), engine, path)
    yield g
    g.stop()


# --- the protocol ---------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_variables_say_http2(gate: Gate, tls: bool) -> None:
    with gate.client(tls) as c:
        a = c.get("/v?x=1", authority="example.test")
    assert a.status == 200 and a.ended
    assert a.body == (f"proto=HTTP/2.0 h2={'h2' if tls else 'h2c'} "
                      f"scheme={'https' if tls else 'http'} req=GET /v?x=1 HTTP/2.0 "
                      f"host=example.test cl=\n").encode()
    # no field HTTP/2 forbids
    assert not {n for n, _ in a.headers} & {b"connection", b"keep-alive",
                                            b"transfer-encoding"}


def test_http1_on_the_same_addresses(gate: Gate) -> None:
    with socket.create_connection(("127.0.0.1", gate.port), timeout=5) as s:
        s.sendall(b"GET /v HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert out.startswith(b"HTTP/1.1 200") and b"proto=HTTP/1.1 h2= " in out
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", gate.tls_port), timeout=5),
                         server_hostname="localhost") as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        s.sendall(b"GET /v HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert out.startswith(b"HTTP/1.1 200") and b"proto=HTTP/1.1 h2= scheme=https" in out


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_many_streams_bodies_and_flow_control(gate: Gate, tls: bool) -> None:
    """Streams in parallel on one connection: a 1 MiB file and a 1 MiB proxied answer
    through the client's 64 KiB windows, request bodies with and without
    content-length, HEAD, a chunked upstream answer."""
    with gate.client(tls) as c:
        sids = {
            "file": c.request("/files/big.bin"),
            "big": c.request("/open/big"),
            "post": c.request("/open/post", method="POST", body=b"x" * 70000,
                              headers={"content-length": "70000"}),
            "chunk": c.request("/open/nolen", method="POST", body=b"hello"),
            "head": c.request("/files/big.bin", method="HEAD"),
            "te": c.request("/open/chunked"),
        }
        got = dict(zip(sids, c.wait(*sids.values()), strict=True))
    assert got["file"].status == 200 and got["file"].body == BIG
    assert got["big"].status == 200 and got["big"].body == BIG
    assert got["post"].body.startswith(b"POST /open/post user= len=70000 body=xxx")
    assert got["chunk"].body == b"POST /open/nolen user= len=5 body=hello"
    assert got["head"].status == 200 and got["head"].body == b""
    assert got["head"].header(b"content-length") == str(len(BIG)).encode()
    assert got["te"].body == b"abcdef"
    assert all(a.ended for a in got.values())


def test_cors_preflight(gate: Gate) -> None:
    with gate.client() as c:
        a = c.get("/cors", method="OPTIONS")
        b = c.get("/cors")
    assert (a.status, a.header(b"access-control-allow-origin"), a.body) == (204, b"*", b"")
    assert (b.status, b.body) == (200, b"get\n")


def test_fields_http2_cannot_carry_are_dropped(gate: Gate) -> None:
    """A TE other than trailers and an Upgrade (here add_header's; an upstream's are
    hop-by-hop, not passed): the answer goes without them — HTTP/2 would make it
    malformed — never a reset stream. (nginx 1.22 sends them, which an HTTP/2 client
    must refuse.)"""
    with gate.client() as c:
        gate.warm(c)
        a = c.get("/hop/a")
    assert (a.status, a.reset, a.header(b"x-ok")) == (200, None, b"1")
    assert not any(n in (b"te", b"upgrade") for n, _ in a.headers)


def test_a_reset_stream_leaves_the_others(gate: Gate) -> None:
    with gate.client() as c:
        slow = c.request("/files/big.bin")
        c.reset(slow)
        a = c.get("/v")
    assert a.status == 200
    assert c.answers[slow].body != BIG


def test_streams_over_the_connections_life(gate: Gate) -> None:
    """keepalive_requests (50): the 50th stream is answered, with a GOAWAY naming it;
    then the connection closes."""
    with gate.client() as c:
        for _ in range(50):
            assert c.get("/v").status == 200
        deadline = time.time() + 5
        while not c.closed and time.time() < deadline:
            c.read_once()
    assert c.goaway is not None and c.goaway.last_stream_id == 99
    assert c.closed


# --- the token check over HTTP/2 ---------------------------------------------------------------


def test_no_token_never_reaches_the_backend(gate: Gate) -> None:
    with gate.client() as c:
        gate.warm(c)
        bad = token(key="another-secret-entirely-0123456789ab")
        expired = token(exp=-120)
        cases = {
            b"m-none": {},
            b"m-bad": {"authorization": f"Bearer {bad}"},
            b"m-expired": {"authorization": f"Bearer {expired}"},
            b"m-none-alg": {"authorization": "Bearer " + pyjwt.encode(
                {"sub": "alice"}, None, algorithm="none")},
        }
        for marker, headers in cases.items():
            a = c.get(f"/api/{marker.decode()}", headers=headers)
            assert a.status == 401, (marker, a)
        # a body on a refused request is not passed either
        a = c.wait(c.request("/api/m-post", method="POST", body=b"m-body-secret"))[0]
        assert a.status == 401
    raw = gate.backend.raw()
    for marker in (*cases, b"m-post", b"m-body-secret"):
        assert marker not in raw


def test_the_verified_claim_replaces_the_clients(gate: Gate) -> None:
    with gate.client() as c:
        gate.warm(c)
        a = c.get("/api/m-claim", headers={"authorization": f"Bearer {token('bob')}",
                                           "x-user": "admin"})
    assert a.status == 200 and b'user="bob" ' in a.body
    (rec,) = gate.got(b"m-claim")
    assert rec.header(b"x-user") == [b'"bob"']  # JSON-encoded, as the module
    gate.check_path(b"m-claim")


@pytest.mark.parametrize("fields", [
    # a second request line hidden in :path, or a method that is not a token
    [(b":method", b"GET"), (b":path", b"/api/m-sp HTTP/1.1"), (b":scheme", b"http"),
     (b":authority", b"a")],
    [(b":method", b"GET /api/m-meth"), (b":path", b"/"), (b":scheme", b"http"),
     (b":authority", b"a")],
], ids=["space-in-path", "space-in-method"])
def test_a_malformed_stream_is_reset(gate: Gate, fields: list[tuple[bytes, bytes]]) -> None:
    with gate.client(validate=False) as c:
        sid = c.request(fields=fields)
        (a,) = c.wait(sid)
        assert a.reset == 1 and a.status == 0  # PROTOCOL_ERROR
        assert c.get("/v").status == 200  # the connection serves on
    assert not gate.got(b"m-sp") and not gate.got(b"m-meth")


@pytest.mark.parametrize("fields", [
    # fields HTTP/2 forbids: each ends the connection (GOAWAY), nothing proxied
    [(b"transfer-encoding", b"chunked")],
    [(b"connection", b"keep-alive")],
    [(b"X-Upper", b"1")],
    [(b"x-crlf", b"a\r\nx-user: admin")],
    [(b"host", b"other.example")],
], ids=["te", "connection", "uppercase", "crlf", "host-mismatch"])
def test_forbidden_fields_end_the_connection(gate: Gate,
                                            fields: list[tuple[bytes, bytes]]) -> None:
    base = [(b":method", b"GET"), (b":path", b"/open/m-forbidden"), (b":scheme", b"http"),
            (b":authority", b"a"), (b"authorization", f"Bearer {token()}".encode())]
    with gate.client(validate=False) as c:
        c.request(fields=base + fields)
        deadline = time.time() + 5
        while not c.closed and time.time() < deadline:
            c.read_once()
    assert c.goaway is not None and c.goaway.error_code == 1
    assert not gate.got(b"m-forbidden")


def test_data_past_content_length_is_refused(gate: Gate) -> None:
    """A body longer than its content-length (the smuggling shape): nothing past the
    declared length reaches the request path, and the connection ends."""
    with gate.client(validate=False) as c:
        sid = c.request("/open/m-cl", method="POST", headers={"content-length": "4"},
                        end=False)
        c.send(sid, b"abcdGET /open/m-smuggled HTTP/1.1\r\nhost: a\r\n\r\n", end=True)
        deadline = time.time() + 5
        while not c.closed and time.time() < deadline:
            c.read_once()
    assert c.goaway is not None
    assert not gate.got(b"m-smuggled")
    assert b"m-smuggled" not in gate.backend.raw()


# --- the connection's life -------------------------------------------------------------------


def test_idle_timeout_and_graceful_stop(tmp_path: Path, engine: str) -> None:
    g = Gate(tmp_path, engine, "task", extra="")
    try:
        conf = g.gw.conf.read_text().replace("keepalive_requests 50;",
                                             "keepalive_requests 50; keepalive_timeout 1s;")
        g.gw.stop()
        g.gw = Gateway(tmp_path, conf, g.port, extra_args=["--http-engine", engine])
        with g.client() as c:
            assert c.get("/v").status == 200
            deadline = time.time() + 5
            while not c.closed and time.time() < deadline:
                c.read_once()
            assert c.goaway is not None and c.goaway.error_code == 0 and c.closed
        c = g.client()
        try:
            sid = c.request("/open/slow?m-stop", method="POST", end=False)
            time.sleep(0.2)
            g.gw.signal(signal.SIGQUIT)
            deadline = time.time() + 3
            while c.goaway is None and time.time() < deadline:
                c.read_once()
            assert c.goaway is not None and c.goaway.last_stream_id == sid
            c.send(sid, b"done", end=True)
            (a,) = c.wait(sid)
            assert a.status == 200 and a.body.endswith(b"len=4 body=done")
        finally:
            c.close()
    finally:
        g.stop()


def _gone(s: socket.socket) -> bool:
    """The gateway closed ``s`` (an end of stream, or a reset: bytes left unread)."""
    try:
        return s.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_a_connection_that_has_not_said_its_protocol_is_counted_and_timed(
        tmp_path: Path, engine: str) -> None:
    """A cleartext http2 address waits for the first bytes to choose HTTP/2 or
    HTTP/1.1; meanwhile the connection counts against worker_connections and
    client_header_timeout closes it, as any connection with no request yet."""
    port = free_port()
    gw = Gateway(tmp_path, f"""error_log stderr info; events {{ worker_connections 2; }}
      http {{ access_log off; client_header_timeout 1s;
        server {{ listen 127.0.0.1:{port} http2; return 200 "ok\\n"; }} }}""", port,
                 extra_args=["--http-engine", engine])
    try:
        time.sleep(0.2)  # the start-up probe's connection has gone
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        for s in held:
            s.sendall(b"PRI * HTTP/2.0\r\n")  # half a preface
        extra = socket.create_connection(("127.0.0.1", port), timeout=5)
        extra.settimeout(0.5)  # at once, well before client_header_timeout
        extra.sendall(b"PRI * HTTP/2.0\r\n")
        assert _gone(extra)
        started = time.time()
        assert all(_gone(s) for s in held)  # by client_header_timeout
        assert 0.3 < time.time() - started < 4.5
        for s in [*held, extra]:
            s.close()
        with H2Client(port) as c:
            assert c.get("/").body == b"ok\n"
    finally:
        code = gw.stop()
    assert "2 worker_connections are not enough" in gw.stderr
    assert "Traceback" not in gw.stderr and code in (0, -signal.SIGTERM)


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_proxy_protocol_before_http2(tmp_path: Path, engine: str, tls: bool) -> None:
    """A load balancer's PROXY header, then the preface (or the TLS handshake and ALPN):
    every stream of the connection knows the client's address from it."""
    port = free_port()
    cert, key = self_signed(tmp_path, "localhost")
    gw = Gateway(tmp_path, f"""error_log stderr info;
      http {{ access_log off;
        server {{ listen 127.0.0.1:{port} {'ssl ' if tls else ''}proxy_protocol http2;
          ssl_certificate {cert}; ssl_certificate_key {key};
          set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;
          return 200 "$proxy_protocol_addr:$proxy_protocol_port $remote_addr $http2\\n"; }} }}""",
                 port, extra_args=["--http-engine", engine])
    try:
        header = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n"
        with H2Client(port, tls=tls, before=header) as c:
            answers = c.wait(*[c.request(f"/{i}") for i in range(3)])
        want = f"203.0.113.7:51234 203.0.113.7 {'h2' if tls else 'h2c'}\n".encode()
        assert [(a.status, a.body) for a in answers] == [(200, want)] * 3
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"PROXY TCP4 broken\r\n" + PREFACE)
            assert _gone(s)
    finally:
        code = gw.stop()
    assert "broken header" in gw.stderr
    assert "Traceback" not in gw.stderr and code in (0, -signal.SIGTERM)


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_a_push_carries_no_credentials(gate: Gate, tls: bool) -> None:
    """A page pushing a protected URI, asked with a valid token: the push is a request
    of its own without the token (nginx copies only the authority, Accept-Encoding,
    Accept-Language and User-Agent), so the protected location refuses it (401) and
    its backend never sees it — on both paths, over h2c and h2; the page itself and an
    open push are served."""
    c = gate.client(tls=tls)
    scheme = b"http"  # (the request's :scheme, as nginx's r->schema: the test client's)
    try:
        gate.warm(c)
        before = len(gate.backend.requests())
        sid = c.request("/pushing", headers={
            "authorization": f"Bearer {token()}", "cookie": "session=secret",
            "x-push-test": "1"})
        c.wait(sid)
        pushed = [p for _, p, _ in c.promises]
        answers = c.wait(*pushed)
        assert [fields for _, _, fields in c.promises] == [
            [(b":method", b"GET"), (b":path", b"/api/pushed"), (b":scheme", scheme),
             (b":authority", b"localhost")],
            [(b":method", b"GET"), (b":path", b"/open/pushed"), (b":scheme", scheme),
             (b":authority", b"localhost")]]
        assert [a.status for a in answers] == [401, 200]
        assert c.answers[sid].status == 200 and c.answers[sid].body == b"page\n"
        time.sleep(0.1)
        got = gate.backend.requests()[before:]
        assert [r.target for r in got] == [b"/open/pushed"]
        assert not [h for h in got[0].headers
                    if h[0].lower() in (b"authorization", b"cookie", b"x-push-test")]
    finally:
        c.close()
