"""Differential test of the proxy module against nginx: random locations whose
``proxy_pass`` (with and without a URI part, variables), ``proxy_set_header``,
``proxy_hide_header``, ``proxy_pass_header``, ``proxy_redirect``, ``proxy_cookie_*``,
``proxy_http_version`` and ``proxy_method`` settings are drawn at random, at server
and location level; random requests go to nginx 1.22 and to fastgate, each in front of
a backend that answers with headers those directives act on (Location, Refresh,
Set-Cookie, Server, X-Powered-By, X-Accel-*), and the requests are printed where what
the backend received (request line, headers) or what the client got (status, headers
but Date and Server, body) differ.

    python fuzz/nginx_proxy.py [--engine httptools|h11] [--seed N] [--configs N]
                               [--requests N]

Ports come from a range of the seed's: runs with different seeds may go at once."""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "e2e"), str(ROOT / "tests"), str(ROOT)]

import test_nginx_parity_e2e as parity  # noqa: E402
from raw_backend import Received  # noqa: E402

LOCATIONS = ["/", "/a/", "/b", "= /c/x", "~ ^/d/(.*)$", "^~ /e/"]
PASSES = ["http://BACKEND", "http://BACKEND/", "http://BACKEND/up/", "http://BACKEND/up",
          "http://BACKEND$request_uri", "http://BACKEND/v/$uri", "http://BACKEND/q?$args"]
SETTINGS = [
    'proxy_set_header X-A "a";', 'proxy_set_header X-A "";', "proxy_set_header Host $host;",
    "proxy_set_header Host $proxy_host;", 'proxy_set_header X-B "$uri$is_args$args";',
    "proxy_set_header Connection \"\";", "proxy_set_header X-Real-IP $remote_addr;",
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "proxy_hide_header X-Powered-By;", "proxy_hide_header Set-Cookie;",
    "proxy_pass_header Server;", "proxy_pass_header X-Accel-Expires;",
    "proxy_redirect off;", "proxy_redirect default;",
    "proxy_redirect http://$host/ /;", "proxy_redirect ~^http://[^/]+/loc/(.*)$ /moved/$1;",
    "proxy_redirect / /prefix/;", "proxy_cookie_domain backend.example $host;",
    "proxy_cookie_path /p /q;", "proxy_cookie_path ~^/p(.*)$ /r$1;",
    "proxy_http_version 1.1;", "proxy_method POST;", "proxy_pass_request_headers off;",
    "proxy_set_body \"b=$arg_b\";", "proxy_ignore_headers X-Accel-Expires;",
    'add_header X-Added "x";', "proxy_buffering off;"]
SEGMENTS = ["a", "b", "c", "d", "e", "x", "y", "%20", "%2F", "..", "a+b", "up", "3xx", ""]
QUERIES = ["", "", "?b=1", "?a=%20&b=2", "?"]
HEADERS = ["", "", "X-A: client\r\n", "X-Forwarded-For: 10.0.0.1\r\n",
           "Cookie: s=1\r\n", "Connection: keep-alive\r\n", "Host: other.example\r\n"]


