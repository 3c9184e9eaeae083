"""Differential request test against nginx: random raw requests (methods, targets with
dot segments and escapes, versions, Host variants, framing headers, odd header lines)
sent to nginx 1.22 and to fastgate, each in front of a backend that records what it
receives, with the same configuration; prints the requests on which the status, or
what reached the backend, differs, grouped.

    python fuzz/nginx_requests.py [--engine httptools|h11] [--seed N] [--count N]

Differences known and kept (README): HTTP/0.9 request lines, a minor version of two
digits (nginx takes up to HTTP/1.999 as 1.1; HTTP/1.2 to 1.9 are read as 1.1 here too),
more than one space between the request line's parts, control bytes in a header value,
bare LF — all refused here; nginx's ``100 Continue`` to a request without a body."""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nginx_pair import parity, send  # noqa: E402

CONF = """server { listen 127.0.0.1:PORT;
  location / { proxy_pass http://BACKEND; }
  location /r/ { return 200 "r [$uri] [$args] [$request_uri] [$host]"; }
  location = /exact { return 204; }
}"""
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "get", "G3T",
           "M-SEARCH", "TRACE", "CONNECT"]
SEGMENTS = ["a", "b", "..", ".", "%2e", "%2E%2E", "%2F", "", "%00", "%zz", "%41", "r",
            "exact", "a;b", "~", "%20", "+", "\xe9", "%C3%A9", "x.y"]
VERSIONS = ["HTTP/1.1"] * 8 + ["HTTP/1.0", "HTTP/2.0", "HTTP/1.2", "http/1.1",
                               "HTTP/01.1", "HTTP/1.10", "HTTP/9.9", ""]
HOSTS = ["Host: h.example"] * 14 + ["Host: h.example:8080", "Host: a\r\nHost: b", "Host:",
                                    "Host: a b", "Host: [::1]:80", "Host: a/b", "Host: .a.",
                                    ""]
FRAMINGS = [("", b"")] * 12 + [
    ("Content-Length: 3", b"abc"), ("Content-Length: 3\r\nContent-Length: 3", b"abc"),
    ("Content-Length: 3, 3", b"abc"), ("Content-Length: +3", b"abc"),
    ("Content-Length: -1", b""), ("Content-Length: 03", b"abc"),
    ("Transfer-Encoding: chunked", b"3\r\nabc\r\n0\r\n\r\n"),
    ("Transfer-Encoding: Chunked", b"3\r\nabc\r\n0\r\n\r\n"),
    ("Transfer-Encoding: gzip", b""),
    ("Transfer-Encoding: chunked\r\nContent-Length: 3", b"3\r\nabc\r\n0\r\n\r\n"),
    ("Transfer-Encoding: chunked, chunked", b"3\r\nabc\r\n0\r\n\r\n"),
    ("Transfer-Encoding: chunked", b"3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"),
    ("Transfer-Encoding: chunked", b"3 \r\nabc\r\n0\r\n\r\n"),
    ("Transfer-Encoding: chunked", b"0x3\r\nabc\r\n0\r\n\r\n"),
    ("Transfer-Encoding: chunked", b"-3\r\nabc\r\n0\r\n\r\n"),
    ("Transfer-Encoding: chunked", b"3\r\nabcd\r\n0\r\n\r\n")]
AUTHORITIES = ["http://h.example/", "https://h.example/", "HTTP://H.example/",
               "http://h.example:80/", "http://u@h.example/", "http://h.example:x/",
               "ftp://h.example/", "http://[::1]/", "http://h.example?", "http://h.example"]
EXTRAS = [""] * 10 + ["X-A: 1\r\n X-Fold", "Bad Name: 1", "X-Long: " + "v" * 9000,
                      "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
                      "Content-Length: 0", "Upgrade: websocket\r\nConnection: upgrade",
                      "X-Nul: a\x00b", "Cookie: a=1\r\nCookie: b=2",
                      "X_Under: 1", "X-Sp : 1", "X-Empty:", ":nameless", "X-Ctl: a\x01b",
                      "X-Hi: \xe9", "Expect: 100-continue", "Connection: keep-alive, foo",
                      "X-Tab:\tv\t", "X\x7fDel: 1"]


def _target(rng: random.Random) -> str:
    k = rng.random()
    if k < 0.05:
        return "*"
    if k < 0.1:
        return rng.choice(AUTHORITIES) + rng.choice(SEGMENTS)
    path = "/" + "/".join(rng.choice(SEGMENTS) for _ in range(rng.randint(0, 4)))
    if rng.random() < 0.4:
        path += "?" + rng.choice(["a=b", "a=b&c", "x=%2F", "", "a=1#f", "q=%zz"])
    return path


def request(rng: random.Random) -> bytes:
    framing, body = rng.choice(FRAMINGS)
    lines = [h for h in (rng.choice(HOSTS), framing, rng.choice(EXTRAS)) if h]
    rng.shuffle(lines)
    line = f"{rng.choice(METHODS)} {_target(rng)} {rng.choice(VERSIONS)}".rstrip(" ")
    head = line + "\r\n" + "".join(h + "\r\n" for h in lines) + "Connection: close\r\n\r\n"
    return head.encode("latin-1") + body


def status(port: int, raw: bytes) -> str:
    data = send(port, raw)
    first = data.split(b"\r\n", 1)[0].split(b" ")
    return first[1].decode() if first[0].startswith(b"HTTP/") and len(first) > 1 else \
        f"no status line: {data[:16]!r}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="httptools", choices=["httptools", "h11"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=400)
    a = ap.parse_args()
    # (ports from a range of the seed's, as nginx_pair's tools take theirs: runs whose
    # seeds end in different digits may go at once)
    os.environ["PYTEST_XDIST_WORKER"] = f"gw{a.seed % 10}"
    rng = random.Random(a.seed)
    tmp = Path(tempfile.mkdtemp(prefix="nginx-requests-"))
    sides = [parity.Side(kind, tmp, CONF, a.engine) for kind in ("nginx", "fastgate")]
    groups: dict[tuple[object, ...], list[tuple[bytes, object, object]]] = {}
    try:
        for _ in range(a.count):
            raw = request(rng)
            before = [len(side.backend.requests()) for side in sides]
            answers = [status(side.port, raw) for side in sides]
            time.sleep(0.01)
            got = [side.backend.requests()[-1].target
                   if len(side.backend.requests()) > n else None
                   for side, n in zip(sides, before, strict=True)]
            if answers[0] != answers[1] or got[0] != got[1]:
                key = (answers[0], answers[1], got[0] is not None, got[1] is not None)
                groups.setdefault(key, []).append((raw, got[0], got[1]))
    finally:
        for side in sides:
            side.stop()
    for (theirs, ours, went, sent), items in sorted(groups.items(), key=lambda g: -len(g[1])):
        print(f"nginx {theirs} (backend {'reached' if went else 'not reached'}), fastgate "
              f"{ours} (backend {'reached' if sent else 'not reached'}): {len(items)}")
        for raw, a_target, b_target in items[:4]:
            print("   ", raw.split(b"Connection: close")[0][:150], a_target, b_target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
