"""limit_rate end to end, on both engines: a response is paced as nginx paces it —
RATE bytes a second past limit_rate_after, with the first second's allowance at once —
from files and from upstreams (X-Accel-Limit-Rate, set $limit_rate), and an answer
relayed unbuffered is not paced. Only lower bounds are timed: a paced response cannot
be quicker than its rate allows; an unpaced one is far from what a pace would take."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from raw_backend import RawBackend, Received

BODY = bytes(range(256)) * 117 + b"tail"  # 29,956 bytes: three seconds' worth at 10k


def _answer(req: Received) -> bytes:
    rate = b"X-Accel-Limit-Rate: 10240\r\n" if b"/accel" in req.target else b""
    return (b"HTTP/1.1 200 OK\r\n" + rate + b"Content-Length: %d\r\n\r\n" % len(BODY)
            + BODY)


@pytest.fixture
def fetch(tmp_path: Path, gateway, free) -> Iterator[Callable[[str], tuple[bytes, float]]]:  # type: ignore[no-untyped-def]
    backend = RawBackend(answer=_answer)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "big.bin").write_bytes(BODY)
    port = free()
    up = f"http://127.0.0.1:{backend.port}"
    gateway(f"""error_log stderr info;
http {{ access_log off;
  server {{ listen 127.0.0.1:{port}; root {tmp_path};
    location /files/ {{ limit_rate 10k; }}
    location /after/ {{ alias {tmp_path}/files/; limit_rate 1k; limit_rate_after 1m; }}
    location /accel {{ limit_rate 100m; proxy_pass {up}; }}
    location /accel-as-is {{ proxy_pass {up}; }}
    location /set {{ set $limit_rate 10k; proxy_pass {up}; }}
    location /unbuffered {{ limit_rate 1k; proxy_buffering off; proxy_pass {up}; }}
  }} }}""", port)

    def run(path: str) -> tuple[bytes, float]:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            began = time.monotonic()
            c.request("GET", path)
            body = c.getresponse().read()
            return body, time.monotonic() - began
        finally:
            c.close()

    yield run
    backend.stop()


@pytest.mark.parametrize("path", ["/files/big.bin", "/accel", "/set"])
def test_a_paced_response_takes_the_time_its_rate_asks(fetch, path: str) -> None:  # type: ignore[no-untyped-def]
    body, took = fetch(path)
    assert body == BODY
    # 10 KiB at once, 10 KiB more each second: the rest of ~29 KiB needs 1 s at least
    assert took >= 0.95


def test_a_rate_the_upstream_names_on_the_callback_path(fetch) -> None:  # type: ignore[no-untyped-def]
    """A location that proxies as it is answers over a pooled idle connection in
    callbacks (the second request; the first connects, in a task): its upstream's
    X-Accel-Limit-Rate hands the response to the paced relay there too."""
    for _ in range(2):
        body, took = fetch("/accel-as-is")
        assert body == BODY and took >= 0.95


@pytest.mark.parametrize("path", ["/after/big.bin", "/unbuffered"])
def test_what_is_not_paced(fetch, path: str) -> None:  # type: ignore[no-untyped-def]
    body, took = fetch(path)
    assert body == BODY
    assert took < 10  # (at 1k a second it would take 28 s)
