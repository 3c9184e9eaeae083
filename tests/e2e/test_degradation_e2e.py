"""The degradation module end to end, both engines: past its heap size a location with
``degrade`` answers 204 (or closes the connection: 444) and its backend receives
nothing; below it, or without ``degrade``, requests are served."""

from __future__ import annotations

import socket
import time

import pytest
from conftest import request
from raw_backend import RawBackend


@pytest.mark.parametrize(("size", "degraded"), [("1k", True), ("102400m", False)])
def test_degrade(gateway, free, size: str, degraded: bool) -> None:  # type: ignore[no-untyped-def]
    be = RawBackend()
    port = free()
    try:
        g = gateway(f"""error_log stderr info;
http {{ access_log off; degradation sbrk={size};
  server {{ listen 127.0.0.1:{port};
    location /soft/ {{ degrade 204; proxy_pass http://127.0.0.1:{be.port}; }}
    location /hard/ {{ degrade 444; proxy_pass http://127.0.0.1:{be.port}; }}
    location / {{ proxy_pass http://127.0.0.1:{be.port}; }} }} }}""", port)
        assert request(port, "GET", "/soft/x")[0] == (204 if degraded else 200)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /hard/x HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = s.recv(4096)
        assert (answer == b"") == degraded
        assert request(port, "GET", "/plain")[0] == 200
        targets = [r.target for r in be.requests()]
        assert targets == ([b"/plain"] if degraded else [b"/soft/x", b"/hard/x", b"/plain"])
        if degraded:  # (a notice is written within a tenth of a second)
            deadline = time.monotonic() + 3
            while "degradation sbrk:" not in g.stderr and time.monotonic() < deadline:
                time.sleep(0.05)
        assert ("degradation sbrk:" in g.stderr) == degraded
    finally:
        be.stop()
