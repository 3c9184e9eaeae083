"""mirror: every request copied to a shadow backend in the background, its answer
ignored and never waited for, on both engines."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import server_config_error
from raw_backend import RawBackend, Received


def _slow(req: Received) -> bytes:
    time.sleep(0.8)
    return b"HTTP/1.1 500 Shadow Broke\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def pair() -> Iterator[tuple[RawBackend, RawBackend]]:
    main, shadow = RawBackend(), RawBackend(answer=_slow)
    yield main, shadow
    main.stop()
    shadow.stop()


def _ask(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, float]:
    started = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        r.read()
        return r.status, time.monotonic() - started
    finally:
        c.close()


def _wait(backend: RawBackend, n: int) -> list[Received]:
    deadline = time.time() + 5
    while time.time() < deadline and len(backend.requests()) < n:
        time.sleep(0.05)
    return backend.requests()


def test_requests_are_copied_and_never_waited_for(tmp_path: Path, gateway, free, pair) -> None:  # type: ignore[no-untyped-def]
    main, shadow = pair
    port, dead = free(), free()
    g = gateway(f"""http {{ access_log off;
      upstream main {{ server 127.0.0.1:{main.port}; }}
      server {{ listen 127.0.0.1:{port};
        mirror /shadow;
        location = /shadow {{ internal; proxy_pass http://127.0.0.1:{shadow.port}$request_uri; }}
        location = /dead {{ internal; proxy_pass http://127.0.0.1:{dead}; }}
        location / {{ proxy_pass http://main; }}
        location /nobody/ {{ mirror_request_body off; proxy_pass http://main; }}
        location /twice/ {{ mirror /shadow; mirror /dead; proxy_pass http://main; }}
        location /off/ {{ mirror off; proxy_pass http://main; }}
      }} }}""", port)
    status, took = _ask(port, "GET", "/a?x=1")
    assert status == 200 and took < 0.5  # the shadow takes 0.8 s: not waited for
    status, _ = _ask(port, "POST", "/b", b"hello")
    assert status == 200
    status, _ = _ask(port, "POST", "/nobody/c", b"secret-payload")
    assert status == 200
    assert _ask(port, "GET", "/off/d")[0] == 200
    assert _ask(port, "GET", "/twice/e")[0] == 200
    assert [(r.method, r.target, r.body) for r in main.requests()] == [
        (b"GET", b"/a?x=1", b""), (b"POST", b"/b", b"hello"),
        (b"POST", b"/nobody/c", b"secret-payload"), (b"GET", b"/off/d", b""),
        (b"GET", b"/twice/e", b"")]
    copies = sorted((r.method, r.target, r.body) for r in _wait(shadow, 4))
    assert copies == sorted([(b"GET", b"/a?x=1", b""), (b"POST", b"/b", b"hello"),
                             (b"POST", b"/nobody/c", b""), (b"GET", b"/twice/e", b"")])
    deadline = time.time() + 5
    while time.time() < deadline and "(mirror)" not in g.stderr:
        time.sleep(0.05)
    assert "connect() failed (111: Connection refused) while connecting to upstream " \
           "(mirror)" in g.stderr


def test_mirror_config(tmp_path: Path) -> None:
    assert 'variables in "mirror"' in server_config_error(tmp_path, "mirror /m$uri;")
    text = server_config_error(tmp_path, "mirror /m; location = /m { internal; }")
    assert 'mirror "/m" reaches a location' in text
