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

The run itself: fuzz/nginx_pair.py."""

from __future__ import annotations

import base64
import random
import sys
from pathlib import Path
from typing import Any

from passlib import hash as hashes

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nginx_pair import Tool, parts  # noqa: E402

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


def answer(side: Any, data: bytes) -> tuple[str, list[str], bytes]:
    """Status, every challenge, a 200's body."""
    status, lines, body = parts(data)
    challenges = [x.split(b":", 1)[1].strip().decode("latin-1") for x in lines
                  if x.lower().startswith(b"www-authenticate:")]
    return status, challenges, body if status == "200" else b""


def reached(side: Any, new: list[Any]) -> object:
    """Every target the backend received for it (the authoriser's subrequests too)."""
    return [r.target for r in new]


def prepare(home: Path) -> None:
    (home / "htpasswd").write_text(f"ann:{hashes.apr_md5_crypt.hash('pw')}\n"
                                   "bob:{SHA}" + hashes.ldap_sha1.hash("pw2")[5:] + "\n")


TOOL = Tool(__doc__ or "", config, request, answer, reached, prepare=prepare)

if __name__ == "__main__":
    raise SystemExit(TOOL.main())
