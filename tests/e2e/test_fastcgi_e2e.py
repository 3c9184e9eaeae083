"""fastcgi_pass end to end on both engines, against a FastCGI application that keeps
every byte it receives: the parameters nginx's module sends (fastcgi_param in order,
client headers as HTTP_*, a parameter that hides a header), the body on STDIN, the CGI
response relayed (Status, Location, STDERR logged), its failures answered as nginx does —
and, first, that a request refused by auth_jwt reaches the application not at all."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import jwt as pyjwt
import pytest
from e2e_util import CUT
from fastcgi_backend import FastcgiBackend, FcgiReceived

SECRET = "fastcgi-test-secret-0123456789abcdef0123"


def _token(sub: str = "alice", **extra: object) -> str:
    return pyjwt.encode({"sub": sub, "exp": int(time.time()) + 300, **extra}, SECRET,
                        algorithm="HS256")


def _answer(r: FcgiReceived) -> tuple[bytes, bytes]:
    path = (r.param(b"DOCUMENT_URI") or b"").decode()
    if path.endswith("/status"):
        return b"Status: 418 I'm a teapot\r\nContent-Type: text/plain\r\n\r\nshort", b""
    if path.endswith("/code-only"):
        return b"Status: 404\r\nContent-Type: text/plain\r\n\r\nno phrase", b""
    if path.endswith("/moved"):
        return b"Location: /elsewhere\r\n\r\n", b""
    if path.endswith("/stderr"):
        return b"Content-Type: text/plain\r\n\r\nfine", b"PHP Warning: something odd"
    if path.endswith("/missing"):
        return b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\napp's 404", b""
    if path.endswith("/badstatus"):
        return b"Status: nope\r\n\r\n", b""
    if path.endswith("/big"):
        return b"Content-Type: text/plain\r\n\r\n" + b"x" * 300000, b""
    if path.endswith("/short"):
        return b"Content-Length: 100\r\n\r\nonly this", b""
    if path.endswith("/koi"):  # KOI8-R text, the charset to send it in named
        return (b"Content-Type: text/html; charset=koi8-r\r\nX-Accel-Charset: utf-8\r\n\r\n"
                b"\xf0\xd2\xc9\xd7\xc5\xd4"), b""
    if path.endswith("/cookies"):
        return b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Powered-By: PHP\r\n\r\nok", b""
    params = {n.decode("latin-1"): v.decode("latin-1") for n, v in r.params}
    body = json.dumps({"params": params, "order": [n.decode() for n, _ in r.params],
                       "stdin": r.stdin.decode("latin-1")}).encode()
    return b"Content-Type: application/json\r\n\r\n" + body, b""


def _config(port: int, app: int, sock: str, dead: int, silent: int, kept: str = "/nowhere"
            ) -> str:
    return f"""error_log stderr info;
