"""HTTP/2 server push beside nginx 1.22 (whose HTTP/2 module pushes; 1.25.1 dropped it):
the same configuration under both, the same requests over h2c, and compared — the
PUSH_PROMISE fields, which URIs are pushed for which answers (``http2_push``, ``off``,
variables, the last location after an internal redirect, ``http2_push_preload`` over a
proxied answer's Link headers, not for HEAD, not when the client disables push, not a
relative URI, which is warned of), and what each pushed stream answers — a protected
location's push is answered as a request without credentials is (its backend gets
nothing)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, wait_port
from e2e_util import NGINX, beside_nginx, stop_process
from h2_client import Answer, H2Client
from raw_backend import RawBackend, Received

BLOCK = """
http {
  access_log off;
  map $arg_extra $extra_push { default ""; yes /extra.txt; }
  server {
    listen 127.0.0.1:PORT http2;
    root HOME/www;
    http2_push /style.css;
    location = /page.html { http2_push /app.js; http2_push $extra_push; }
    location = /inherit.html { }
    location = /off.html { http2_push off; }
    location = /relative.html { http2_push app.js; http2_push /app.js; }
    location = /protected-push.html { http2_push /private/secret.css; }
    location /private/ { auth_basic "private"; auth_basic_user_file HOME/htpasswd;
                         proxy_pass http://BACKEND; }
    location = /moved.html { http2_push off; error_page 404 = /page.html; return 404; }
    location /proxied/ { http2_push off; http2_push_preload on; proxy_pass http://BACKEND; }
    location = /missing.html { http2_push /nothing-here.css; }
  }
  server {
    listen 127.0.0.1:LIMITED http2;
    root HOME/www;
    http2_max_concurrent_pushes 1;
    location = /page.html { http2_push /big.bin; http2_push /app.js; }
  }
}
"""


def _backend_answer(req: Received) -> bytes:
    if req.target.startswith(b"/proxied/"):
        return (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                b"Link: </style.css>; rel=preload; as=style, </app.js>; rel=preload; nopush\r\n"
                b'Link: <//cdn.example/x.js>; rel=preload, </extra.txt>; rel="prefetch preload"\r\n'
                b"Link: <relative.css>; rel=preload\r\n\r\nok")
    return b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret"


class Side:
    def __init__(self, kind: str, tmp: Path, backend: RawBackend) -> None:
        self.port, self.limited = free_port(), free_port()
        home = tmp / kind
        home.mkdir()
        self.errors = home / "error.log"
        block = (BLOCK.replace("PORT", str(self.port)).replace("LIMITED", str(self.limited))
                 .replace("HOME", str(tmp))
                 .replace("BACKEND", f"127.0.0.1:{backend.port}"))
        self.proc = beside_nginx(kind, home, block, "warn")
        wait_port(self.port, self.proc)

    def warnings(self) -> list[str]:
        time.sleep(0.1)
        out = []
        for line in self.errors.read_text().splitlines():
            if "[warn]" in line:
                # (nginx adds what the connection was doing, "while sending response to
                # client" or "while reading response header from upstream")
                message = line.split(": ", 1)[1].split(", client:")[0].split(" while ")[0]
                out.append(message.lstrip("*0123456789 "))
        return out

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Side, Side, RawBackend]]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    www = tmp_path / "www"
    (www / "private").mkdir(parents=True)
    for name, body in (("page.html", "page"), ("inherit.html", "inherit"),
                       ("off.html", "off"), ("relative.html", "relative"),
                       ("protected-push.html", "protected"), ("style.css", "css"),
                       ("app.js", "js"), ("extra.txt", "extra"), ("moved.html", "moved")):
        (www / name).write_text(body)
    (www / "big.bin").write_bytes(bytes(range(256)) * 4096)  # (past the client's window)
    (tmp_path / "htpasswd").write_text("alice:{PLAIN}pw\n")
    backend = RawBackend(answer=_backend_answer)
    made: list[Side] = []
    try:
        for kind in ("nginx", "fastgate"):
            made.append(Side(kind, tmp_path, backend))
        yield made[0], made[1], backend
    finally:
        for side in made:
            side.stop()
        backend.stop()


def _visit(port: int, path: str, method: str = "GET", push: bool = True) -> dict[str, object]:
    """One request: its answer, and each stream pushed with it (promise and answer)."""
    settings = None if push else {2: 0}  # SETTINGS_ENABLE_PUSH
    with H2Client(port, settings=settings) as c:
        sid = c.request(path, method=method, headers={
            "user-agent": "push-test/1", "accept-encoding": "gzip", "authorization": "Basic "
            "YWxpY2U6cHc="})
        c.wait(sid)
        pushed = [p for _, p, _ in c.promises]
        c.wait(*pushed)
        main = c.answers[sid]

        def body(a: Answer) -> bytes:  # (error pages differ in their signature)
            return a.body if a.status < 400 else b"(error page)"

        return {
            "status": main.status, "body": body(main),
            "promises": [fields for _, _, fields in c.promises],
            "pushed": [(c.answers[p].status, body(c.answers[p])) for p in pushed],
        }


@pytest.mark.parametrize("path,method,push", [
    ("/page.html", "GET", True),
    ("/page.html?extra=yes", "GET", True),
    ("/page.html", "HEAD", True),
    ("/page.html", "GET", False),
    ("/inherit.html", "GET", True),
    ("/off.html", "GET", True),
    ("/relative.html", "GET", True),
    ("/protected-push.html", "GET", True),
    ("/moved.html", "GET", True),
    ("/proxied/x", "GET", True),
    ("/missing.html", "GET", True),
    ("/nowhere.html", "GET", True),
])
def test_pushes_as_nginx(sides: tuple[Side, Side, RawBackend], path: str, method: str,
                         push: bool) -> None:
    nginx, fastgate, backend = sides
    want = _visit(nginx.port, path, method, push)
    backend.requests()  # (nginx's are not compared: its proxy sends other headers)
    got = _visit(fastgate.port, path, method, push)
    assert got == want
    expected = nginx.warnings()
    deadline = time.time() + 3  # (a log line may be written a moment after the answer)
    while fastgate.warnings() != expected and time.time() < deadline:
        time.sleep(0.1)
    assert fastgate.warnings() == expected
    # a pushed request carries no credentials: the protected location's backend is not
    # reached by a push (nginx's neither)
    if path == "/protected-push.html":
        assert got["pushed"] == [(401, b"(error page)")]  # (the location's own list)
        assert backend.requests() == []


def test_pushes_at_once_are_bounded(sides: tuple[Side, Side, RawBackend]) -> None:
    """http2_max_concurrent_pushes 1: a pushed stream still sending (a file past the
    client's window) leaves no room for the next push, as in nginx."""
    nginx, fastgate, _ = sides
    want = _visit(nginx.limited, "/page.html")
    got = _visit(fastgate.limited, "/page.html")
    assert got == want
    assert len(got["promises"]) == 1  # type: ignore[arg-type]
