"""grpc_pass end to end on both engines, against an HTTP/2 application that keeps every
request it receives (tests/e2e/grpc_backend.py): the fields and body it gets, the answer
relayed with gRPC's trailers after a chunked body, what is hidden, the failures as
nginx's (502 before the head, a cut after), grpcs:// with ALPN and certificate checks —
a request refused by auth_jwt reaching the application not at all — and, with nginx
1.22 as the oracle, the same fields, answers and trailers for the same requests."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import request
from e2e_util import CUT, bearer, raw_exchange
from grpc_backend import GrpcBackend, GrpcReceived, echo
from h2_client import H2Client
from helpers import dechunk, self_signed, trailers

SECRET = "grpc-test-secret-0123456789abcdef-xyz"
GRPC = [(b"content-type", b"application/grpc")]
BIG = bytes(range(256)) * 1200  # 300 KiB: past every first flow-control window


def _answer(r: GrpcReceived) -> list[tuple[Any, ...]]:
    path = r.path.split("?")[0]
    last = path.rsplit("/", 1)[-1]
    if last == "trailers-only":
        return [("head", 200, GRPC + [(b"grpc-status", b"12"),
                                      (b"grpc-message", b"unimplemented")], True)]
    if path.startswith(("/status/", "/intercept/")):
        return [("head", int(last), [(b"content-type", b"text/plain")]),
                ("data", b"status page\n"), ("end",)]
    if last == "length":
        return [("head", 200, [(b"content-length", b"5")]), ("data", b"five!"),
                ("trailers", [(b"grpc-status", b"0")])]
    if last == "hidden":
        return [("head", 200, [(b"date", b"Mon, 01 Jan 2001 00:00:00 GMT"),
                               (b"server", b"app/1"), (b"x-accel-buffering", b"no"),
                               (b"x-secret", b"s3"), (b"x-kept", b"k")]),
                ("data", b"ok"), ("trailers", [(b"grpc-status", b"0"),
                                               (b"x-secret", b"t")])]
    if last == "big":
        return [("head", 200, GRPC), ("data", BIG), ("trailers", [(b"grpc-status", b"0")])]
    if last == "accel":
        return [("head", 200, [(b"x-accel-redirect", b"/internal/there")]), ("end",)]
    failures = {
        "reset": [("reset", 2)],
        "reset-after": [("head", 200, GRPC), ("data", b"part"), ("reset", 2)],
        "goaway": [("goaway", 11, 0)],
        "close": [("close",)],
        "close-after": [("head", 200, GRPC), ("data", b"part"), ("close",)],
        "slow": [("wait",)],
        "info": [("head", 103, [(b"link", b"</a>")]), ("head", 200, GRPC), ("end",)],
        "badstatus": [("head", "2x0", GRPC), ("end",)],
        "drip": [("head", 200, GRPC), ("drip",)],
    }
    return failures.get(last) or echo(r)


def _config(port: int, app: int, dead: int, extra: str = "") -> str:
    return f"""error_log stderr info;
