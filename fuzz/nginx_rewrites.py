"""Differential test of the rewrite module against nginx: random servers of locations
(prefix, exact, regex with numbered and named captures) whose bodies are random
``set``, ``rewrite`` (every flag, captures, arguments, a trailing "?"), ``if`` (every
kind of condition) and ``return`` directives, then a ``return 200`` that shows the
variables, or a ``proxy_pass``; random URIs are sent to nginx 1.22 and to fastgate
with the same configuration, and the requests whose status, ``Location``, body or
forwarded target differ are printed, grouped by configuration.

    python fuzz/nginx_rewrites.py [--engine httptools|h11] [--seed N] [--configs N]
                                  [--requests N]

Error pages' bodies are not compared (nginx's say "nginx"), only their status (the run
itself: fuzz/nginx_pair.py)."""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nginx_pair import Tool, parts  # noqa: E402

LOCATIONS = ["/", "/a/", "= /a/x", "~ ^/b/(\\w+)/(\\w+)$", "~* \\.(php|PHP)$",
             "~ ^/(?<first>[a-z]+)/(?<rest>.*)$", "^~ /c/", "/d", "~ /e(/.*)?$",
             "= /", "~ ^/f/(.*)"]
REGEXES = ["^/a/(.*)$", "^/(\\w+)/(\\w+)", "\\.php$", "^/b(/.*)?$", "^", "/$",
           "^/(?<n>[a-z]+)(.*)", "(.*)", "^/d(.*)$", "x"]
REPLACEMENTS = ["/a/x", "/a/$1", "/b/$1/$2", "/c$uri", "/d?", "/e/$1?", "/a/x?y=$1",
                "/f/$2?z=1", "https://h.example/$1", "$scheme://$host/g",
                "/a/x?$args", "/c/$request_uri", "/e$1", "/f/$n", "/a/x%20y", "/d/$1?q=$1"]
FLAGS = ["", " last", " break", " redirect", " permanent"]
CONDITIONS = ["$request_method = POST", "$arg_x = 1", "$uri ~ ^/a", "$args",
              "$http_x_flag", "$uri !~* \\.PHP$", "$arg_y != 2", "$uri ~ ^/(\\w+)",
              "-f $request_filename", "!-d $request_filename", "$host ~* ^(h)\\.",
              "$request_uri ~ \\?"]
SETS = ['"$1-$uri"', "$arg_y", '"v$host"', '"$args$is_args"', "$2", '"[$first]"']
SHOW = 'return 200 "U=$uri A=$args I=$is_args R=$request_uri V=$v C=$1/$2 N=NAMED\\n";'
SEGMENTS = ["a", "b", "c", "d", "e", "f", "x", "y", "z.php", "Z.PHP", "", "%20", "%2F",
            "..", "a+b", "%41", "d1", "e2", "index.html", "c.txt", "..%2F", "d..", "u", "secret"]
QUERIES = ["", "", "?x=1", "?y=2", "?x=1&y=3", "?", "?a=%20b", "?q=a+b"]


HEADERS = ['add_header X-A "a$uri";', "add_header X-B b always;", 'add_header X-C "c$1";',
           'add_header X-D "$v" always;', 'proxy_set_header X-Up "u$uri";',
           "proxy_set_header X-Flag \"\";", 'expires 1h;']


def _directive(rng: random.Random, depth: int = 0, server: bool = False) -> str:
    """One directive of a rewrite program (``server``: at server level, where an if
    takes no add_header)."""
    k = rng.random()
    if k < 0.12 and not (server and depth):
        return rng.choice(HEADERS)
    if k < 0.25:
        return f"set $v {rng.choice(SETS)};"
    if k < 0.6:
        return (f'rewrite "{rng.choice(REGEXES)}" "{rng.choice(REPLACEMENTS)}"'
                f"{rng.choice(FLAGS)};")
    if k < 0.85 and depth == 0:
        inner = " ".join(_directive(rng, 1, server) for _ in range(rng.randint(1, 2)))
        return f"if ({rng.choice(CONDITIONS)}) {{ {inner} }}"
    if k < 0.92:
        return rng.choice(["return 302 /a/x;", "return 418;", 'return 200 "r$uri";',
                           "break;", "return 301 $scheme://$host$request_uri;"])
    return f"set $v {rng.choice(SETS)};"


