"""proxy.jwt_phase: the compiled token check of the usual location — chosen only where
nothing is asked after the signature but what the verifier checks, and refusing what
the Python path refuses: a real worker in process, both engines, over a pooled idle
upstream connection (the callback path), the upstream's bytes read for what it did not
get. Its own 401 (where the location's is nginx's plain page and no info line is
written) is compared byte for byte with the Python path's."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from scenario import Sink, connected

from fastgate.config import load_config
from fastgate.ops.stats import _FIELDS
from fastgate.ops.worker import Worker

SECRET = "jwt-phase-secret-0123456789abcdef-xyz"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _worker(tmp: Path, engine: str, level: str = "info") -> Worker:
    """``level`` info: every refusal is logged, so the Python path answers it."""
    conf = tmp / "t.conf"
    conf.write_text(f"""error_log {tmp}/error.log {level};
http {{
  log_format all '$status $body_bytes_sent $bytes_sent $sent_http_www_authenticate';
  access_log {tmp}/access.log all;
  upstream be {{ server 127.0.0.1:9; keepalive 8; }}
  server {{ listen 127.0.0.1:8080; auth_jwt_key "{SECRET}"; auth_jwt on;
    proxy_set_header X-Sub $jwt_claim_sub;
    location /usual/ {{ proxy_pass http://be; }}
    location /options/ {{ auth_jwt_options on; proxy_pass http://be; }}
    location /require/ {{ auth_jwt_require $jwt_claim_admin; proxy_pass http://be; }}
    location /cookie/ {{ auth_jwt $cookie_t; proxy_pass http://be; }}
    location /headed/ {{ add_header X-Denied yes always; proxy_pass http://be; }}
    location /paged/ {{ error_page 401 = @login; proxy_pass http://be; }}
    location @login {{ auth_jwt off; return 302 /login; }}
  }} }}
""")
    return Worker(load_config(str(conf)), engine)


def test_the_compiled_check_is_for_the_usual_location_only(tmp_path: Path) -> None:
    worker = _worker(tmp_path, "h11")
    try:
        (server,) = worker.config.servers
        kinds = {}
        for path in ("/usual/", "/options/", "/require/", "/cookie/"):
            loc = server.locations.find(path)[0]
            kinds[path] = type(worker.phases.auth.handler(loc)).__name__
        assert kinds == {"/usual/": "BearerCheck", "/options/": "BearerCheck",
                         "/require/": "method", "/cookie/": "method"}
    finally:
        worker.close()


def _token(**claims: object) -> str:
    return pyjwt.encode({"sub": "alice", "exp": int(time.time()) + 60, **claims}, SECRET,
                        algorithm="HS256")


CASES = [
    # (request line and headers, whether the upstream gets it)
    (b"GET /usual/a HTTP/1.1\r\nHost: h\r\n", False),
    (b"GET /usual/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer a.b.c\r\n", False),
    (b"GET /usual/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer "
     + pyjwt.encode({"sub": "x", "exp": 1}, SECRET, algorithm="HS256").encode() + b"\r\n",
     False),
    (b"GET /usual/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer "
     + pyjwt.encode({"sub": "x"}, "another-secret-of-32-bytes-0123456", algorithm="HS256"
                    ).encode() + b"\r\n", False),
    (b"OPTIONS /usual/a HTTP/1.1\r\nHost: h\r\n", True),  # (CORS preflights pass)
    (b"OPTIONS /options/a HTTP/1.1\r\nHost: h\r\n", False),
    (b"GET /require/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer TOKEN\r\n", False),
    (b"GET /usual/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer TOKEN\r\n", True),
]


@pytest.mark.parametrize("level", ["info", "error"])
@pytest.mark.parametrize("engine", ["h11", "httptools"])
@pytest.mark.parametrize("head,passes", CASES)
def test_what_passes_and_what_reaches_nothing(tmp_path: Path, engine: str, head: bytes,
                                              passes: bool, level: str) -> None:
    async def main() -> None:
        worker = _worker(tmp_path, engine, level)
        try:
            client_out = Sink()
            client, upstream, upstream_out = connected(worker, client_out)
            client.data_received(head.replace(b"TOKEN", _token().encode())
                                 + b"X-Sub: forged\r\n\r\n")
            for _ in range(20):
                await asyncio.sleep(0)
            sent = upstream_out.bytes()
            if passes:
                assert sent.startswith((b"GET ", b"OPTIONS ")), sent
                assert b"forged" not in sent
                upstream.data_received(RESPONSE)
                for _ in range(20):
                    await asyncio.sleep(0)
                assert client_out.bytes().startswith(b"HTTP/1.1 200")
            else:
                assert sent == b""  # nothing of it reached the upstream
                assert client_out.bytes().startswith(b"HTTP/1.1 401"), client_out.bytes()
        finally:
            worker.close()

    asyncio.run(main())



REFUSED = [
    b"GET /usual/a HTTP/1.1\r\nHost: h\r\n\r\n",
    b"HEAD /usual/a HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /usual/a HTTP/1.0\r\nHost: h\r\nAuthorization: Bearer a.b.c\r\n\r\n",
    b"GET /usual/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer "
    + pyjwt.encode({"sub": "x", "exp": 1}, SECRET, algorithm="HS256").encode() + b"\r\n\r\n",
    b"GET /usual/a HTTP/1.1\r\nHost: h\r\nConnection: close\r\nAuthorization: Bearer "
    + pyjwt.encode({"sub": "x"}, "another-secret-of-32-bytes-0123456", algorithm="HS256"
                   ).encode() + b"\r\n\r\n",
    # (a body: the task path, the body discarded, the connection kept)
    b"POST /usual/a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
    b"Authorization: Bearer a.b.c\r\n\r\nhello",
    b"GET /headed/a HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /paged/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer a.b.c\r\n\r\n",
]


def _answer(tmp: Path, engine: str, level: str,
            head: bytes) -> tuple[bytes, str, list[float], int]:
    """What a worker at ``level`` answers ``head`` (its Date taken out), its access-log
    line, its counters, and how many times the Python path answered."""
    async def main() -> bytes:
        client_out = Sink()
        client, upstream, upstream_out = connected(worker, client_out)
        client.data_received(head)
        for _ in range(20):
            await asyncio.sleep(0)
        assert upstream_out.bytes() == b""  # nothing of it reached the upstream
        return client_out.bytes()

    tmp.mkdir()
    worker = _worker(tmp, engine, level)
    auth = worker.phases.auth
    python_path = []

    def counted(method: Any) -> Any:
        def call(*args: Any) -> Any:
            python_path.append(method)
            return method(*args)
        return call

    # (before the first request, which plans the location with these)
    auth.access, auth.refused = counted(auth.access), counted(auth.refused)  # type: ignore[method-assign]
    try:
        out = asyncio.run(main())
        totals = worker.stats.totals()
        # (the time it took, and so its bucket: not the same twice)
        for i in range(_FIELDS["latency"], _FIELDS["latency_sum"] + 1):
            totals[i] = 0.0
    finally:
        worker.close()
    out = re.sub(rb"Date: [^\r]*\r\n", b"", out)
    return out, (tmp / "access.log").read_text(), totals, len(python_path)


@pytest.mark.parametrize("engine", ["h11", "httptools"])
@pytest.mark.parametrize("head", REFUSED)
def test_the_compiled_refusal_is_the_python_paths(tmp_path: Path, engine: str,
                                                   head: bytes) -> None:
    """The 401 the compiled check writes itself (error_log above info) is the Python
    path's (info: the refusal is logged there) to the byte: head, body, the access log's
    line, the counters; where the location's 401 is not the plain page (add_header,
    error_page) the Python path answers at either level."""
    compiled = _answer(tmp_path / "error", engine, "error", head)
    python = _answer(tmp_path / "info", engine, "info", head)
    assert compiled[0].startswith((b"HTTP/1.1 401 Unauthorized\r\n",
                                   b"HTTP/1.1 302 Moved Temporarily\r\n")), compiled[0]
    assert compiled[0] == python[0]
    assert compiled[1] == python[1] and compiled[1].startswith(("401 ", "302 "))
    assert compiled[2] == python[2]
    assert python[3] == 1  # (info: the Python path, which writes the line)
    assert compiled[3] == (1 if b"/headed/" in head or b"/paged/" in head else 0)
    if b"/headed/" in head:
        assert b"X-Denied: yes" in compiled[0]
    if b"/paged/" in head:
        assert b"Location: http://h:8080/login" in compiled[0]
    if b"Connection: close" in head:
        assert b"connection: close" in compiled[0].lower()
