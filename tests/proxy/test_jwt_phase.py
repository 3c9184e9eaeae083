"""proxy.jwt_phase: the compiled token check of the usual location — chosen only where
nothing is asked after the signature but what the verifier checks, and refusing what
the Python path refuses: a real worker in process, both engines, over a pooled idle
upstream connection (the callback path), the upstream's bytes read for what it did not
get."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from scenario import Sink, connected

from fastgate.config import load_config
from fastgate.ops.worker import Worker

SECRET = "jwt-phase-secret-0123456789abcdef-xyz"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _worker(tmp: Path, engine: str) -> Worker:
    conf = tmp / "t.conf"
    conf.write_text(f"""error_log {tmp}/error.log info;
http {{
  upstream be {{ server 127.0.0.1:9; keepalive 8; }}
  server {{ listen 127.0.0.1:8080; auth_jwt_key "{SECRET}"; auth_jwt on;
    proxy_set_header X-Sub $jwt_claim_sub;
    location /usual/ {{ proxy_pass http://be; }}
    location /options/ {{ auth_jwt_options on; proxy_pass http://be; }}
    location /require/ {{ auth_jwt_require $jwt_claim_admin; proxy_pass http://be; }}
    location /cookie/ {{ auth_jwt $cookie_t; proxy_pass http://be; }}
  }} }}
""")
    return Worker(load_config(str(conf)), engine)


def test_the_compiled_check_is_for_the_usual_location_only(tmp_path: Path) -> None:
    worker = _worker(tmp_path, "h11")
    try:
        (server,) = worker.config.servers
        kinds = {}
        for path in ("/usual/", "/options/", "/require/", "/cookie/"):
            loc = worker.phases.locate(server.locations, path)[0]
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


@pytest.mark.parametrize("engine", ["h11", "httptools"])
@pytest.mark.parametrize("head,passes", CASES)
def test_what_passes_and_what_reaches_nothing(tmp_path: Path, engine: str, head: bytes,
                                              passes: bool) -> None:
    async def main() -> None:
        worker = _worker(tmp_path, engine)
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