def _content(rng: random.Random, where: str) -> str:
    """What answers in a location: the variables shown, a proxy_pass (with a URI part
    where nginx allows one), try_files, the files under root or an alias, error_page to
    a named location."""
    prefix = not where.startswith(("~", "="))
    k = rng.random()
    if k < 0.45:
        return SHOW
    if k < 0.6:
        return "proxy_pass http://BACKEND;"
    if k < 0.68 and (prefix or where.startswith("=")):
        return "proxy_pass http://BACKEND/u/;"
    if k < 0.78:
        return rng.choice(["try_files $uri $uri/ /a/x =404;", "try_files $uri @named;",
                           "try_files $uri/index.html $uri =404;",
                           "try_files /nothing $uri /b/c.txt;"])
    if k < 0.88 and prefix and where.endswith("/") and where != "/":
        # (an alias missing its location's slash opens ".." paths in nginx, never here:
        # README, root)
        return rng.choice(["alias HOME/a/;", "alias HOME/b;"])
    return rng.choice(["", "error_page 404 = @named;", "index c.txt index.html;"])


def config(rng: random.Random) -> str:
    locations = rng.sample(LOCATIONS, rng.randint(3, len(LOCATIONS)))
    if "/" not in locations:
        locations.append("/")
    blocks = []
    for where in locations:
        body = " ".join(_directive(rng) for _ in range(rng.randint(0, 3)))
        blocks.append(f"  location {where} {{ {body} {_content(rng, where)} }}")
    blocks.append('  location @named { return 200 "named:$uri:$args"; }')
    server_rewrites = " ".join(_directive(rng, 0, True) for _ in range(rng.randint(0, 3)))
    text = ("server { listen 127.0.0.1:PORT; root HOME; set $v \"-\";\n  "
            + server_rewrites + "\n" + "\n".join(blocks) + "\n}")
    # (a named capture's variable exists only where some regex names it)
    named = [f"${n}" for n in ("first", "rest", "n") if f"(?<{n}>" in text]
    for n in ("first", "rest", "n"):
        if f"(?<{n}>" not in text:
            text = re.sub(rf"\${n}\b", "", text)
    return text.replace("NAMED", "/".join(named))


def request(rng: random.Random) -> bytes:
    path = "/" + "/".join(rng.choice(SEGMENTS) for _ in range(rng.randint(0, 3)))
    method = rng.choice(["GET"] * 5 + ["POST", "HEAD"])
    flag = "X-Flag: 1\r\n" if rng.random() < 0.3 else ""
    return (f"{method} {path}{rng.choice(QUERIES)} HTTP/1.1\r\nHost: h.example\r\n{flag}"
            "Content-Length: 0\r\nConnection: close\r\n\r\n").encode()


def answer(side: Any, data: bytes) -> tuple[str, str, bytes, list[bytes]]:
    """Status, Location (the gateway's own port as P), a 200's body, and the headers
    the directives add (Expires by name only, as its date moves)."""
    status, lines, body = parts(data)
    location = next((x.split(b":", 1)[1].strip().decode("latin-1") for x in lines
                     if x.lower().startswith(b"location:")), "")
    shown = [b"expires" if x.lower().startswith(b"expires:") else x for x in lines
             if x.lower().startswith((b"x-", b"expires:", b"cache-control:"))]
    return (status, location.replace(str(side.port), "P"),
            body if status == "200" else b"", shown)


def reached(side: Any, new: list[Any]) -> object:
    """The last request the backend received for it: target and the headers set."""
    if not new:
        return None
    r = new[-1]
    return r.target, r.header(b"x-up"), r.header(b"x-flag")


def prepare(home: Path) -> None:
    for name, text in (("a/x", "file a/x"), ("a/index.html", "index of a"),
                       ("b/c.txt", "file b/c.txt"), ("z.php", "php"),
                       ("secret", "outside")):
        (home / name).parent.mkdir(exist_ok=True)
        (home / name).write_text(text)


TOOL = Tool(__doc__ or "", config, request, answer, reached, prepare=prepare)

if __name__ == "__main__":
    raise SystemExit(TOOL.main())