def backend_answer(req: Received) -> bytes:
    """Headers the proxy directives act on, the target echoed; a redirect under
    "/3xx" (its Location the Host the request named)."""
    host = (req.header(b"host") or [b"none"])[0]
    status = b"302 Found" if b"/3xx" in req.target else b"200 OK"
    body = b"target=" + req.target
    return (b"HTTP/1.1 " + status + b"\r\nServer: backend\r\nX-Powered-By: php\r\n"
            b"Location: http://" + host + b"/loc/x\r\nRefresh: 5; url=http://" + host
            + b"/loc/r\r\nSet-Cookie: a=1; Domain=backend.example; Path=/p/x\r\n"
            b"X-Accel-Expires: 10\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def config(rng: random.Random) -> str:
    blocks = []
    for where in rng.sample(LOCATIONS, rng.randint(2, len(LOCATIONS))):
        passes = [p for p in PASSES if not (where.startswith("~") and p.count("/") > 2
                                            and "$" not in p)]
        settings = " ".join(rng.sample(SETTINGS, rng.randint(0, 4)))
        blocks.append(f"  location {where} {{ {settings} proxy_pass {rng.choice(passes)}; }}")
    if not any(b.startswith("  location / ") for b in blocks):
        blocks.append("  location / { proxy_pass http://BACKEND; }")
    server = " ".join(rng.sample(SETTINGS, rng.randint(0, 3)))
    return ("server { listen 127.0.0.1:PORT; server_name h.example;\n  " + server + "\n"
            + "\n".join(blocks) + "\n}")


def request(rng: random.Random) -> bytes:
    path = "/" + "/".join(rng.choice(SEGMENTS) for _ in range(rng.randint(1, 3)))
    extra = rng.choice(HEADERS)
    host = "" if extra.startswith("Host") else "Host: h.example\r\n"
    method = rng.choice(["GET"] * 4 + ["POST", "HEAD"])
    body = "b=1" if method == "POST" else ""
    return (f"{method} {path}{rng.choice(QUERIES)} HTTP/1.1\r\n{host}{extra}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}").encode()


def answer(port: int, raw: bytes, own: int, backend: int) -> tuple[str, list[bytes], bytes]:
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(raw)
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ")[1].decode() if len(lines[0].split(b" ")) > 1 else "?"
    # (its own port in what it wrote: the same placeholder on both sides)
    own_page = status != "302" and status >= "300"  # (the gateway's page: its words)
    dropped = (b"date:", b"server:") + ((b"content-length:",) if own_page else ())
    kept = sorted(re.sub(rb":%d\b" % backend, b":B", re.sub(rb":%d\b" % own, b":P", x))
                  for x in lines[1:] if not x.lower().startswith(dropped))
    return status, kept, body if status < "300" or status == "302" else b""


def received(side: parity.Side, before: int) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    got = side.backend.requests()
    if len(got) <= before:
        return None
    r = got[-1]
    # (nginx's Connection: close — fastgate keeps upstream connections — and a
    # Content-Length: 0 fastgate leaves out of a request without a body: README)
    # (the order is not compared: fastgate's Content-Length comes last)
    headers = sorted((n.lower(), re.sub(rb":%d\b" % side.backend.port, b":B", v))
                     for n, v in r.headers
                     if (n.lower(), v) not in ((b"connection", b"close"),
                                               (b"content-length", b"0")))
    return r.method + b" " + r.target, headers


def _cut(went: tuple[bytes, object] | None, sent: tuple[bytes, object] | None) -> bool:
    """The known difference (README, proxy_pass): a URI part made with variables that
    holds a space goes escaped here, where nginx writes the space into the request line
    (its backend then reads the target as cut there)."""
    if went is None or sent is None:
        return False
    return sent[0].startswith(went[0]) and sent[0][len(went[0]):].startswith(b"%20")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="httptools", choices=["httptools", "h11"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--configs", type=int, default=20)
    ap.add_argument("--requests", type=int, default=30)
    a = ap.parse_args()
    os.environ["PYTEST_XDIST_WORKER"] = f"gw{a.seed % 10}"
    parity._answer = backend_answer  # (what every Side's backend answers)
    rng = random.Random(a.seed)
    differing = loaded = 0
    for n in range(a.configs):
        block = config(rng)
        tmp = Path(tempfile.mkdtemp(prefix="nginx-proxy-"))
        sides = []
        for kind in ("nginx", "fastgate"):
            try:
                sides.append(parity.Side(kind, tmp, block, a.engine))
            except RuntimeError:
                pass
        if len(sides) < 2:
            for side in sides:
                side.stop()
            if sides:
                differing += 1
                print(f"config {n}: only {sides[0].kind} loads it\n{block}\n")
            continue
        loaded += 1
        found = []
        try:
            for _ in range(a.requests):
                raw = request(rng)
                before = [len(side.backend.requests()) for side in sides]
                answers = [answer(side.port, raw, side.port, side.backend.port)
                           for side in sides]
                time.sleep(0.02)
                got = [received(side, b) for side, b in zip(sides, before, strict=True)]
                if (answers[0] != answers[1] or got[0] != got[1]) and not _cut(*got):
                    found.append((raw.split(b"\r\n\r\n")[0], answers, got))
        finally:
            for side in sides:
                side.stop()
        if found:
            differing += 1
            print(f"config {n}:\n{block}")
            for line, (theirs, mine), (went, sent) in found[:5]:
                print(f"  {line!r}")
                if theirs != mine:
                    print(f"    nginx    {theirs}\n    fastgate {mine}")
                if went != sent:
                    print(f"    nginx sent    {went}\n    fastgate sent {sent}")
            print()
    print(f"{differing} of {a.configs} configurations answered differently "
          f"({loaded} loaded by both)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
