"""Internal redirects after a proxied answer, end to end on both engines and both
exchange paths (a GET over a pooled connection goes in callbacks, a POST with a body in
a task). X-Accel-Redirect: the location it names runs its own access checks — a
protected one refuses a request without a valid token, and its backend receives
nothing — and the application's own answer never reaches the client. After a POST, the
location a redirect reaches gets the body again as nginx sends it (it was read whole
and kept: ``proxy_request_buffering on``), as a GET; with ``off`` the body went to the
first upstream as it came and is not kept, and the redirect's request goes without
one, never with a Content-Length that has no body behind it."""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_util import bearer
from raw_backend import RawBackend, Received

SECRET = "accel-secret-0123456789abcdef-0123456"


def _app(req: Received) -> bytes:
    if req.target.startswith(b"/intercepted/"):
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"
    where = {b"/app/private": b"/private/report", b"/app/file": b"/files/a.txt",
             b"/app/up": b"/../etc/passwd"}.get(req.target.split(b"?")[0], b"/files/a.txt")
    return (b"HTTP/1.1 200 OK\r\nX-Accel-Redirect: " + where + b"\r\n"
            b"Content-Length: 14\r\n\r\napp's own body")


@pytest.fixture
def ask(tmp_path: Path, gateway, free) -> Iterator[Callable[..., list[tuple[int, bytes]]]]:  # type: ignore[no-untyped-def]
    app, private = RawBackend(answer=_app), RawBackend()
    files = tmp_path / "files"
    files.mkdir()
    (files / "a.txt").write_bytes(b"file bytes")
    port = free()
    gateway(f"""error_log stderr info;
http {{ access_log off;
  server {{ listen 127.0.0.1:{port}; root {tmp_path};
    location /app/ {{ proxy_pass http://127.0.0.1:{app.port}; }}
    location /live/ {{ proxy_request_buffering off; proxy_pass http://127.0.0.1:{app.port}/app/; }}
    location /intercepted-live/ {{ proxy_request_buffering off;
                                  proxy_pass http://127.0.0.1:{app.port}/intercepted/;
                                  proxy_intercept_errors on; error_page 404 = /private/ep; }}
    location /intercepted/ {{ proxy_pass http://127.0.0.1:{app.port};
                             proxy_intercept_errors on; error_page 404 = /private/ep; }}
    location /files/ {{ internal; }}
    location /private/ {{ internal; auth_jwt on; auth_jwt_key "{SECRET}";
                         auth_jwt_alg HS256; proxy_pass http://127.0.0.1:{private.port}; }}
  }} }}""", port)

    def run(*requests: tuple[str, str, bytes | None, dict[str, str]]) -> list[tuple[int, bytes]]:
        """The requests on one keep-alive connection (the second on a pooled upstream
        connection, in callbacks): (status, body) of each."""
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        out = []
        try:
            for method, path, body, headers in requests:
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                out.append((r.status, r.read()))
        finally:
            c.close()
        return out

    run.private = private  # type: ignore[attr-defined]
    run.app = app  # type: ignore[attr-defined]
    yield run
    app.stop()
    private.stop()


def _bearer(key: str = SECRET) -> dict[str, str]:
    return bearer(key)


def test_a_protected_target_refuses_without_a_valid_token(ask) -> None:  # type: ignore[no-untyped-def]
    forged = _bearer("another key, not the gateway's 0123456789")
    got = ask(("GET", "/app/file", None, {}), ("GET", "/app/private", None, {}),
              ("GET", "/app/private", None, forged),
              ("POST", "/app/private", b"form=1", {}),
              ("POST", "/app/private", b"form=1", forged))
    assert got[0] == (200, b"file bytes")
    assert [status for status, _ in got[1:]] == [401, 401, 401, 401]
    assert all(b"app's own body" not in body for _, body in got)
    assert ask.private.requests() == []  # nothing reached the protected backend
    assert len(ask.app.requests()) == 5


def test_a_valid_token_reaches_the_target_as_a_get(ask) -> None:  # type: ignore[no-untyped-def]
    got = ask(("GET", "/app/private", None, _bearer()),
              ("POST", "/app/private", b"form=1", _bearer()),
              ("POST", "/live/private", b"form=2", _bearer()))
    assert [status for status, _ in got] == [200, 200, 200]
    seen = ask.private.requests()
    assert [(r.method, r.target, r.body) for r in seen] == [
        (b"GET", b"/private/report", b""), (b"GET", b"/private/report", b"form=1"),
        (b"GET", b"/private/report", b"")]


def test_an_unsafe_target_is_a_404_and_opens_nothing(ask) -> None:  # type: ignore[no-untyped-def]
    got = ask(("GET", "/app/up", None, {}), ("POST", "/app/up", b"x", {}))
    assert [status for status, _ in got] == [404, 404]
    assert all(b"root:" not in body and b"app's own" not in body for _, body in got)


def test_after_a_post_the_next_upstream_gets_the_body_only_if_it_was_kept(ask) -> None:  # type: ignore[no-untyped-def]
    got = ask(("POST", "/intercepted/x", b"form=1", _bearer()),
              ("POST", "/intercepted-live/x", b"form=2", _bearer()),
              ("POST", "/live/private", b"form=3", _bearer()))
    assert [status for status, _ in got] == [200, 200, 200]
    seen = ask.private.requests()
    assert [(r.method, r.target, r.header(b"content-length"), r.body) for r in seen] == [
        (b"GET", b"/private/ep", [b"6"], b"form=1"), (b"GET", b"/private/ep", [], b""),
        (b"GET", b"/private/report", [], b"")]
    assert [r.body for r in ask.app.requests()] == [b"form=1", b"form=2", b"form=3"]
