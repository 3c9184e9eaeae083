"""Request targets with bytes past ASCII sent raw (a browser's or curl's UTF-8 path
sent unescaped): nginx takes them, so fastgate does, on both engines — compared with
nginx 1.22 on the same bytes: the location they find, ``$request_uri``/``$uri``/
``$args``, what the upstream receives with and without a URI part in ``proxy_pass``;
whole in one read, pipelined behind another request, and cut in two reads inside the
request line. Control bytes stay refused as nginx refuses them."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from test_nginx_parity_e2e import both

BLOCK = """server { listen 127.0.0.1:PORT;
    location /raw/ { proxy_pass http://BACKEND; }
    location /uri/ { proxy_pass http://BACKEND/w/; }
    location /caf\u00e9/ { return 200 "cafe:$request_uri|$uri|$args"; }
    location / { return 200 "root:$request_uri|$uri|$args"; } }"""


def _ask(port: int, *pieces: bytes) -> bytes:
    """What the gateway answers to ``pieces`` sent one after another (a pause between
    them, so each comes in its own read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for i, piece in enumerate(pieces):
            if i:
                time.sleep(0.05)
            s.sendall(piece)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def _answers(data: bytes) -> list[tuple[bytes, bytes]]:
    """(status line, body) of each response in ``data`` (bodies with a length)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(int(x.split(b":")[1]) for x in lines
                      if x.lower().startswith(b"content-length:"))
        out.append((lines[0], rest[:length]))
        data = rest[length:]
    return out


def _get(target: bytes, close: bool = True) -> bytes:
    return (b"GET " + target + b" HTTP/1.1\r\nHost: raw.test\r\n"
            + (b"Connection: close\r\n" if close else b"") + b"\r\n")


CASES = [
    (_get(b"/caf\xc3\xa9/x?q=\xc3\xbc"),),
    (_get(b"/caf%C3%A9/x"),),
    (_get(b"/\xff\xfe"),),
    (_get(b"/raw/caf\xc3\xa9?q=\xc3\xbc"),),
    (_get(b"/uri/caf\xc3\xa9/%C3%A9?q=\xc3\xbc"),),
    (_get(b"/caf\xc3\xa9/../raw/x"),),
    (_get(b"/plain", close=False) + _get(b"/caf\xc3\xa9/pipelined"),),
    (b"GET /caf\xc3", b"\xa9/cut HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n"),
    (b"GET /raw/a", b"b\xc3\xa9 HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n"),
    (b"PROPFIND /caf\xc3\xa9/m HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n",),
    (_get(b"/caf\xc3\xa9/\x01"),),
    (_get(b"/a\x7f\xc3\xa9"),),
    (b"GET /\xc3\xa9 HTTP/1.\xc3\r\nHost: raw.test\r\nConnection: close\r\n\r\n",),
]


@pytest.mark.parametrize("engine", ["httptools", "h11"])
def test_raw_targets_as_nginx(tmp_path: Path, engine: str) -> None:
    with both(tmp_path, BLOCK, engine) as (nginx, fastgate):
        for pieces in CASES:
            want = _answers(_ask(nginx.port, *pieces))
            got = _answers(_ask(fastgate.port, *pieces))
            assert [s.split(b" ")[1] for s, _ in got] == [s.split(b" ")[1] for s, _ in want], (
                pieces, got, want)
            assert [b for s, b in got if s.endswith(b"200 OK")] == [
                b for s, b in want if s.endswith(b"200 OK")], (pieces, got, want)
        # the upstream got the same request lines from both
        assert [r.target for r in fastgate.backend.requests()] == [
            r.target for r in nginx.backend.requests()]
        assert len(nginx.backend.requests()) == 4


HASHES = """server { listen 127.0.0.1:PORT;
    location /up/ { proxy_pass http://BACKEND/w/; }
    location /raw/ { proxy_pass http://BACKEND; }
    location /p/ { proxy_pass http://BACKEND/w/$arg_a$is_args$args; }
    location / { return 200 "$uri|$args|$is_args|$arg_a|$request_uri"; } }"""

HASHED = [b"/?a=1#frag", b"/?#", b"/#x?a=1", b"/x#frag?a=1/..", b"/%3fx#f?a=1",
          b"/?a=1%2e#%61dmin&a=2", b"/;#%~?/..'", b"/%2E?&#!a(x", b"/a%2fb?a=1#?a=2",
          b"/up/x?a=1#f", b"/up/x#f?a=1", b"/raw/x?a=1#f&a=2", b"/p/x?a=1#&a=2",
          b"/p/x#?a=2", b"http://raw.test/up/y?a=3#f"]


@pytest.mark.parametrize("engine", ["httptools", "h11"])
def test_a_hash_ends_the_uri_and_its_arguments_as_nginx_s(tmp_path: Path, engine: str) -> None:
    """A "#" in a target ends $uri and $args (and a "?" after it starts none), as
    nginx's parser reads it: the same $uri, $args, $arg_a and $is_args, and the same
    target upstream — the arguments up to the "#" where proxy_pass has a URI part, the
    target whole (as $request_uri) where it has none."""
    with both(tmp_path, HASHES, engine) as (nginx, fastgate):
        for target in HASHED:
            raw = _get(target)
            want, got = _answers(_ask(nginx.port, raw)), _answers(_ask(fastgate.port, raw))
            assert got == want, (target, got, want)
        theirs = [r.target for r in nginx.backend.requests()]
        mine = [r.target for r in fastgate.backend.requests()]
    assert mine == theirs and len(mine) == 6
    assert b"/w/x?a=1" in mine and b"/raw/x?a=1#f&a=2" in mine