http {{ access_log off;
  upstream php {{ server 127.0.0.1:{app}; }}
  server {{ listen 127.0.0.1:{port}; root /srv/www;
    fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
    fastcgi_param QUERY_STRING $query_string;
    fastcgi_param REQUEST_METHOD $request_method;
    fastcgi_param CONTENT_LENGTH $content_length;
    fastcgi_param DOCUMENT_URI $document_uri;
    fastcgi_param HTTPS $https if_not_empty;
    fastcgi_param HTTP_PROXY "";
    location ~ ^/app/.+\\.php(/|$) {{
      fastcgi_split_path_info ^(.+\\.php)(/.*)$;
      fastcgi_param PATH_INFO $fastcgi_path_info;
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param DOCUMENT_URI $document_uri;
      fastcgi_param HTTP_PROXY "";
      fastcgi_pass 127.0.0.1:{app}; }}
    location /app/ {{ fastcgi_index index.php; fastcgi_pass php; }}
    location /api/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
      fastcgi_param DOCUMENT_URI $document_uri;
      fastcgi_param HTTP_X_USER $jwt_claim_sub;
      fastcgi_pass php; }}
    location /apivar/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
      set $to php; fastcgi_pass $to; }}
    location /sock/ {{ fastcgi_pass unix:{sock}; }}
    location /intercept/ {{ fastcgi_intercept_errors on; error_page 404 = /handled;
      fastcgi_param DOCUMENT_URI $document_uri; fastcgi_pass php; }}
    location = /handled {{ return 200 "handled by error_page"; }}
    location /hide/ {{ fastcgi_hide_header X-Powered-By;
      fastcgi_param DOCUMENT_URI $document_uri; fastcgi_pass php; }}
    location /dead/ {{ fastcgi_pass 127.0.0.1:{dead}; }}
    location /added/ {{ fastcgi_param DOCUMENT_URI $document_uri; fastcgi_pass php;
      add_before_body /part; add_after_body /part; addition_types *; }}
    location = /part {{ return 200 "|"; }}
    location /kept/ {{ fastcgi_param DOCUMENT_URI $document_uri; fastcgi_pass php;
      fastcgi_store {kept}$uri; fastcgi_store_access all:r; }}
    location /slow/ {{ fastcgi_read_timeout 500ms; fastcgi_pass 127.0.0.1:{silent}; }}
    location /cs/ {{ fastcgi_param DOCUMENT_URI $document_uri; fastcgi_pass php; }}
    location /cs-ignored/ {{ fastcgi_ignore_headers X-Accel-Charset;
      fastcgi_param DOCUMENT_URI $document_uri; fastcgi_pass php; }}
  }}
  charset_map koi8-r utf-8 {{ F0 D09F; D2 D180; C9 D0B8; D7 D0B2; C5 D0B5; D4 D182; }}
}}"""


class _Silent:
    """Accepts and reads, never answers (a hung application)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]

    def stop(self) -> None:
        self.sock.close()


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[tuple[FastcgiBackend, FastcgiBackend]]:
    app = FastcgiBackend(answer=_answer)
    sock = FastcgiBackend(answer=_answer, unix=str(tmp_path / "php.sock"))
    yield app, sock
    app.stop()
    sock.stop()


Ask = Callable[..., tuple[int, dict[str, str], bytes]]


