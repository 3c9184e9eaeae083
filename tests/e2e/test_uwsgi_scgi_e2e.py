"""uwsgi_pass and scgi_pass end to end on both engines, against applications that keep
every byte they receive: what nginx 1.22 sends (compared byte for byte: the same
request through nginx and through fastgate, each to its own recording application),
the answers relayed (an HTTP status line or a CGI head), the failures — and a request
refused by auth_jwt reaching the application not at all."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import jwt as pyjwt
import pytest
from conftest import request
from e2e_util import CUT
from fastcgi_backend import RESET, FcgiReceived, StreamBackend
from helpers import self_signed

SECRET = "uwsgi-scgi-test-secret-0123456789abcdef"
KINDS = ("uwsgi", "scgi")


def _answer(r: FcgiReceived) -> bytes:
    uri = (r.param(b"REQUEST_URI") or b"").decode()
    if uri.endswith("/cgi"):
        return b"Status: 201 Made\r\nContent-Type: text/plain\r\nX-App: cgi\r\n\r\nmade"
    if uri.endswith("/moved"):
        return b"Location: /there\r\n\r\n"
    if uri.endswith("/length"):
        return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfive!"
    if uri.endswith("/short"):
        return b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nnot fifty"
    if uri.endswith("/nohead"):
        return b"HTTP/1.1 200 OK\r\nX-Unfinished: yes"
    if uri.endswith("/reset"):  # no length: only the connection's end would end it
        return b"HTTP/1.1 200 OK\r\n\r\npart of it" + RESET
    if uri.endswith("/badline"):
        return b"HTTP/1.x 200 OK\r\n\r\n"
    params = {n.decode("latin-1"): v.decode("latin-1") for n, v in r.params}
    body = json.dumps({"params": params, "order": [n.decode() for n, _ in r.params],
                       "stdin": r.stdin.decode("latin-1")}).encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-App: http\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def _config(port: int, kind: str, app: int, conf_dir: Path) -> str:
    return f"""error_log stderr info;
