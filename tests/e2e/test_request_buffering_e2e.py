"""``proxy_request_buffering on`` (nginx's default): the client's body is read whole —
in memory up to ``client_body_buffer_size``, in a temporary file past it — before
anything goes upstream. Compared with nginx 1.22 for what the backend receives (a
length, never chunked; ``$request_body``); and, against a backend that records every
byte, that a slow, cut, refused or too large upload reaches nothing, that a buffered
body can go to a second server, and that ``off`` streams as before."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
from e2e_util import bearer, fastgate, wait_for_text
from raw_backend import RawBackend, Received
from test_nginx_parity_e2e import NGINX, both

KEY = "buffering-key-0123456789abcdef0123456789abcdef"
LARGE = bytes(range(256)) * 80  # 20 KiB: past client_body_buffer_size 1k, in a file

PARITY = """client_body_buffer_size 1k;
server { listen 127.0.0.1:PORT;
  location /kept/ { proxy_set_header X-Body $request_body; proxy_pass http://BACKEND; }
  location /streamed/ { proxy_request_buffering off; proxy_http_version 1.1;
                        proxy_pass http://BACKEND; }
  location /framed/ { proxy_set_header Content-Length $content_length;
                      proxy_pass http://BACKEND; }
}"""


def _chunked(body: bytes, size: int) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                   for i in range(0, len(body), size))
    return out + b"0\r\n\r\n"


def _post(path: str, body: bytes, chunked: bool = False, extra: str = "") -> bytes:
    framing = ("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\n{extra}{framing}\r\n"
            f"Connection: close\r\n\r\n").encode() + (_chunked(body, 700) if chunked else body)


def _as_received(r: Received) -> tuple[bytes, bytes, list[bytes], list[bytes], list[bytes]]:
    return (r.target, r.body, r.header(b"content-length"), r.header(b"transfer-encoding"),
            r.header(b"x-body"))


@pytest.mark.skipif(not Path(NGINX).exists(),
                    reason="nginx is installed by make test (test-deps)")
def test_bodies_reach_the_backend_as_nginx_sends_them(tmp_path: Path, engine: str) -> None:
    small = b"name=alice&role=admin"
    requests = [
        _post("/kept/length", small),
        _post("/kept/chunked", small, chunked=True),  # a length upstream, not chunked
        _post("/kept/large-chunked", LARGE, chunked=True),  # from the file: no $request_body
        _post("/kept/large", LARGE),
        _post("/streamed/length", small),
        # off, a chunked body that came whole with its head: nginx sends its length
        _post("/streamed/chunked-whole", small, chunked=True),
        # a Content-Length set by the configuration: one goes, never two
        _post("/framed/chunked", small, chunked=True),
    ]
    with both(tmp_path, PARITY, engine) as (nginx, mine):
        for raw in requests:
            assert mine.send(raw)[0] == nginx.send(raw)[0] == 200
        got = [_as_received(r) for r in mine.backend.requests()]
        want = [_as_received(r) for r in nginx.backend.requests()]
    assert got == want
    assert got[1] == (b"/kept/chunked", small, [b"21"], [], [small])
    assert got[2] == (b"/kept/large-chunked", LARGE, [str(len(LARGE)).encode()], [], [])
    assert got[5] == (b"/streamed/chunked-whole", small, [b"21"], [], [])
    assert got[6] == (b"/framed/chunked", small, [b"21"], [], [])


def _head(path: str, token: str, length: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def _response(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    found = re.search(rb"(?i)content-length: (\d+)", head)
    while found is not None and len(rest) < int(found.group(1)):
        rest += s.recv(65536)
    return head


CONFIG = """http {{ access_log off; client_body_buffer_size 1k; client_max_body_size 64k;
  client_body_temp_path {temp};
  upstream be {{ server 127.0.0.1:{be}; keepalive 4; }}
  server {{ listen 127.0.0.1:{port}; auth_jwt_key "{key}";
    location /api/ {{ auth_jwt on; proxy_set_header X-User $jwt_claim_sub;
                      proxy_pass http://be; }}
    location /live/ {{ auth_jwt on; proxy_request_buffering off; proxy_pass http://be; }}
  }} }}"""


@pytest.mark.parametrize("body", [b"small-body", LARGE], ids=["memory", "file"])
def test_nothing_reaches_the_backend_until_the_body_is_whole(
        tmp_path: Path, gateway, free, body: bytes) -> None:  # type: ignore[no-untyped-def]
    """A valid request whose body comes slowly reaches the backend only once whole,
    with its length; one whose client goes away half way, one without a token and one
    too large reach nothing. The next request on the same connection goes over the
    pooled upstream connection (the callback path); with ``off`` the head goes at
    once."""
    backend = RawBackend()
    try:
        port = free()
        g = gateway(CONFIG.format(temp=tmp_path / "body", be=backend.port, port=port,
                                  key=KEY), port)
        token = bearer(KEY)["Authorization"]
        half = len(body) // 2
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(_head("/api/slow", token, len(body)) + body[:half])
            time.sleep(0.3)
            assert backend.raw() == b""  # not the head, not the first half
            s.sendall(body[half:])
            assert _response(s).startswith(b"HTTP/1.1 200")
            s.sendall(f"GET /api/next HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
                      "\r\n".encode())
            assert _response(s).startswith(b"HTTP/1.1 200")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(_head("/api/gone", token, len(body)) + body[:half])
            time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(_head("/api/refused", "Bearer x.y.z", len(body)) + body)
            assert _response(s).startswith(b"HTTP/1.1 401")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            big = b"z" * (65 * 1024)
            s.sendall(f"POST /api/big HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n".encode() + _chunked(big, 8192))
            assert _response(s).startswith(b"HTTP/1.1 413")
        time.sleep(0.2)
        got = [(r.target, r.body, r.header(b"content-length"), r.header(b"x-user"))
               for r in backend.requests()]
        assert got == [(b"/api/slow", body, [str(len(body)).encode()], [b'"alice"']),
                       (b"/api/next", b"", [], [b'"alice"'])]
        assert len(backend.peers()) == 1  # the GET went over the pooled connection
        for never in (b"/api/gone", b"/api/refused", b"/api/big"):
            assert not backend.seen(never)
        assert list((tmp_path / "body").iterdir()) == []  # no file left, none named
        # off: the head goes before the body is whole
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(_head("/live/slow", token, len(body)) + body[:half])
            deadline = time.monotonic() + 5
            while not backend.seen(b"/live/slow") and time.monotonic() < deadline:
                time.sleep(0.02)
            assert backend.seen(b"/live/slow")
            s.sendall(body[half:])
            assert _response(s).startswith(b"HTTP/1.1 200")
        # off, chunked and still coming: it goes chunked, as it comes
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            chunked = _chunked(body, 700)
            s.sendall(f"POST /live/chunked HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n".encode() + chunked[:len(chunked) // 2])
            deadline = time.monotonic() + 5
            while not backend.seen(b"/live/chunked") and time.monotonic() < deadline:
                time.sleep(0.02)
            s.sendall(chunked[len(chunked) // 2:])
            assert _response(s).startswith(b"HTTP/1.1 200")
        (live,) = [r for r in backend.requests() if r.target == b"/live/chunked"]
        assert (live.body, live.header(b"transfer-encoding")) == (body, [b"chunked"])
        assert "Traceback" not in g.stderr
    finally:
        backend.stop()


def _refuse_with_502(req: Received) -> bytes:
    return b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 4\r\n\r\nbusy"


def _ok(req: Received) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.mark.parametrize("body", [b"small-body", LARGE], ids=["memory", "file"])
def test_a_buffered_body_goes_again_to_the_next_server(
        tmp_path: Path, gateway, free, body: bytes) -> None:  # type: ignore[no-untyped-def]
    """nginx sends a kept body again where proxy_next_upstream allows; a streamed one
    has gone and cannot be (the request then fails with the first server's answer)."""
    first, second = RawBackend(answer=_refuse_with_502), RawBackend(answer=_ok)
    try:
        port = free()
        gateway(f"""http {{ access_log off; client_body_buffer_size 1k;
  upstream two {{ server 127.0.0.1:{first.port}; server 127.0.0.1:{second.port}; }}
  upstream again {{ server 127.0.0.1:{first.port}; server 127.0.0.1:{second.port}; }}
  server {{ listen 127.0.0.1:{port};
    proxy_next_upstream error http_502 non_idempotent;
    location /kept/ {{ proxy_pass http://two; }}
    location /streamed/ {{ proxy_request_buffering off; proxy_pass http://again; }}
  }} }}""", port)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(_post("/kept/x", body))
            assert _response(s).startswith(b"HTTP/1.1 200")
        assert [(r.target, r.body) for r in first.requests()] == [(b"/kept/x", body)]
        assert [(r.target, r.body) for r in second.requests()] == [(b"/kept/x", body)]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(_post("/streamed/y", body))
            assert _response(s).startswith(b"HTTP/1.1 502")
        assert first.seen(b"/streamed/y") and not second.seen(b"/streamed/y")
    finally:
        first.stop()
        second.stop()


def test_client_body_temp_path_is_made_or_refused_at_load(tmp_path: Path) -> None:
    conf = tmp_path / "t.conf"
    made = tmp_path / "deep" / "body"
    conf.write_text(f"http {{ client_body_temp_path {made} 1 2;\n"
                    "server { listen 127.0.0.1:1; location / { return 204; } } }\n")
    run = fastgate("-t", "-c", str(conf))
    assert run.returncode == 0, run.stderr
    assert made.is_dir() and made.stat().st_mode & 0o777 == 0o700
    (tmp_path / "file").write_text("")
    conf.write_text("http {\n"
                    f"  client_body_temp_path {tmp_path / 'file' / 'body'};\n"
                    "server { listen 127.0.0.1:1; location / { return 204; } } }\n")
    run = fastgate("-t", "-c", str(conf))
    assert run.returncode == 1
    assert (f'mkdir() "{tmp_path / "file" / "body"}" failed (20: Not a directory) in '
            f"{conf}:2") in run.stderr
    # (levels as nginx checks them: none 0, ten at most in all)
    conf.write_text("http { client_body_temp_path body 9 2; }\n")
    run = fastgate("-t", "-c", str(conf))
    assert 'invalid value "2" in "client_body_temp_path" directive' in run.stderr


def test_a_body_that_cannot_be_kept_is_a_500_and_reaches_nothing(
        tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    backend = RawBackend()
    try:
        port = free()
        temp = tmp_path / "body"
        g = gateway(f"""error_log {tmp_path}/error.log info;
http {{ access_log off; client_body_buffer_size 1k; client_body_temp_path {temp};
  server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://127.0.0.1:{backend.port}; }} }}
}}""", port)
        temp.rmdir()  # gone after the load (a cleaner, an unmounted disk)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(_post("/large", LARGE))
            answer = _response(s)
        assert answer.startswith(b"HTTP/1.1 500") and b"connection: close" in answer.lower()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(_post("/small", b"fits"))  # in memory: unaffected
            assert _response(s).startswith(b"HTTP/1.1 200")
        assert [r.target for r in backend.requests()] == [b"/small"]
        assert wait_for_text(tmp_path / "error.log", f'could not be kept in a file in "{temp}" '
                             "(2: No such file")  # (the log is written after the answer)
        assert "[error]" in (tmp_path / "error.log").read_text()
        assert "Traceback" not in g.stderr
    finally:
        backend.stop()
