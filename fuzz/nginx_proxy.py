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

The run itself: fuzz/nginx_pair.py."""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nginx_pair  # noqa: E402
from nginx_pair import Tool, parts  # noqa: E402
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


def answer(side: Any, data: bytes) -> tuple[str, list[bytes], bytes]:
    """Status, the header lines (sorted; Date and Server left out, and a page of the
    gateway's own its length; each side's ports as P and B), a body the backend wrote."""
    status, lines, body = parts(data)
    own_page = status != "302" and status >= "300"  # (the gateway's page: its words)
    dropped = (b"date:", b"server:") + ((b"content-length:",) if own_page else ())
    kept = sorted(re.sub(rb":%d\b" % side.backend.port, b":B",
                         re.sub(rb":%d\b" % side.port, b":P", x))
                  for x in lines if not x.lower().startswith(dropped))
    return status, kept, body if status < "300" or status == "302" else b""


def reached(side: Any, new: list[Received]) -> object:
    """The request line and headers the backend received (sorted: fastgate's
    Content-Length comes last), but nginx's Connection: close (fastgate keeps
    upstream connections) and a Content-Length: 0 fastgate leaves out of a request
    without a body (README)."""
    if not new:
        return None
    r = new[-1]
    headers = sorted((n.lower(), re.sub(rb":%d\b" % side.backend.port, b":B", v))
                     for n, v in r.headers
                     if (n.lower(), v) not in ((b"connection", b"close"),
                                               (b"content-length", b"0")))
    return r.method + b" " + r.target, headers


def cut(theirs: Any, ours: Any) -> bool:
    """The known differences (README, proxy_pass): a URI part made with variables that
    holds a space goes escaped here, where nginx writes the space into the request line
    (its backend then reads the target as cut there); the h11 engine will not send two
    Host lines (its 500, sending nothing, where nginx sends both)."""
    went, sent = theirs[1], ours[1]
    if went is not None and sent is None:
        return ours[0][0] == "500" and sum(name == b"host" for name, _ in went[1]) > 1
    if went is None or sent is None:
        return False
    return sent[0].startswith(went[0]) and sent[0][len(went[0]):].startswith(b"%20")


nginx_pair.parity._answer = backend_answer  # (what every Side's backend answers)
TOOL = Tool(__doc__ or "", config, request, answer, reached, known=cut,
            defaults={"configs": 20, "requests": 30})

if __name__ == "__main__":
    raise SystemExit(TOOL.main())
