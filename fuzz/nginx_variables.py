"""Differential test of the variable modules against nginx: random ``map`` blocks (exact
keys, ``hostnames`` masks, regexes with numbered and named captures, ``default``,
values made of other variables, maps of maps), ``geo`` blocks (CIDRs, single
addresses, ``ranges``, ``default``, a source variable) and ``split_clients`` over
random request sources (a header, an argument, the Host, the URI); and a location that
shows the request's own variables (the Host's forms, arguments, cookies, headers sent
twice); random requests go to nginx 1.22 and to fastgate, and the requests are printed
where the variables a ``return`` shows differ.

    python fuzz/nginx_variables.py [--engine httptools|h11] [--seed N] [--configs N]
                                   [--requests N]

The run itself: fuzz/nginx_pair.py."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nginx_pair import Tool, parts  # noqa: E402

SOURCES = ["$http_x_a", "$arg_q", "$host", "$uri", "$http_x_a:$arg_q", "$http_host"]
WORDS = ["", "a", "ab", "abc", "A", "Ab", "x", "xyz", "a.b", "www.example.com",
         "a.example.com", "example.com", "EXAMPLE.COM", "b.example.org", "www.example.net",
         "a-b", "a%20b", "%41", "/p/a", "/p/abc", "/q", "x:y", "a:b"]
EXACT = ["a", "ab", "A", "x", "xyz", "a.b", "/p/a", "/q", "a:b", "''", "www.example.com",
         "example.com"]
MASKS = ["*.example.com", ".example.com", "www.example.*", ".example.org", "*.net",
         "example.com", "www.example.net"]
REGEXES = ["~^a", "~*^a", "~^a(.*)$", "~*^(x)(y?)", "~^/p/(?<tail>.*)$", "~b$", "~^$",
           "~(?<w>[a-z]+)\\.example", "~*example\\.(com|org)$", "~:"]
VALUES = ["v1", "v2", "''", "$1", "$2", "[$1|$2]", "$uri", "$arg_q", "x-$host",
          "$tail", "$w", "0", '"a b"']
ADDRESSES = ["127.0.0.1", "127.0.0.2", "10.0.0.5", "10.1.2.3", "192.168.1.1", "::1",
             "1.2.3.4", "x", "", "10.0.0.5, 1.2.3.4", "255.255.255.255"]
NETS = ["127.0.0.0/8", "10.0.0.0/8", "10.0.0.0/16", "10.0.0.5", "192.168.0.0/16",
        "0.0.0.0/0", "10.1.0.0/16", "1.2.3.4/32"]
HOSTS = ["h.example", "www.example.com", "a.example.com", "EXAMPLE.COM", "b.example.org",
         "www.example.net", "x"]
RANGES = ["10.0.0.1-10.0.0.9", "10.0.0.0-10.255.255.255", "127.0.0.1-127.0.0.1",
          "192.168.1.0-192.168.1.255", "1.0.0.0-1.255.255.255"]


def _map(rng: random.Random, n: int, earlier: list[str]) -> str:
    hostnames = rng.random() < 0.3
    lines = []
    if hostnames:
        lines.append("hostnames;")
    if rng.random() < 0.7:
        lines.append(f"default {rng.choice(VALUES[:3])};")
    values = VALUES + [f"${v}" for v in earlier]
    used = set()
    for _ in range(rng.randint(1, 6)):
        kind = rng.random()
        key = (rng.choice(MASKS) if hostnames and kind < 0.4 else
               rng.choice(REGEXES) if kind < 0.7 else rng.choice(EXACT))
        if key.lower() in used:
            continue
        used.add(key.lower())
        lines.append(f"{key} {rng.choice(values)};")
    source = rng.choice(SOURCES + [f"${v}" for v in earlier])
    return f"map {source} $m{n} {{ {' '.join(lines)} }}"


def _geo(rng: random.Random, n: int) -> str:
    ranges = rng.random() < 0.3
    lines = ["ranges;"] if ranges else []
    if rng.random() < 0.7:
        lines.append(f"default {rng.choice(['d', 'none', '0'])};")
    for i, net in enumerate(rng.sample(RANGES if ranges else NETS, rng.randint(1, 4))):
        lines.append(f"{net} g{i};")
    source = rng.choice(["", "", "$http_x_ip ", "$arg_ip "])
    return f"geo {source}$g{n} {{ {' '.join(lines)} }}"


def _split(rng: random.Random, n: int) -> str:
    parts, left = [], 100.0
    for i in range(rng.randint(1, 3)):
        share = rng.choice([0.5, 10, 25, 33.3, 50])
        if share > left:
            break
        left -= share
        parts.append(f"{share:g}% s{i};")
    if rng.random() < 0.6:
        parts.append("* rest;")
    return f'split_clients "{rng.choice(SOURCES)}" $s{n} {{ {" ".join(parts)} }}'


def config(rng: random.Random) -> str:
    blocks, names = [], []
    for n in range(rng.randint(1, 4)):
        blocks.append(_map(rng, n, names))
        names.append(f"m{n}")
    if rng.random() < 0.6:
        blocks.append(_geo(rng, 0))
        names.append("g0")
    if rng.random() < 0.4:
        blocks.append(_split(rng, 0))
        names.append("s0")
    shown = " ".join(f"{v}=[${v}]" for v in names)
    return ("\n".join(blocks) + "\nserver { listen 127.0.0.1:PORT; server_name h.example"
            " *.example.com example.com;\n"
            f'  location / {{ return 200 "{shown} one=[$1]\\n"; }}\n'
            f'  location /v/ {{ return 200 "{BUILTINS}\\n"; }}\n}}')


# the request's own variables, shown by /v/ (nginx's ngx_http_variables.c)
BUILTINS = "|".join(f"${v}" for v in (
    "host", "http_host", "arg_q", "arg_Q", "arg_a_b", "args", "is_args", "query_string",
    "request_uri", "uri", "document_uri", "http_x_a", "http_cookie", "cookie_a",
    "cookie_A", "content_length", "content_type", "request_method", "server_name",
    "scheme", "remote_user", "http_x_forwarded_for", "sent_http_x",
    "request"))
QUERIES = ["", "?", "?q=1", "?Q=2&q=3", "?q=a%20b&q=c", "?a_b=1&a-b=2", "?q", "?q=&Q=",
           "?%71=4", "?q=1;q=2", "?x=1&&q=5", "?q=%zz", "?q=+"]
# (not an unknown header twice, nor a cookie after a ",": read as nginx 1.23 reads them,
# not 1.22, as the README says)
HEADER_SETS = [
    "Cookie: a=1\r\nCookie: A=2; b=3", "Cookie: a=1;a=2",
    "Cookie:  a = 9 ", "Content-Length: 0", "Content-Type: text/plain; x=y",
    "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2",
    "Authorization: Basic YTpi", "X-A:", "X-A:  v  "]  # (one X-A at most: see above)


def _builtins_request(rng: random.Random) -> bytes:
    path = rng.choice(["/v/", "/v/a/../b", "/v//x", "/v/%41%2F", "/v/./c", "/v/a%20b",
                       "/v/a+b", "/v/%7e"])
    host = rng.choice(["h.example", "H.Example:8080", "h.example.", "[::1]:81", "1.2.3.4",
                       "WWW.EXAMPLE.COM", "a.example.com:0"])
    headers = rng.sample(HEADER_SETS, rng.randint(0, 3))
    if sum(h.startswith("X-A") for h in headers) > 1:
        headers.remove("X-A:")
    extra = "".join(h + "\r\n" for h in headers)
    method = rng.choice(["GET", "GET", "HEAD", "DELETE"])
    return (f"{method} {path}{rng.choice(QUERIES)} HTTP/1.1\r\nHost: {host}\r\n{extra}"
            "Connection: close\r\n\r\n").encode()


def request(rng: random.Random) -> bytes:
    if rng.random() < 0.3:
        return _builtins_request(rng)
    path = rng.choice(["/", "/p/a", "/p/abc", "/q", "/p/a%20b", "/x.y"])
    args = rng.choice(["", "?q=" + rng.choice(WORDS), "?ip=" + rng.choice(ADDRESSES[:9]),
                       "?q=" + rng.choice(WORDS) + "&ip=" + rng.choice(ADDRESSES[:9])])
    headers = [f"Host: {rng.choice(HOSTS)}"]
    if rng.random() < 0.7:
        headers.append(f"X-A: {rng.choice(WORDS)}")
    if rng.random() < 0.5:
        headers.append(f"X-Ip: {rng.choice(ADDRESSES)}")
    return (f"GET {path}{args} HTTP/1.1\r\n" + "\r\n".join(headers)
            + "\r\nConnection: close\r\n\r\n").encode()


def answer(side: Any, data: bytes) -> tuple[str, bytes]:
    status, _, body = parts(data)
    return status, body


def reached(side: Any, new: list[Any]) -> object:
    return len(new)


TOOL = Tool(__doc__ or "", config, request, answer, reached,
            defaults={"configs": 30, "requests": 40})

if __name__ == "__main__":
    raise SystemExit(TOOL.main())