http {{ access_log off;
  upstream app {{ server 127.0.0.1:{app}; }}
  server {{ listen 127.0.0.1:{port} http2;
    location / {{ grpc_pass grpc://127.0.0.1:{app}; grpc_read_timeout 1s;
      grpc_set_header X-Set "v-$request_method"; grpc_set_header X-Empty "$arg_none";
      grpc_hide_header x-secret; }}
    location /api/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
      grpc_set_header X-User $jwt_claim_sub; grpc_pass app; }}
    location /intercept/ {{ grpc_intercept_errors on; error_page 404 =200 /fallback;
      grpc_pass 127.0.0.1:{app}; }}
    location /host/ {{ grpc_set_header Host "named.example"; grpc_pass app; }}
    location /dead/ {{ grpc_pass 127.0.0.1:{dead}; }}
    location = /fallback {{ return 200 "fallback\\n"; }}
    location /internal/ {{ internal; return 200 "accel $uri\\n"; }}
    {extra}
  }} }}"""


@pytest.fixture
def served(gateway, free) -> Iterator[tuple[Any, GrpcBackend, Any]]:  # type: ignore[no-untyped-def]
    app = GrpcBackend(_answer)
    port = free()
    g = gateway(_config(port, app.port, free()), port)

    def ask(method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        return request(port, method, path, body, headers, timeout=10)

    ask.port = port  # type: ignore[attr-defined]
    yield ask, app, g
    app.stop()


def _fields(r: GrpcReceived) -> dict[bytes, bytes]:
    return dict(r.fields)


def test_the_request_as_nginx_builds_it(served) -> None:  # type: ignore[no-untyped-def]
    ask, app, _ = served
    status, headers, body = ask("POST", "/pkg.Svc/Call?x=1",
                                {"X-Custom": "v", "TE": "trailers", "Keep-Alive": "5",
                                 "Expect": "", "Upgrade": "h2c"}, b"the body")
    assert (status, headers["x-app"]) == (200, "grpc")
    r = app.requests()[-1]
    f = _fields(r)
    assert [n for n, _ in r.fields[:4]] == [b":method", b":scheme", b":path", b":authority"]
    assert (f[b":method"], f[b":scheme"], f[b":path"]) == (b"POST", b"http",
                                                            b"/pkg.Svc/Call?x=1")
    assert f[b":authority"] == f"127.0.0.1:{app.port}".encode()
    assert (f[b"x-set"], f[b"content-length"], f[b"te"]) == (b"v-POST", b"8", b"trailers")
    assert f[b"x-custom"] == b"v" and r.body == b"the body"
    for gone in (b"x-empty", b"keep-alive", b"expect", b"upgrade", b"connection", b"host"):
        assert gone not in f, gone
    assert all(n == n.lower() for n, _ in r.fields)
    assert json.loads(body)["body"] == "the body"
    # no TE: trailers from the client, none to the application
    ask("GET", "/plain")
    assert b"te" not in _fields(app.requests()[-1])
    # grpc_set_header Host: a host field, no :authority
    ask("GET", "/host/x")
    f = _fields(app.requests()[-1])
    assert b":authority" not in f and f[b"host"] == b"named.example"


def test_trailers_after_a_chunked_body(served) -> None:  # type: ignore[no-untyped-def]
    ask, _, _ = served
    out = raw_exchange(ask.port, b"POST /pkg.Svc/Call HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 2\r\nConnection: close\r\n\r\nhi")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
    assert json.loads(dechunk(body))["body"] == "hi"
    assert trailers(body) == [b"grpc-status: 0", b"grpc-message: ok"]
    # HTTP/1.0: the body to the connection's end, no trailers
    out = raw_exchange(ask.port, b"GET /pkg.Svc/Call HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"chunked" not in head and json.loads(body)["fields"]
    # a length from the application: no chunks, so no trailers (as nginx)
    out = raw_exchange(ask.port, b"GET /length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"content-length: 5" in head.lower() and body == b"five!"
    # trailers-only: the status in the head, an empty body
    status, headers, body = ask("GET", "/pkg.Svc/trailers-only")
    assert (status, headers["grpc-status"], headers["content-length"], body) == (
        200, "12", "0", b"")


def test_hidden_headers_and_trailers(served) -> None:  # type: ignore[no-untyped-def]
    ask, _, _ = served
    out = raw_exchange(ask.port, b"GET /hidden HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"x-kept: k" in head.lower() and b"x-secret" not in head.lower()
    assert b"app/1" not in head and b"2001" not in head and b"x-accel" not in head.lower()
    assert dechunk(body) == b"ok" and trailers(body) == [b"grpc-status: 0"]


def test_large_bodies_both_ways(served) -> None:  # type: ignore[no-untyped-def]
    ask, app, _ = served
    status, _, body = ask("GET", "/big")
    assert status == 200 and body == BIG
    status, _, body = ask("POST", "/up", {"Content-Type": "application/grpc"}, BIG)
    assert status == 200 and app.requests()[-1].body == BIG
    assert json.loads(body)["body"] == BIG.decode("latin-1")


@pytest.mark.parametrize(("path", "message"), [
    ("/reset", "upstream rejected request with error 2"),
    ("/goaway", "upstream sent goaway with error 11"),
    # (a close with the gateway's SETTINGS ack unread may reach it as a reset)
    ("/close", ("upstream prematurely closed connection while reading response header",
                "recv() failed (104: Connection reset by peer) while reading response header")),
    ("/info", 'upstream sent unexpected :status "103"'),
    ("/badstatus", 'upstream sent invalid :status "2x0"'),
    ("/dead/x", "connect() failed (111: Connection refused) while connecting to upstream"),
])
def test_failures_before_the_head(served, path: str, message: str | tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    ask, _, g = served
    status, _, _ = ask("GET", path)
    assert status == 502
    messages = (message,) if isinstance(message, str) else message
    deadline = time.monotonic() + 3  # (the log is written in batches, after the answer)
    while not any(m in g.stderr for m in messages) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(m in g.stderr for m in messages) and "Traceback" not in g.stderr, g.stderr


def test_failures_after_the_head_cut_the_response(served) -> None:  # type: ignore[no-untyped-def]
    ask, _, g = served
    for path in ("/reset-after", "/close-after"):
        with pytest.raises(CUT):
            ask("GET", path)
    status, _, _ = ask("GET", "/slow")
    assert status == 504
    assert "upstream timed out (110: Connection timed out) while reading response header" \
        in g.stderr and "Traceback" not in g.stderr


def test_intercepted_errors_and_accel_redirect(served) -> None:  # type: ignore[no-untyped-def]
    ask, _, _ = served
    assert ask("GET", "/intercept/404")[::2] == (200, b"fallback\n")
    assert ask("GET", "/status/404")[::2] == (404, b"status page\n")
    assert ask("GET", "/accel")[::2] == (200, b"accel /internal/there\n")


@pytest.mark.parametrize("auth", [None, "Bearer not.a.token", "expired"])
def test_a_refused_request_reaches_no_application(served, auth) -> None:  # type: ignore[no-untyped-def]
    ask, app, _ = served
    headers = {"X-User": "admin"}
    if auth == "expired":
        headers |= bearer(SECRET, -120)
    elif auth:
        headers["Authorization"] = auth
    status, _, _ = ask("POST", "/api/pkg.Svc/Call", headers, b"SECRET-BODY")
    assert status == 401 and app.raw() == b""


def test_the_verified_claim_replaces_the_clients(served) -> None:  # type: ignore[no-untyped-def]
    ask, app, _ = served
    status, _, _ = ask("GET", "/api/pkg.Svc/Me", {**bearer(SECRET), "X-User": "admin"})
    assert status == 200
    f = _fields(app.requests()[-1])
    assert f[b"x-user"] == b'"alice"' and b"admin" not in app.raw()  # (the module's JSON)


# --- a gRPC client over HTTP/2 (listen ... http2): the usual way gRPC reaches grpc_pass ---

GRPC_CALL = {"content-type": "application/grpc", "te": "trailers"}
MESSAGE = b"\x00\x00\x00\x00\x05hello"  # one length-prefixed gRPC message


def test_a_grpc_client_over_http2(served) -> None:  # type: ignore[no-untyped-def]
    ask, app, _ = served
    with H2Client(ask.port) as c:
        sids = [c.request(f"/pkg.Svc/Call{i}", "POST", GRPC_CALL, MESSAGE) for i in range(3)]
        answers = c.wait(*sids)
        trailers_only = c.get("/pkg.Svc/trailers-only", method="POST", headers=GRPC_CALL)
        big = c.get("/pkg.Svc/big", method="POST", headers=GRPC_CALL)
    for i, a in enumerate(answers):
        assert (a.status, a.ended, a.header(b"content-type")) == (200, True, b"application/grpc")
        # the application's trailers reach the client as HTTP/2 trailers
        assert a.trailers == [(b"grpc-status", b"0"), (b"grpc-message", b"ok")]
        seen = dict((n.encode(), v.encode()) for n, v in json.loads(a.body)["fields"])
        assert seen[b":path"] == f"/pkg.Svc/Call{i}".encode() and seen[b"te"] == b"trailers"
        assert json.loads(a.body)["body"] == MESSAGE.decode("latin-1")
    got = {r.path: r for r in app.requests()}
    assert all(got[f"/pkg.Svc/Call{i}"].body == MESSAGE for i in range(3))
    assert (trailers_only.status, trailers_only.header(b"grpc-status"),
            trailers_only.body) == (200, b"12", b"")
    assert big.body == BIG and big.trailers == [(b"grpc-status", b"0")]


@pytest.mark.parametrize("auth", [None, "Bearer not.a.token", "expired"])
def test_a_refused_grpc_call_over_http2_reaches_no_application(served, auth) -> None:  # type: ignore[no-untyped-def]
    ask, app, _ = served
    headers = {**GRPC_CALL, "x-user": "admin"}
    if auth == "expired":
        headers |= {k.lower(): v for k, v in bearer(SECRET, -120).items()}
    elif auth:
        headers["authorization"] = auth
    with H2Client(ask.port) as c:
        a = c.get("/api/pkg.Svc/Call", method="POST", headers=headers, body=b"SECRET-BODY")
        ok = c.get("/api/pkg.Svc/Me", method="POST", body=MESSAGE, headers={
            **GRPC_CALL, "x-user": "admin",
            **{k.lower(): v for k, v in bearer(SECRET).items()}})
    assert a.status == 401 and a.ended
    assert b"SECRET-BODY" not in app.raw() and b"admin" not in app.raw()
    assert ok.status == 200 and ok.trailers[0] == (b"grpc-status", b"0")
    (r,) = app.requests()
    assert r.path == "/api/pkg.Svc/Me" and _fields(r)[b"x-user"] == b'"alice"'


def _tls_backend(tmp_path: Path) -> tuple[GrpcBackend, Path]:
    cert, key = self_signed(tmp_path, "localhost")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    return GrpcBackend(_answer, tls=ctx), cert


def test_grpcs_with_alpn_and_certificate_checks(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    app, cert = _tls_backend(tmp_path)
    other, _ = self_signed(tmp_path, "localhost", stem="other-")
    port = free()
    try:
        gateway(f"""error_log stderr info;