@pytest.fixture
def gate(tmp_path: Path, gateway, free, apps) -> Iterator[tuple[Ask, object]]:  # type: ignore[no-untyped-def]
    app, _ = apps
    silent = _Silent()
    port = free()
    g = gateway(_config(port, app.port, str(tmp_path / "php.sock"), free(), silent.port,
                        str(tmp_path / "kept")), port)

    def ask(method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            got: dict[str, str] = {":reason": r.reason}  # (the status line's phrase)
            for k, v in r.getheaders():
                got[k.lower()] = got[k.lower()] + "\n" + v if k.lower() in got else v
            return r.status, got, r.read()
        finally:
            c.close()

    yield ask, g
    silent.stop()


def test_the_parameters_nginx_sends(gate, apps) -> None:  # type: ignore[no-untyped-def]
    ask, _ = gate
    app, _ = apps
    status, headers, body = ask("POST", "/app/index.php/extra/path?a=1&b=2",
                                {"X-Custom": "v", "Proxy": "http://evil:1"}, b"the body")
    assert status == 200 and headers["content-type"] == "application/json"
    got = json.loads(body)
    p = got["params"]
    assert p["SCRIPT_FILENAME"] == "/srv/www/app/index.php"
    assert p["PATH_INFO"] == "/extra/path"
    assert p["QUERY_STRING"] == "a=1&b=2"
    assert p["DOCUMENT_URI"] == "/app/index.php/extra/path"
    assert p["HTTP_X_CUSTOM"] == "v" and p["HTTP_HOST"].startswith("127.0.0.1:")
    assert "HTTPS" not in p  # if_not_empty, and the request is plain HTTP
    assert "HTTP_PROXY" not in p  # the empty parameter hides the Proxy header (httpoxy)
    assert got["stdin"] == "the body"
    # the location's own fastcgi_param list replaces the server's (no REQUEST_METHOD)
    assert "REQUEST_METHOD" not in p
    assert got["order"][:4] == ["PATH_INFO", "SCRIPT_FILENAME", "QUERY_STRING",
                                "DOCUMENT_URI"]
    [r] = app.requests()
    assert not r.keep_conn  # nginx's fastcgi_keep_conn off


def test_server_parameters_and_fastcgi_index(gate, apps) -> None:  # type: ignore[no-untyped-def]
    ask, _ = gate
    status, _, body = ask("GET", "/app/")
    p = json.loads(body)["params"]
    assert status == 200
    assert p["SCRIPT_FILENAME"] == "/srv/www/app/index.php"  # fastcgi_index
    assert p["REQUEST_METHOD"] == "GET" and p["CONTENT_LENGTH"] == ""


def test_a_unix_socket(gate, apps) -> None:  # type: ignore[no-untyped-def]
    ask, _ = gate
    _, sock = apps
    status, _, body = ask("GET", "/sock/x")
    assert status == 200 and "params" in json.loads(body)
    assert len(sock.requests()) == 1


def test_status_location_and_stderr(gate, apps) -> None:  # type: ignore[no-untyped-def]
    ask, g = gate
    status, headers, body = ask("GET", "/app/status")
    assert (status, headers[":reason"], body) == (418, "I'm a teapot", b"short")
    # a Status of the code alone: nginx's phrase (its module takes the header's text
    # as the status line only past the code)
    status, headers, body = ask("GET", "/app/code-only")
    assert (status, headers[":reason"], body) == (404, "Not Found", b"no phrase")
    status, headers, _ = ask("GET", "/app/moved")
    assert status == 302 and headers["location"].endswith("/elsewhere")
    status, _, body = ask("GET", "/app/stderr")
    assert (status, body) == (200, b"fine")
    assert 'FastCGI sent in stderr: "PHP Warning: something odd"' in g.stderr
    status, _, body = ask("GET", "/app/big")
    assert status == 200 and body == b"x" * 300000
    status, headers, _ = ask("GET", "/app/cookies")
    assert headers["set-cookie"] == "a=1\nb=2" and headers["x-powered-by"] == "PHP"
    status, headers, _ = ask("GET", "/hide/cookies")
    assert "x-powered-by" not in headers
    status, _, body = ask("HEAD", "/app/status")
    assert (status, body) == (418, b"")


def test_failures_are_answered_as_nginx_does(gate, apps) -> None:  # type: ignore[no-untyped-def]
    ask, g = gate
    status, _, _ = ask("GET", "/app/badstatus")
    assert status == 502
    assert 'upstream sent invalid status "nope"' in g.stderr
    status, _, _ = ask("GET", "/dead/x")
    assert status == 502 and "connect() failed (111: Connection refused)" in g.stderr
    status, _, _ = ask("GET", "/slow/x")
    assert status == 504
    assert "upstream timed out (110: Connection timed out) while reading response header" \
        in g.stderr
    status, _, body = ask("GET", "/intercept/missing")
    assert (status, body) == (200, b"handled by error_page")
    status, _, body = ask("GET", "/app/missing")  # not intercepted: the app's own 404
    assert (status, body) == (404, b"app's 404")
    assert "Traceback" not in g.stderr


def test_fastcgi_store_keeps_whole_200_bodies(gate, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ask, _ = gate
    status, _, body = ask("GET", "/kept/a/b/page")
    assert status == 200
    kept = tmp_path / "kept" / "kept"
    assert (kept / "a" / "b" / "page").read_bytes() == body
    assert (kept / "a" / "b" / "page").stat().st_mode & 0o777 == 0o604
    assert ask("GET", "/kept/big")[2] == (kept / "big").read_bytes() == b"x" * 300000
    assert ask("GET", "/kept/x/missing")[0] == 404  # not a 200: not kept
    with pytest.raises(CUT):
        ask("GET", "/kept/x/short")  # cut short: not kept
    assert ask("HEAD", "/kept/x/head")[0] == 200  # no body: not kept
    assert sorted(str(p.relative_to(kept)) for p in kept.rglob("*")) == [
        "a", "a/b", "a/b/page", "big"]


def test_additions_around_an_applications_answer(gate) -> None:  # type: ignore[no-untyped-def]
    ask, _ = gate
    status, headers, body = ask("GET", "/added/x")
    assert status == 200 and "content-length" not in headers
    assert body.startswith(b"|{") and body.endswith(b"}|")
    assert json.loads(body[1:-1])["params"]["DOCUMENT_URI"] == "/added/x"
    assert ask("GET", "/added/big")[2] == b"|" + b"x" * 300000 + b"|"
    assert ask("HEAD", "/added/x")[2] == b""


def test_x_accel_charset_recodes_an_applications_answer(gate) -> None:  # type: ignore[no-untyped-def]
    """The application's X-Accel-Charset names the charset its answer goes in (nginx
    acts on it for every upstream module): recoded through the map, the header hidden;
    not where fastcgi_ignore_headers names it."""
    ask, _ = gate
    status, headers, body = ask("GET", "/cs/koi")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert body == "\u041f\u0440\u0438\u0432\u0435\u0442".encode() and "x-accel-charset" not in headers
    status, headers, body = ask("GET", "/cs-ignored/koi")
    assert headers["content-type"] == "text/html; charset=koi8-r"
    assert body == b"\xf0\xd2\xc9\xd7\xc5\xd4" and "x-accel-charset" not in headers


def test_a_response_shorter_than_its_length_is_cut(gate) -> None:  # type: ignore[no-untyped-def]
    ask, _ = gate
    with pytest.raises(CUT):
        ask("GET", "/app/short")


def test_an_application_that_closes_before_the_end(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    early = FastcgiBackend(answer=_answer, close_early=True)
    try:
        port = free()
        g = gateway(f"""error_log stderr info; http {{ access_log off; server {{
            listen 127.0.0.1:{port};
            location / {{ fastcgi_param DOCUMENT_URI $document_uri;
                         fastcgi_pass 127.0.0.1:{early.port}; }} }} }}""", port)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/x")
        r = c.getresponse()
        # the head and some of the body went out: the response is cut, never completed
        assert r.status == 200
        with pytest.raises(CUT):
            r.read()
        assert "upstream prematurely closed connection" in g.stderr
    finally:
        early.stop()


# --- security: auth_jwt in front of a FastCGI application ----------------------------------


@pytest.mark.parametrize("auth", [None, "Bearer not.a.token",
                                  "Bearer " + pyjwt.encode({"sub": "eve"}, "wrong-key-" * 4,
                                                           algorithm="HS256"),
                                  "Bearer " + pyjwt.encode({"sub": "eve", "exp": 1}, SECRET,
                                                           algorithm="HS256")])
@pytest.mark.parametrize("where", ["/api/", "/apivar/"])  # (fastcgi_pass php, or $to)
def test_a_refused_request_reaches_no_application(gate, apps, auth, where) -> None:  # type: ignore[no-untyped-def]
    ask, _ = gate
    app, sock = apps
    headers = {"X-User": "admin", "Authorization": auth} if auth else {"X-User": "admin"}
    status, _, _ = ask("POST", where + "orders", headers, b"SECRET-BODY")
    assert status == 401
    assert app.raw() == b"" and sock.raw() == b""  # not one byte
    if where == "/apivar/":  # (a valid token reaches it through the variable's pass)
        status, _, body = ask("GET", "/apivar/me", {"Authorization": "Bearer " + _token()})
        assert status == 200 and json.loads(body)["params"]


def test_the_verified_claim_and_never_the_clients_copy(gate, apps) -> None:  # type: ignore[no-untyped-def]
    ask, _ = gate
    app, _ = apps
    status, _, body = ask("GET", "/api/me", {"Authorization": "Bearer " + _token("alice"),
                                            "X-User": "admin", "X_User": "admin2"})
    assert status == 200
    p = json.loads(body)["params"]
    assert p["HTTP_X_USER"] == '"alice"'  # the seed form's $jwt_claim_* is JSON
    assert b"admin" not in app.raw()  # neither the X-User copy nor the underscore one


# --- nginx as the oracle: the same application (fcgiwrap running a CGI script) behind
# nginx 1.22 and behind fastgate, the same requests, the answers compared ------------------

FCGIWRAP = shutil.which("fcgiwrap") or "/usr/sbin/fcgiwrap"

SCRIPT = """#!/bin/sh
case "$PATH_INFO" in
  /status) printf 'Status: 404 Not There\\r\\nContent-Type: text/plain\\r\\n\\r\\nnope';;
  /moved) printf 'Location: /else/where\\r\\n\\r\\n';;
  /err) echo "to stderr" >&2; printf 'Content-Type: text/plain\\r\\n\\r\\nok';;
  *) printf 'Content-Type: text/plain\\r\\nX-App: yes\\r\\n\\r\\n'
     env | grep -v -e '^REMOTE_PORT=' -e '^SERVER_PORT=' -e '^PWD=' -e '^SHLVL=' \\
       -e '^_=' -e '^HTTP_HOST=' -e '^PATH=' | LC_ALL=C sort
     echo "--- body"; cat;;
esac
"""

PARITY = """
server { listen 127.0.0.1:PORT; root HOME/www;
  location ~ ^/cgi/.+\\.sh(/|$) {
    include HOME/fastcgi.conf;
    fastcgi_split_path_info ^(.+\\.sh)(/.*)$;
    fastcgi_param PATH_INFO $fastcgi_path_info;
    fastcgi_param HTTP_PROXY "";
    fastcgi_param X_TRACE $http_x_trace if_not_empty;
    fastcgi_pass unix:HOME/fcgiwrap.sock; }
  location /idx/ { include HOME/fastcgi_params; fastcgi_index app.sh;
    fastcgi_param SCRIPT_FILENAME $document_root/cgi$fastcgi_script_name;
    fastcgi_pass unix:HOME/fcgiwrap.sock; }
}"""

PARITY_REQUESTS = [
    ("GET", "/cgi/app.sh?a=1&b=%20x", ("X-Trace: t1", "Proxy: http://evil/"), b""),
    ("POST", "/cgi/app.sh/more/info", ("Content-Type: text/plain", "X-Multi: 1",
                                       "X-Multi: 2"), b"hello body"),
    ("GET", "/cgi/app.sh/status", (), b""),
    ("HEAD", "/cgi/app.sh/status", (), b""),
    ("GET", "/cgi/app.sh/moved", (), b""),
    ("GET", "/cgi/app.sh/err", (), b""),
    ("GET", "/idx/", (), b""),
    # a chunked body: read whole, and $content_length (CONTENT_LENGTH) is its length
    ("RAW", "/cgi/app.sh/chunked", (), b"POST /cgi/app.sh/chunked HTTP/1.1\r\n"
     b"Host: parity.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
]


@pytest.fixture
def fcgiwrap(tmp_path: Path) -> Iterator[Path]:
    if not Path(FCGIWRAP).exists():
        pytest.skip("fcgiwrap is installed by make test (test-deps)")
    www = tmp_path / "www" / "cgi"
    www.mkdir(parents=True)
    script = www / "app.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    configs = Path(__file__).resolve().parents[1] / "configs"
    for name in ("fastcgi.conf", "fastcgi_params"):
        shutil.copy(configs / name, tmp_path / name)
    sock = tmp_path / "fcgiwrap.sock"
    # its own process group: fcgiwrap forks its workers (-c 2), and all of them go
    proc = subprocess.Popen([FCGIWRAP, "-c", "2", "-s", f"unix:{sock}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 10
    while not sock.exists() and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield tmp_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(5)
        _gone(proc.pid)


def _gone(group: int) -> None:
    """Every process of ``group`` has ended (killed after 5 s): nothing outlives a test."""
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.killpg(group, signal.SIGKILL)


def test_same_answers_as_nginx_over_one_application(fcgiwrap: Path, engine: str) -> None:
    from test_nginx_parity_e2e import NGINX, Side, _request

    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    sides = []
    try:
        for kind in ("nginx", "fastgate"):
            sides.append(Side(kind, fcgiwrap, PARITY, engine))
        nginx, fastgate = sides
        for method, path, headers, body in PARITY_REQUESTS:
            raw = body if method == "RAW" else _request(method, path, *headers, body=body)
            want, got = nginx.send(raw), fastgate.send(raw)
            assert got[0] == want[0], (path, want, got)
            assert got[2] == want[2], (path, want[2].decode(), got[2].decode())
            for name in ("content-type", "x-app", "location"):
                assert got[1].get(name) == want[1].get(name), (path, name, want[1], got[1])
    finally:
        for side in sides:
            side.stop()