http {{ access_log off;
  upstream app {{ server 127.0.0.1:{app}; }}
  server {{ listen 127.0.0.1:{port};
    location / {{ include {conf_dir}/{kind}_params; {kind}_param HTTP_PROXY "";
      {kind}_pass {"uwsgi://" if kind == "uwsgi" else ""}127.0.0.1:{app}; }}
    location /api/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
      include {conf_dir}/{kind}_params;
      {kind}_param HTTP_X_USER $jwt_claim_sub;
      {kind}_pass app; }}
  }} }}"""


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def served(tmp_path: Path, kind: str, gateway, free) -> Iterator[tuple[object, StreamBackend, object]]:  # type: ignore[no-untyped-def]
    configs = Path(__file__).resolve().parents[1] / "configs"
    app = StreamBackend(kind, _answer)
    port = free()
    g = gateway(_config(port, kind, app.port, configs), port)

    def ask(method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        return request(port, method, path, body, headers, timeout=10)

    yield ask, app, g
    app.stop()


def test_parameters_body_and_answers(served, kind: str) -> None:  # type: ignore[no-untyped-def]
    ask, app, g = served
    status, headers, body = ask("POST", "/a/b?x=1", {"X-Custom": "v", "Proxy": "evil"},
                                b"the body")
    assert (status, headers["x-app"]) == (200, "http")
    got = json.loads(body)
    p = got["params"]
    assert p["REQUEST_METHOD"] == "POST" and p["QUERY_STRING"] == "x=1"
    assert p["REQUEST_URI"] == "/a/b?x=1" and p["HTTP_X_CUSTOM"] == "v"
    assert "HTTP_PROXY" not in p  # the empty parameter hides the header
    assert got["stdin"] == "the body"
    if kind == "scgi":
        assert got["order"][0] == "CONTENT_LENGTH" and p["CONTENT_LENGTH"] == "8"
    status, headers, body = ask("GET", "/cgi")
    assert (status, headers["x-app"], body) == (201, "cgi", b"made")
    status, headers, _ = ask("GET", "/moved")
    assert status == 302 and headers["location"] == "/there"  # left relative, as nginx
    status, _, body = ask("GET", "/length")
    assert (status, body) == (200, b"five!")


def test_failures(served) -> None:  # type: ignore[no-untyped-def]
    ask, _, g = served
    with pytest.raises(CUT):
        ask("GET", "/short")
    status, _, _ = ask("GET", "/nohead")
    assert status == 502
    assert "upstream prematurely closed connection while reading response header" in g.stderr
    with pytest.raises(CUT):  # a reset is not an end
        ask("GET", "/reset")
    status, _, _ = ask("GET", "/badline")
    assert status == 502 and "upstream sent invalid status line" in g.stderr
    assert "Traceback" not in g.stderr


@pytest.mark.parametrize("auth", [None, "Bearer not.a.token",
                                  "Bearer " + pyjwt.encode({"sub": "eve"}, "wrong-key-" * 4,
                                                           algorithm="HS256")])
def test_a_refused_request_reaches_no_application(served, auth) -> None:  # type: ignore[no-untyped-def]
    ask, app, _ = served
    headers = {"X-User": "admin", "Authorization": auth} if auth else {"X-User": "admin"}
    status, _, _ = ask("POST", "/api/orders", headers, b"SECRET-BODY")
    assert status == 401 and app.raw() == b""


def test_the_verified_claim_replaces_the_clients(served) -> None:  # type: ignore[no-untyped-def]
    ask, app, _ = served
    token = pyjwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, SECRET,
                         algorithm="HS256")
    status, _, body = ask("GET", "/api/me", {"Authorization": f"Bearer {token}",
                                            "X-User": "admin"})
    assert status == 200
    assert json.loads(body)["params"]["HTTP_X_USER"] == '"alice"'
    assert b"admin" not in app.raw()


# --- nginx as the oracle: what it sends, byte for byte -------------------------------------

PARITY = """
server { listen 127.0.0.1:PORT; root HOME/www;
  location / { include HOME/KIND_params; KIND_param HTTP_PROXY "";
    KIND_param EXTRA "$request_method:$uri" if_not_empty;
    KIND_param EMPTY "" if_not_empty;
    MODIFIERS
    KIND_pass APP; }
}"""

PARITY_REQUESTS = [
    ("GET", "/a/b?x=1&y=%20z", ("X-Trace: t1", "Proxy: http://evil/", "X-Multi: 1",
                                "X-Multi: 2"), b""),
    ("POST", "/form", ("Content-Type: application/x-www-form-urlencoded",), b"a=1&b=2"),
    ("GET", "/", (), b""),
]


def test_nginx_sends_the_same_bytes(tmp_path: Path, kind: str, engine: str) -> None:
    from test_nginx_parity_e2e import NGINX, Side, _request

    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    configs = Path(__file__).resolve().parents[1] / "configs"
    (tmp_path / f"{kind}_params").write_text((configs / f"{kind}_params").read_text())
    apps = [StreamBackend(kind, _answer) for _ in range(2)]
    sides = []
    try:
        for side_kind, app in zip(("nginx", "fastgate"), apps, strict=True):
            block = (PARITY.replace("KIND", kind).replace("APP", f"127.0.0.1:{app.port}")
                     .replace("MODIFIERS", "uwsgi_modifier1 5; uwsgi_string tail;"
                              if kind == "uwsgi" else ""))
            sides.append(Side(side_kind, tmp_path, block, engine))
        nginx, fastgate = sides
        for method, path, headers, body in PARITY_REQUESTS:
            raw = _request(method, path, *headers, body=body)
            want, got = nginx.send(raw), fastgate.send(raw)
            assert got[0] == want[0] == 200
            w, g = json.loads(want[2]), json.loads(got[2])
            for d in (w, g):
                for port in ("REMOTE_PORT", "SERVER_PORT"):
                    d["params"].pop(port)
            assert g == w
        for theirs, ours in zip(apps[0].requests(), apps[1].requests(), strict=True):
            # the same variables in the same order, the same values but the ports
            def norm(r: FcgiReceived) -> list[tuple[bytes, bytes]]:
                return [(n, b"-" if n in (b"REMOTE_PORT", b"SERVER_PORT") else v)
                        for n, v in r.params]
            assert norm(ours) == norm(theirs)
            assert ours.stdin == theirs.stdin
        if kind == "uwsgi":  # the whole packets' first bytes: modifier1, size, modifier2
            assert apps[1].raw()[:1] == apps[0].raw()[:1] == b"\x05"
            assert apps[1].raw().count(b"tail") == apps[0].raw().count(b"tail") == 3
    finally:
        for side in sides:
            side.stop()
        for app in apps:
            app.stop()


def test_uwsgi_over_tls(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    """suwsgi://: uwsgi over TLS, the certificate unchecked by default (as nginx) or
    checked with uwsgi_ssl_verify against its trusted certificates and name — a wrong
    one refused before a byte of the request leaves; plain uwsgi:// to it fails; a
    request auth_jwt refuses reaches it not at all."""
    cert, key = self_signed(tmp_path, "app.internal")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(cert), str(key))
    app = StreamBackend("uwsgi", _answer, tls=tls)
    sock = StreamBackend("uwsgi", _answer, tls=tls, unix=str(tmp_path / "u.sock"))
    configs = Path(__file__).resolve().parents[1] / "configs"
    port = free()
    to = f"suwsgi://127.0.0.1:{app.port}"
    to_sock = f"suwsgi://unix:{tmp_path}/u.sock"
    checked = f"uwsgi_ssl_verify on; uwsgi_ssl_trusted_certificate {cert};"
    g = gateway(f"""error_log stderr info;