http {{ access_log off;
  server {{ listen 127.0.0.1:{port};
    location /ok/ {{ grpc_pass grpcs://127.0.0.1:{app.port}; grpc_ssl_verify on;
      grpc_ssl_name localhost; grpc_ssl_trusted_certificate {cert}; }}
    location /wrong/ {{ grpc_pass grpcs://127.0.0.1:{app.port}; grpc_ssl_verify on;
      grpc_ssl_name localhost; grpc_ssl_trusted_certificate {other}; }}
  }} }}""", port)
        status, _, body = request(port, "GET", "/ok/pkg.Svc/Call", timeout=10)
        assert status == 200
        assert [":scheme", "https"] in json.loads(body)["fields"]
        seen = len(app.raw())
        status, _, _ = request(port, "POST", "/wrong/pkg.Svc/Call", b"SECRET-BODY", timeout=10)
        assert status == 502 and b"SECRET-BODY" not in app.raw()[seen:]
        assert len(app.requests()) == 1
    finally:
        app.stop()


# --- nginx as the oracle ----------------------------------------------------------------------

PARITY = """
server { listen 127.0.0.1:PORT;
  location / { grpc_pass grpc://APP; grpc_set_header X-Set "$request_method:$uri";
    grpc_hide_header x-secret; grpc_read_timeout 2s; }
  location /h/ { grpc_set_header Host "h.example"; grpc_set_header TE ""; grpc_pass APP; }
  location /r/ { rewrite ^/r/(.*)$ /pkg.Svc/$1 break; grpc_pass APP; }
}"""

PARITY_REQUESTS = [
    ("POST", "/pkg.Svc/Call?x=1&y=%20z", ("Content-Type: application/grpc", "TE: trailers",
                                          "X-Multi: 1", "X-Multi: 2", "Keep-Alive: 3"),
     b"\x00\x00\x00\x00\x02hi"),
    ("GET", "/plain", ("X-Trace: t1", "Upgrade: h2c", "Expect: x"), b""),
    ("GET", "/h/x", ("TE: trailers",), b""),
    ("GET", "/r/Sp%61ced%20name?q=1", (), b""),
    ("HEAD", "/head", (), b""),
    ("GET", "/hidden", (), b""),
    ("GET", "/x/trailers-only", (), b""),
    ("GET", "/status/404", (), b""),
    ("GET", "/length", (), b""),
    ("GET", "/big", (), b""),
    ("GET", "/reset", (), b""),
    ("GET", "/goaway", (), b""),
    ("GET", "/info", (), b""),
]


def _norm_fields(r: GrpcReceived, port: int) -> list[tuple[bytes, bytes]]:
    return [(n, v.replace(str(port).encode(), b"P")) for n, v in r.fields]


def test_nginx_sends_and_relays_the_same(tmp_path: Path, engine: str) -> None:
    from test_nginx_parity_e2e import NGINX, Side, _request

    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    apps = [GrpcBackend(_answer) for _ in range(2)]
    sides = []
    try:
        for kind, app in zip(("nginx", "fastgate"), apps, strict=True):
            sides.append(Side(kind, tmp_path, PARITY.replace("APP", f"127.0.0.1:{app.port}"),
                              engine))
        nginx, fastgate = sides
        for method, path, headers, body in PARITY_REQUESTS:
            raw = _request(method, path, *headers, body=body)
            want, got = nginx.send(raw), fastgate.send(raw)
            what = f"{method} {path}"
            assert got[0] == want[0], f"{what}: {got[0]}, nginx {want[0]}"
            # (the gateways' own pages name them: their lengths differ)
            skipped = ("date", "server") + (
                ("content-length",) if want[0] >= 500 else ())
            for name in set(want[1]) | set(got[1]):
                if name not in skipped:
                    assert got[1].get(name) == want[1].get(name), f"{what}: {name}"
            # (an echo names its application's port)
            mine_port, their_port = str(apps[1].port).encode(), str(apps[0].port).encode()
            if want[1].get("transfer-encoding") == "chunked":
                assert (dechunk(got[2]).replace(mine_port, b"P")
                        == dechunk(want[2]).replace(their_port, b"P")), what
                assert trailers(got[2]) == trailers(want[2]), what
            elif want[0] < 300:
                assert got[2].replace(mine_port, b"P") == want[2].replace(their_port, b"P"), \
                    what
        mine, theirs = apps[1].requests(), apps[0].requests()
        assert len(mine) == len(theirs)
        for ours, their in zip(mine, theirs, strict=True):
            assert _norm_fields(ours, apps[1].port) == _norm_fields(their, apps[0].port)
            assert ours.body == their.body
    finally:
        for side in sides:
            side.stop()
        for app in apps:
            app.stop()


@pytest.mark.parametrize("line", [b":path: /admin.Svc/Drop", b":authority: evil",
                                  b"X-A: 1\r\n :method: DELETE", b"X-B: a\x00b"])
def test_no_client_field_becomes_a_pseudo_field(served, line: bytes) -> None:  # type: ignore[no-untyped-def]
    ask, app, _ = served
    out = raw_exchange(ask.port, b"GET /pkg.Svc/Call HTTP/1.1\r\nHost: x\r\n" + line
                       + b"\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ") and app.raw() == b""


def test_a_client_that_goes_ends_its_server_stream(served) -> None:  # type: ignore[no-untyped-def]
    import socket

    ask, app, _ = served
    with socket.create_connection(("127.0.0.1", ask.port), timeout=5) as s:
        s.sendall(b"GET /pkg.Svc/drip HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while got.count(b"tick") < 3:
            got += s.recv(4096)
    # the stream never ends of itself: the gateway ends it when its client goes
    deadline = time.monotonic() + 3
    while app.closed() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.closed() == 1


# --- streaming calls: the client's body goes as it comes, the answer meanwhile -----------------


def _msg(text: bytes) -> bytes:
    return b"\x00\x00\x00\x00" + bytes([len(text)]) + text  # one length-prefixed message


def _until(c: H2Client, sid: int, want: bytes) -> None:
    deadline = time.monotonic() + 5
    while want not in c.answers[sid].body:
        assert time.monotonic() < deadline and c.answers[sid].reset is None, c.answers[sid]
        c.read_once()


def test_a_bidirectional_call_goes_message_by_message(served) -> None:  # type: ignore[no-untyped-def]
    """Each message of an open call reaches the application, and its answer the client,
    before the client's next one (a body read whole first would wait for the client's
    end, and the call would hang). A call without a valid token, its stream left open,
    reaches nothing."""
    ask, app, _ = served
    token = {k.lower(): v for k, v in bearer(SECRET).items()}
    with H2Client(ask.port) as c:
        refused = c.request("/api/pkg.Svc/Chat", "POST", {**GRPC_CALL, "x-user": "admin"},
                            body=_msg(b"SECRET"), end=False)
        assert c.wait(refused)[0].status == 401
        sid = c.request("/api/pkg.Svc/Chat", "POST", {**GRPC_CALL, **token}, end=False)
        sent = [_msg(b"m%d" % i) for i in range(3)]
        for m in sent:
            c.send(sid, m)
            _until(c, sid, m)  # its echo came back: the stream is still open
        c.send(sid, b"", end=True)
        (a,) = c.wait(sid)
    assert (a.status, a.body, a.trailers) == (200, b"".join(sent), [(b"grpc-status", b"0")])
    (r,) = app.requests()
    assert r.body == b"".join(sent) and _fields(r)[b"x-user"] == b'"alice"'
    assert b"SECRET" not in app.raw() and b"admin" not in app.raw()


def test_a_bidirectional_call_over_http1(served) -> None:  # type: ignore[no-untyped-def]
    import socket

    ask, app, _ = served
    auth = bearer(SECRET)["Authorization"]
    with socket.create_connection(("127.0.0.1", ask.port), timeout=5) as s:
        s.sendall(f"POST /api/pkg.Svc/Chat HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
                  "Content-Type: application/grpc\r\nTE: trailers\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n".encode())
        got = b""
        for i in range(3):
            m = _msg(b"h%d" % i)
            s.sendall(b"%x\r\n%s\r\n" % (len(m), m))
            while m not in got:
                got += s.recv(4096)
        s.sendall(b"0\r\n\r\n")
        while not got.endswith(b"\r\n\r\n") or b"grpc-status" not in got:
            got += s.recv(4096)
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
    assert b"grpc-status: 0" in body
    (r,) = app.requests()
    assert r.body == b"".join(_msg(b"h%d" % i) for i in range(3))


def test_a_streamed_body_past_the_limit(gateway, free) -> None:  # type: ignore[no-untyped-def]
    """client_max_body_size counts a streamed body as it comes: past it before the
    answer began, a 413; after (the application answered at once), the stream is cut."""
    app = GrpcBackend(_answer)
    try:
        port = free()
        gateway(_config(port, app.port, free(), extra="location /limited/ { "
                        f"client_max_body_size 16; grpc_pass 127.0.0.1:{app.port}; }}"), port)
        with H2Client(port) as c:
            early = c.request("/limited/pkg.Svc/Call", "POST", GRPC_CALL, body=_msg(b"x" * 8),
                              end=False)
            c.send(early, _msg(b"y" * 8))
            (a,) = c.wait(early)
            live = c.request("/limited/pkg.Svc/Chat", "POST", GRPC_CALL, end=False)
            c.send(live, _msg(b"ok"))
            _until(c, live, _msg(b"ok"))
            c.send(live, _msg(b"z" * 20))
            (b,) = c.wait(live)
        assert a.status == 413
        assert b.status == 200 and (b.reset is not None or not b.trailers)
        assert app.requests() == []  # neither call ended as a whole request
    finally:
        app.stop()


def test_a_body_a_mirror_read_first_still_reaches_the_application(gateway, free) -> None:  # type: ignore[no-untyped-def]
    """mirror reads the body whole before the content phase: the gRPC stream then
    sends that body (not what is left of the client's, which is nothing)."""
    from raw_backend import RawBackend

    app, shadow = GrpcBackend(_answer), RawBackend()
    try:
        port = free()
        gateway(_config(port, app.port, free(), extra=(
            f"location /mirrored/ {{ mirror /shadow; grpc_pass 127.0.0.1:{app.port}; }}\n"
            f"location = /shadow {{ internal; proxy_pass http://127.0.0.1:{shadow.port}; }}")),
            port)
        with H2Client(port) as c:
            a = c.get("/mirrored/pkg.Svc/Call", method="POST", headers=GRPC_CALL,
                      body=MESSAGE)
        assert a.status == 200 and json.loads(a.body)["body"] == MESSAGE.decode("latin-1")
        (r,) = app.requests()
        assert r.body == MESSAGE
        deadline = time.monotonic() + 5
        while not shadow.requests() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [s.body for s in shadow.requests()] == [MESSAGE]
    finally:
        app.stop()
        shadow.stop()
