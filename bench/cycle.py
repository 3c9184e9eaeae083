"""One proxied request through a real worker, in process: the CPU the gateway's own code
spends per request, without the kernel, the network or wrk.

A ``Worker`` is built from a configuration like the load benchmark's (``/hs/`` checks an
HS256 token and forwards ``$jwt_claim_sub``); a client connection and a pooled upstream
connection get transports that only keep what is written. Each cycle feeds the request
bytes to the client side, checks that a request went upstream, feeds the upstream's
response and checks that a response went to the client — the same callbacks uvloop makes.

    python bench/cycle.py [--engine httptools|h11] [--cycles N] [--refused]
        prints microseconds per request (best of 5); --refused: a bad signature, the
        401 path
    valgrind --tool=callgrind python bench/cycle.py --cycles N
        run at two N and subtract: instructions per request, steady on a noisy VM (used
        for the figures in bench/RESULTS.md)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sun, 29 Nov 2026 02:21:27 GMT\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: 19\r\n"
            b"Connection: keep-alive\r\n\r\nhello from backend\n")


class Sink:
    """A transport that keeps what is written."""

    def __init__(self) -> None:
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True


async def main(args: argparse.Namespace) -> None:
    from fastgate.config import load_config
    from fastgate.ops.worker import Worker
    from fastgate.proxy.upstream import UpstreamConnection
    from fastgate.token_tool import encode, signer

    conf = Path(tempfile.mkdtemp(prefix="fastgate-cycle-")) / "cycle.conf"
    conf.write_text(f"""http {{ access_log off;
  upstream be {{ server 127.0.0.1:9; keepalive 64; keepalive_requests 1000000000; }}
  server {{ listen 127.0.0.1:8080; keepalive_requests 1000000;
    auth_jwt_key "{SECRET}";
    location /hs/ {{ auth_jwt on; auth_jwt_alg HS256;
                    proxy_set_header X-User-Id $jwt_claim_sub; proxy_pass http://be; }} }} }}
""")
    # (one token whatever the hour: a fixed expiry, far ahead, so that every run
    # measures the same bytes)
    token = encode({"alg": "HS256", "typ": "JWT"}, {"sub": "user123", "exp": 4102444800},
                   signer("HS256", SECRET, "utf8"))
    if args.refused:
        # a character inside the signature changed: still well-formed base64url, so the
        # HMAC runs and the comparison refuses (the 401 path). (The last character once
        # changed here decoded, depending on the hour's token, to a non-canonical
        # encoding refused before any HMAC: a cheaper path, measured as if it were this.)
        i = len(token) - 10
        token = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
    request = (f"GET /hs/x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode()

    worker = Worker(load_config(str(conf)), args.engine)
    client = worker.connection(worker.listens()[0])
    client_out = Sink()
    client.connection_made(client_out)  # type: ignore[arg-type]
    peer = worker.groups["be"].primary[0]
    upstream = UpstreamConnection(peer)
    upstream_out = Sink()
    upstream.connection_made(upstream_out)  # type: ignore[arg-type]
    peer.idle.append(upstream)

    def refused() -> None:
        client.data_received(request)
        if upstream_out.out:
            raise SystemExit("bench/cycle.py: a refused request went upstream")
        if not client_out.out or not client_out.out[0].startswith(b"HTTP/1.1 401"):
            raise SystemExit(f"bench/cycle.py: unexpected response {client_out.out!r}")
        client_out.out.clear()

    def cycle() -> None:
        client.data_received(request)
        if not upstream_out.out:
            raise SystemExit("bench/cycle.py: no request went upstream")
        upstream_out.out.clear()
        upstream.data_received(RESPONSE)
        if not client_out.out or not client_out.out[0].startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"bench/cycle.py: unexpected response {client_out.out!r}")
        client_out.out.clear()

    if args.refused:
        # answered inside the request's dispatch, the connection is ready for the next
        # request once the engine's feed returns (ClientConnection.request_done); a loop
        # turn each all the same, as under load, where each request is a read of its own
        async def turns(n: int) -> float:
            t0 = time.perf_counter()
            for _ in range(n):
                refused()
                await asyncio.sleep(0)
            return time.perf_counter() - t0

        await turns(1)
        if args.cycles:
            await turns(args.cycles)
        else:
            n = 20000
            best = min([await turns(n) for _ in range(5)]) / n * 1e6
            print(f"{args.engine}: {best:.2f} us per refused (401) request (in process, "
                  "a loop turn each)")
    else:
        cycle()
        if args.cycles:
            for _ in range(args.cycles):
                cycle()
        else:
            n = 20000
            best = min(timeit.repeat(cycle, number=n, repeat=5)) / n * 1e6
            print(f"{args.engine}: {best:.2f} us per proxied request (in process)")
    worker.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="httptools", choices=["httptools", "h11"])
    ap.add_argument("--cycles", type=int, default=0,
                    help="run this many cycles and print nothing (for callgrind)")
    ap.add_argument("--refused", action="store_true",
                    help="a token with a bad signature: the 401 path (nothing upstream)")
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    run(main(ap.parse_args()))
