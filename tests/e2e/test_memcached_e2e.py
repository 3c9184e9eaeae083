"""memcached_pass compared with nginx 1.22: nginx and fastgate in front of one
memcached (an in-process one that keeps every byte it receives, speaking the text
protocol's get), the same requests, the same answers — hits, misses through error_page
to the application, the gzip flag, a key to escape; and what each asked, byte for byte."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from test_nginx_parity_e2e import NGINX, Side, _request

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(),
                                reason="nginx is installed by make test (test-deps)")

SECRET = "memcached-test-secret-0123456789abcdef"
STORE = {b"/page": (0, b"<p>cached page</p>"), b"/zipped": (2, b"\x1f\x8bnot-really"),
         b"/a%20b%25c": (0, b"escaped key")}


class Memcached:
    """``get KEY`` from STORE; anything else: ERROR. Every byte kept."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("memcached stand-in did not start")

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                self.raw.append(line)
                cmd, _, key = line.rstrip(b"\r\n").partition(b" ")
                if cmd != b"get":
                    writer.write(b"ERROR\r\n")
                elif key in STORE:
                    flags, value = STORE[key]
                    writer.write(b"VALUE %s %d %d\r\n%s\r\nEND\r\n" % (key, flags,
                                                                       len(value), value))
                else:
                    writer.write(b"END\r\n")
            writer.close()

        server = self._loop.run_until_complete(asyncio.start_server(serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()
        server.close()  # its port is free again when the test ends
        self._loop.run_until_complete(server.wait_closed())

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


BLOCK = """
server { listen 127.0.0.1:PORT;
  location / { set $memcached_key "$uri"; memcached_gzip_flag 2;
               default_type text/html; error_page 404 = @app;
               memcached_pass 127.0.0.1:MC; }
  location /nokey/ { memcached_pass 127.0.0.1:MC; }
  location /raw/ { set $memcached_key "$arg_k"; memcached_pass 127.0.0.1:MC; }
  location @app { proxy_pass http://BACKEND; }
}
"""

PATHS = ["/page", "/zipped", "/missing", "/nokey/x", "/raw/?k=/page",
         "/raw/?k=%2Fa%20b%25c", "/page.json"]


def test_memcached_as_nginx(tmp_path: Path, engine: str) -> None:
    mc = Memcached()
    sides = []
    try:
        for kind in ("nginx", "fastgate"):
            sides.append(Side(kind, tmp_path, BLOCK.replace("MC", str(mc.port)), engine))
        nginx, fastgate = sides
        for path in PATHS:
            before = len(mc.raw)
            want = nginx.send(_request("GET", path))
            asked_by_nginx = mc.raw[before:]
            before = len(mc.raw)
            got = fastgate.send(_request("GET", path))
            assert mc.raw[before:] == asked_by_nginx, path  # the same get, byte for byte
            assert got[0] == want[0], (path, want, got)
            if want[0] == 200:
                assert got[2] == want[2], path
            for name in ("content-type", "content-encoding", "content-length"):
                if want[0] == 200:
                    assert got[1].get(name) == want[1].get(name), (path, name)
        # the misses went on to the application, through error_page, on both sides
        assert len(fastgate.backend.requests()) == len(nginx.backend.requests()) == 2
    finally:
        for side in sides:
            side.stop()
        mc.stop()


def test_a_refused_request_asks_memcached_nothing(gateway, free) -> None:  # type: ignore[no-untyped-def]
    import http.client

    import jwt as pyjwt

    mc = Memcached()
    try:
        port = free()
        gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port};
            location / {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
                         set $memcached_key "/page"; memcached_pass 127.0.0.1:{mc.port}; }}
            }} }}""", port)
        forged = pyjwt.encode({"sub": "eve"}, "wrong-key-" * 4, algorithm="HS256")
        for auth in (None, "Bearer a.b.c", f"Bearer {forged}"):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/x", headers={"Authorization": auth} if auth else {})
            assert c.getresponse().status == 401
            c.close()
        assert mc.raw == []  # not one byte
        good = pyjwt.encode({"sub": "ann"}, SECRET, algorithm="HS256")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/x", headers={"Authorization": f"Bearer {good}"})
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"<p>cached page</p>")
        c.close()
    finally:
        mc.stop()
