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


@pytest.mark.parametrize("keepalive", ["keepalive 8;", ""], ids=["pooled", "new"])
def test_post_action_asks_its_location_once_the_response_is_done(  # type: ignore[no-untyped-def]
        tmp_path: Path, gateway, free, pair, keepalive: str) -> None:
    """nginx's post_action: after the response, the request once more to that location
    (here an analytics endpoint), its method and headers kept, its answer dropped; a
    slow or failing one costs the client nothing."""
    main, shadow = pair
    port, dead = free(), free()
    gateway(f"""http {{ access_log off;
      upstream main {{ server 127.0.0.1:{main.port}; {keepalive} }}
      server {{ listen 127.0.0.1:{port};
        location / {{ proxy_pass http://main; post_action @track; }}
        location @track {{ proxy_pass http://127.0.0.1:{shadow.port};
                          proxy_set_header X-Status $status; }}
        location /gone/ {{ proxy_pass http://main; post_action /dead; }}
        location = /dead {{ internal; proxy_pass http://127.0.0.1:{dead}; }}
        location /none/ {{ post_action off; proxy_pass http://main; }} }} }}""", port)
    status, took = _ask(port, "DELETE", "/items/7")
    assert status == 200 and took < 0.6  # the slow tracker is not waited for
    tracked = _wait(shadow, 1)
    assert [(r.method, r.target) for r in tracked] == [(b"DELETE", b"/items/7")]
    assert tracked[0].header(b"x-status") == [b"200"]
    assert _ask(port, "GET", "/gone/a")[0] == 200  # a dead tracker: still answered
    assert _ask(port, "GET", "/none/b")[0] == 200
    time.sleep(0.3)
    assert len(shadow.requests()) == 1
    assert [r.target for r in main.requests()] == [b"/items/7", b"/gone/a", b"/none/b"]


def test_post_action_needs_a_location_that_proxies(tmp_path: Path) -> None:
    assert "reaches a location" in server_config_error(
        tmp_path, "location /a/ { post_action /nowhere; return 200; }")
    assert "invalid URI" in server_config_error(tmp_path, "post_action track;")


def test_a_large_body_is_copied_from_its_file(tmp_path: Path, gateway, free, pair) -> None:  # type: ignore[no-untyped-def]
    """A body past client_body_buffer_size waits in a file, which the main request and
    the copy (slower: it outlives its request) each read whole — never the whole body
    in memory, nothing left behind."""
    from e2e_util import proc_status_kib

    main, shadow = pair
    port = free()
    temp = tmp_path / "body"
    g = gateway(f"""http {{ access_log off; client_body_buffer_size 1k;
      client_max_body_size 64m; client_body_temp_path {temp};
      server {{ listen 127.0.0.1:{port};
        location / {{ mirror /shadow; proxy_pass http://127.0.0.1:{main.port}; }}
        location = /shadow {{ internal; proxy_pass http://127.0.0.1:{shadow.port}$request_uri; }}
      }} }}""", port)
    body = bytes(range(256)) * 4096  # 1 MiB
    assert _ask(port, "POST", "/small", b"fits")[0] == 200
    before = proc_status_kib(g.proc.pid, "VmHWM")
    assert _ask(port, "POST", "/up", body * 12)[0] == 200
    assert proc_status_kib(g.proc.pid, "VmHWM") - before < 8 * 1024, "held in memory"
    assert [(r.target, r.body) for r in main.requests()] == [
        (b"/small", b"fits"), (b"/up", body * 12)]
    copies = sorted((r.target, r.body) for r in _wait(shadow, 2))
    assert copies == [(b"/small", b"fits"), (b"/up", body * 12)]
    assert list(temp.iterdir()) == []
