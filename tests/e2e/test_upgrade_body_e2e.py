"""A request that asks to upgrade and has a body: ``proxy_request_buffering on`` (the
default) reads the body whole before the upstream is asked, as for any request, and the
tunnel begins after it — compared with nginx 1.22 on both engines, against a backend
that records every byte it receives."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from test_nginx_parity_e2e import Side, both

BLOCK = """map $http_upgrade $connection_upgrade { default upgrade; '' close; }
server { listen 127.0.0.1:PORT;
    location /ws { proxy_set_header Upgrade $http_upgrade;
                   proxy_set_header Connection $connection_upgrade;
                   proxy_http_version 1.1; proxy_pass http://BACKEND; }
    location /ws-streamed { proxy_request_buffering off;
                   proxy_set_header Upgrade $http_upgrade;
                   proxy_set_header Connection $connection_upgrade;
                   proxy_http_version 1.1; proxy_pass http://BACKEND; } }"""


def _upgrade(side: Side, path: str, body: bytes) -> tuple[bool, bytes, bytes]:
    """The request's head and the body's first half, then (after a pause) its second
    half and a message for the tunnel: whether the backend had any of the request
    before the body was whole, the answer's head, and what came back through the
    tunnel."""
    before = len(side.backend.raw())
    head = (f"POST {path} HTTP/1.1\r\nHost: parity.test\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", side.port), timeout=10) as s:
        half = len(body) // 2
        s.sendall(head + body[:half])
        time.sleep(0.3)
        early = len(side.backend.raw()) > before
        s.sendall(body[half:])
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        answer, _, tunnel = data.partition(b"\r\n\r\n")
        s.sendall(b"ping")
        deadline = time.time() + 5
        while tunnel != b"ping" and time.time() < deadline:
            s.settimeout(max(0.01, deadline - time.time()))
            tunnel += s.recv(65536)
    return early, answer.split(b"\r\n")[0], tunnel


@pytest.mark.parametrize("engine", ["httptools", "h11"])
@pytest.mark.parametrize("size", [10, 40_000])  # in memory; past the buffer, in a file
def test_an_upgrade_with_a_body_is_buffered_as_nginx(tmp_path: Path, engine: str,
                                                     size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    with both(tmp_path, BLOCK, engine) as (nginx, fastgate):
        for side in (nginx, fastgate):
            early, status, tunnel = _upgrade(side, "/ws", body)
            assert not early, side.kind  # nothing upstream before the body is whole
            assert status == b"HTTP/1.1 101 Switching Protocols", side.kind
            assert tunnel == b"ping", side.kind  # the tunnel after the body, not inside it
            got = side.backend.requests()[-1]
            assert got.body == body, side.kind
            assert got.header(b"content-length") == [str(size).encode()], side.kind
            # "off": the head goes at once, the body as it comes
            early, status, tunnel = _upgrade(side, "/ws-streamed", body)
            assert early and tunnel == b"ping", side.kind
            assert side.backend.requests()[-1].body == body, side.kind


@pytest.mark.parametrize("engine", ["httptools", "h11"])
def test_a_first_frame_sent_before_the_switch_is_kept_as_nginx(tmp_path: Path,
                                                               engine: str) -> None:
    """A WebSocket client may send its first frame before the 101 comes back: the
    gateway holds it and it is the tunnel's first bytes (it was lost on the httptools
    engine)."""
    with both(tmp_path, BLOCK, engine) as (nginx, fastgate):
        for side in (nginx, fastgate):
            with socket.create_connection(("127.0.0.1", side.port), timeout=10) as s:
                s.sendall(b"GET /ws-slow HTTP/1.1\r\nHost: parity.test\r\n"
                          b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                time.sleep(0.1)
                s.sendall(b"first frame")
                data = b""
                deadline = time.time() + 5
                while not data.endswith(b"first frame") and time.time() < deadline:
                    data += s.recv(65536)
            assert data.startswith(b"HTTP/1.1 101 "), side.kind
            assert data.split(b"\r\n\r\n", 1)[1] == b"first frame", side.kind


@pytest.mark.parametrize("engine", ["httptools", "h11"])
def test_an_upgrade_not_switched_leaves_the_connection_to_the_next_request_as_nginx(
        tmp_path: Path, engine: str) -> None:
    """An upstream that answers an upgrade request without switching (a 200): the
    connection goes on, what followed the request (its body first) is the next request,
    as nginx reads it (the httptools engine closed the connection there)."""
    raw = (b"POST /ws-no HTTP/1.1\r\nHost: parity.test\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nContent-Length: 3\r\n\r\nabc"
           b"GET /next HTTP/1.1\r\nHost: parity.test\r\nConnection: close\r\n\r\n")
    with both(tmp_path, BLOCK.replace("location /ws {", "location /ws-no { "
                                      "proxy_pass http://BACKEND/plain; }\n"
                                      "    location /next { proxy_pass http://BACKEND; }\n"
                                      "    location /ws {"), engine) as (nginx, fastgate):
        for side in (nginx, fastgate):
            with socket.create_connection(("127.0.0.1", side.port), timeout=10) as s:
                s.sendall(raw)
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            assert data.count(b"HTTP/1.1 200 OK\r\n") == 2, (side.kind, data)
            first, second = side.backend.requests()[-2:]
            assert (first.target, first.body, second.target) == (b"/plain", b"abc", b"/next")