http {{ access_log off;
  server {{ listen 127.0.0.1:{port}; include {configs}/uwsgi_params;
    location /tls/ {{ uwsgi_pass {to}; }}
    location /checked/ {{ uwsgi_pass {to}; {checked} uwsgi_ssl_name app.internal; }}
    location /wrong/ {{ uwsgi_pass {to}; {checked} uwsgi_ssl_name other.internal; }}
    location /plain/ {{ uwsgi_pass uwsgi://127.0.0.1:{app.port}; }}
    location /api/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
                     uwsgi_pass {to}; }}
    location /var/ {{ set $app "{to}"; uwsgi_pass $app; }}
    location /varchecked/ {{ set $app "{to}"; uwsgi_pass $app; {checked}
                            uwsgi_ssl_name app.internal; }}
    location /varwrong/ {{ set $app "{to}"; uwsgi_pass $app; {checked}
                          uwsgi_ssl_name other.internal; }}
    location /named/ {{ uwsgi_pass {to}; {checked} uwsgi_ssl_name $arg_n; }}
    location /sock/ {{ uwsgi_pass {to_sock}; }}
    location /socknamed/ {{ uwsgi_pass {to_sock}; {checked} uwsgi_ssl_name $arg_n; }}
    location /varsock/ {{ set $app "{to_sock}"; uwsgi_pass $app; {checked}
                         uwsgi_ssl_name $arg_n; }}
    location /apisock/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
                         set $app "{to_sock}"; uwsgi_pass $app; }}
  }} }}""", port)
    try:
        # (with variables too: suwsgi:// read per request, its TLS the location's; a
        # uwsgi_ssl_name with variables, the name this request gives, port left out;
        # to a unix socket, over TLS as to a port)
        for path in ("/tls/a", "/checked/b", "/var/f", "/varchecked/g",
                     "/named/i?n=app.internal", "/named/j?n=app.internal:8443",
                     "/sock/k", "/socknamed/l?n=app.internal", "/varsock/m?n=app.internal"):
            status, _, body = request(port, "GET", path, None, None, timeout=10)
            assert status == 200, path
            assert json.loads(body)["params"]["REQUEST_URI"] == path
        assert len(sock.requests()) == 3
        seen, seen_sock = len(app.requests()), len(sock.requests())
        assert request(port, "GET", "/wrong/c", None, None, timeout=10)[0] == 502
        assert request(port, "GET", "/varwrong/h", None, None, timeout=10)[0] == 502
        assert request(port, "GET", "/plain/d", None, None, timeout=10)[0] == 502
        assert request(port, "GET", "/api/e", None, {"Authorization": "Bearer a.b.c"},
                       timeout=10)[0] == 401
        for path in ("/named/n?n=other.internal", "/named/o", "/socknamed/p?n=x.internal",
                     "/varsock/q?n=" + "x" * 70):
            assert request(port, "GET", path, None, None, timeout=10)[0] == 502, path
        assert request(port, "GET", "/apisock/r", None, {"Authorization": "Bearer a.b.c"},
                       timeout=10)[0] == 401
        assert len(app.requests()) == seen  # none of these reached it
        assert len(sock.requests()) == seen_sock
        assert "[alert]" not in g.stderr, g.stderr  # (a name ssl cannot send: no crash)
    finally:
        app.stop()
        sock.stop()
