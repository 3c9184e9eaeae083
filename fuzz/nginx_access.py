"""Differential test of the access phase against nginx: random servers whose levels
(server, locations, nested locations, limit_except) combine ``allow``/``deny``,
``auth_basic`` (an htpasswd of apr1 and SHA entries), ``auth_request`` (an
authoriser answering by the request's Authorization), ``satisfy any|all`` and
``return``/``proxy_pass`` contents; random requests (methods, credentials right and
wrong, paths) go to nginx 1.22 and to fastgate, and the requests are printed where
the status, the challenge or what reached the backend (the authoriser's subrequests
included) differ — a request one of them lets through and the other refuses is the
difference this looks for.

    python fuzz/nginx_access.py [--engine httptools|h11] [--seed N] [--configs N]
                                [--requests N]

Ports come from a range of the seed's: runs with different seeds may go at once."""

from __future__ import annotations

import argparse
import base64
import os
import random
import socket
import sys
import tempfile
import time
from pathlib import Path

from passlib import hash as hashes

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "e2e"), str(ROOT / "tests"), str(ROOT)]

import test_nginx_parity_e2e as parity  # noqa: E402

RULES = ["allow 127.0.0.1;", "deny 127.0.0.1;", "deny all;", "allow all;",
         "allow 10.0.0.0/8;", "deny 10.0.0.0/8;"]
AUTH = ['auth_basic "zone";', "auth_basic off;", 'auth_request /auth;', "auth_request off;",
        "satisfy any;", "satisfy all;"]
CONTENT = ['return 200 "ok $remote_user";', "proxy_pass http://BACKEND;", "",
           'return 302 "/elsewhere";']
NAMES = ["/a/", "/b/", "/c", "= /d", "~ ^/e/"]
USERFILE = "auth_basic_user_file HOME/htpasswd;"


def _level(rng: random.Random, depth: int) -> str:
    parts = rng.sample(RULES, rng.randint(0, 2)) + rng.sample(AUTH, rng.randint(0, 2))
    if any(p.startswith('auth_basic "') for p in parts):
        parts.append(USERFILE)
    if depth == 0 and rng.random() < 0.25:
        inner = " ".join(rng.sample(RULES, rng.randint(1, 2)))
        parts.append(f"limit_except GET {{ {inner} }}")
    return " ".join(parts)


def config(rng: random.Random) -> str:
    blocks = []
    for name in rng.sample(NAMES, rng.randint(2, len(NAMES))):
        nested = ""
        if not name.startswith(("=", "~")) and rng.random() < 0.3:
            inner = name.rstrip("/") + "/n/"
            nested = (f" location {inner} {{ {_level(rng, 1)} "
                      f"{rng.choice(CONTENT)} }}")
        blocks.append(f"  location {name} {{ {_level(rng, 0)} {rng.choice(CONTENT)}"
                      f"{nested} }}")
    return ("server { listen 127.0.0.1:PORT; root HOME;\n  " + _level(rng, 1) + "\n"
            + "\n".join(blocks) + "\n  location = /auth { internal; "
            "proxy_pass_request_body off; proxy_set_header Content-Length \"\"; "
            "proxy_pass http://BACKEND; }\n}")


CREDENTIALS = ["", "", "Basic ann:pw", "Basic ann:bad", "Basic bob:pw2", "Bearer yes",
               "Bearer no", "Basic nobody:x"]
PATHS = ["/a/x", "/a/n/y", "/b/", "/b/n/z", "/c", "/cx", "/d", "/e/1", "/f", "/auth"]


def request(rng: random.Random) -> bytes:
    method = rng.choice(["GET", "GET", "HEAD", "POST", "DELETE"])
    cred = rng.choice(CREDENTIALS)
    header = ""
    if cred.startswith("Basic "):
        header = ("Authorization: Basic "
                  + base64.b64encode(cred[6:].encode()).decode() + "\r\n")
    elif cred:
        header = f"Authorization: {cred}\r\n"
    body = "x=1" if method == "POST" else ""
    return (f"{method} {rng.choice(PATHS)} HTTP/1.1\r\nHost: h.example\r\n{header}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}").encode()


def answer(port: int, raw: bytes) -> tuple[str, str, bytes]:
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
    challenge = next((x.split(b":", 1)[1].strip().decode("latin-1") for x in lines[1:]
                      if x.lower().startswith(b"www-authenticate:")), "")
    return status, challenge, body if status == "200" else b""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="httptools", choices=["httptools", "h11"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--configs", type=int, default=20)
    ap.add_argument("--requests", type=int, default=40)
    a = ap.parse_args()
    os.environ["PYTEST_XDIST_WORKER"] = f"gw{a.seed % 10}"
    rng = random.Random(a.seed)
    differing = loaded = 0
    for n in range(a.configs):
        block = config(rng)
        tmp = Path(tempfile.mkdtemp(prefix="nginx-access-"))
        (tmp / "htpasswd").write_text(f"ann:{hashes.apr_md5_crypt.hash('pw')}\n"
                                      "bob:{SHA}" + hashes.ldap_sha1.hash("pw2")[5:] + "\n")
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
                answers = [answer(side.port, raw) for side in sides]
                time.sleep(0.02)
                got = [[r.target for r in side.backend.requests()[b:]]
                       for side, b in zip(sides, before, strict=True)]
                if answers[0] != answers[1] or got[0] != got[1]:
                    found.append((raw.split(b"\r\n\r\n")[0], answers, got))
        finally:
            for side in sides:
                side.stop()
        if found:
            differing += 1
            print(f"config {n}:\n{block}")
            for line, (theirs, mine), (went, sent) in found[:6]:
                print(f"  {line!r}\n    nginx    {theirs} reached {went}\n"
                      f"    fastgate {mine} reached {sent}")
            print()
    print(f"{differing} of {a.configs} configurations answered differently "
          f"({loaded} loaded by both)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
