"""Differential test of the body and header filters against nginx: random locations
serving files of a small alphabet (so that patterns meet often, across each other)
through ``sub_filter`` (several patterns, overlapping, any case, ``sub_filter_once``,
a replacement with variables), ``add_header`` (``always`` or not), ``expires`` and
``charset``, reached by random requests (GET, HEAD, a Range, a conditional, a file
that is missing); the requests are printed where the status, the headers those
filters make or the body differ between nginx 1.22 and fastgate.

    python fuzz/nginx_filters.py [--engine httptools|h11] [--seed N] [--configs N]
                                 [--requests N]

The run itself: fuzz/nginx_pair.py."""

from __future__ import annotations

import random
import sys
import zlib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from helpers import dechunk  # noqa: E402
from nginx_pair import Tool, parts  # noqa: E402

ALPHABET = "abAB<> /\n"
FILES = [f"f{i}" for i in range(12)]
PATTERNS = ["a", "ab", "aB", "AB", "ba", "<a", "a>", "aa", "abab", "/", "b\n", "bA", "Ab",
            "abA", "<ab>", "aab"]
REPLACEMENTS = ["X", '""', "[$uri]", "yy", "$arg_r", "a", "ab", '"two words"', "<b>"]
HEADERS = ['add_header X-F "1";', 'add_header X-F "$status" always;',
           'add_header X-G "$sent_http_content_type";', "expires 1h;", "expires -1;",
           "expires epoch;", "charset utf-8;", "charset off;", "sub_filter_last_modified on;",
           "sub_filter_types *;", "sub_filter_types text/plain;", "etag off;",
           "gzip on; gzip_min_length 1;", "gzip on; gzip_types *;", "gzip_vary on;",
           "gzip on; gzip_min_length 1; gzip_http_version 1.0;"]


def prepare(home: Path) -> None:
    rng = random.Random(7)
    for name in FILES:
        size = rng.choice([0, 1, 3, 10, 40, 200, 3000])
        (home / name).write_text("".join(rng.choice(ALPHABET) for _ in range(size)))
    (home / "t.txt").write_text("ab AB aB\n")


def _location(rng: random.Random, name: str) -> str:
    parts = []
    for pattern in rng.sample(PATTERNS, rng.randint(0, 3)):
        quoted = pattern.replace("\n", "\\n")
        parts.append(f'sub_filter "{quoted}" {rng.choice(REPLACEMENTS)};')
    if rng.random() < 0.4:
        parts.append(f"sub_filter_once {rng.choice(['on', 'off'])};")
    picked: dict[str, str] = {}
    for directive in rng.sample(HEADERS, rng.randint(0, 3)):
        word = directive.split()[0]  # (one of each: nginx refuses a second sub_filter_types)
        if word == "add_header" or word not in picked:
            picked.setdefault(word if word != "add_header" else directive, directive)
    parts += picked.values()
    return f"  location {name} {{ {' '.join(parts)} }}"


def config(rng: random.Random) -> str:
    top = " ".join(rng.sample(HEADERS[:4], rng.randint(0, 1)))
    locations = [_location(rng, name) for name in ("/", "/f1", "= /f2", "~ ^/f[3-5]$")]
    return ("default_type text/html;\nserver { listen 127.0.0.1:PORT; root HOME; " + top
            + "\n" + "\n".join(locations) + "\n}")


def request(rng: random.Random) -> bytes:
    method = rng.choice(["GET", "GET", "GET", "HEAD"])
    path = "/" + rng.choice([*FILES, "t.txt", "missing"])
    headers = []
    if rng.random() < 0.2:
        headers.append(f"Range: bytes={rng.choice(['0-3', '2-', '-5', '1-1,3-4', '999-'])}")
    if rng.random() < 0.1:
        headers.append("If-Modified-Since: Thu, 01 Jan 2037 00:00:00 GMT")
    if rng.random() < 0.5:
        headers.append(f"Accept-Encoding: {rng.choice(['gzip', 'gzip, br', 'br', 'x-gzip'])}")
    query = rng.choice(["", "?r=R", "?r="])
    extra = "".join(h + "\r\n" for h in headers)
    return (f"{method} {path}{query} HTTP/1.1\r\nHost: h\r\n{extra}Connection: close\r\n\r\n"
            ).encode()


# what these filters make of a head (Last-Modified and ETag as there or not: their
# values are the file's, the same to both)
SHOWN = (b"content-type", b"content-length", b"content-range", b"x-f", b"x-g",
         b"cache-control", b"accept-ranges", b"transfer-encoding", b"content-encoding",
         b"vary")


def answer(side: Any, data: bytes) -> tuple[str, list[bytes], list[bytes], bytes]:
    """Status, the fields the filters make (a gzipped body's length aside: zlib's
    bytes need not be nginx's), which validators there are, the body (inflated)."""
    status, lines, body = parts(data)
    fields = sorted(line.lower() for line in lines if line.split(b":")[0].lower() in SHOWN)
    if b"transfer-encoding: chunked" in fields:
        body = dechunk(body)
    if b"content-encoding: gzip" in fields:
        fields = [f for f in fields if not f.startswith(b"content-length")]
        try:
            body = zlib.decompress(body, 31)
        except zlib.error:
            body = b"(not gzip)"
    present = sorted(line.split(b":")[0].lower() for line in lines
                     if line.split(b":")[0].lower() in (b"last-modified", b"etag",
                                                        b"expires"))
    if status in ("404", "416", "412") or status.startswith("5"):
        body = b""  # (the page names its server)
        fields = [f for f in fields if not f.startswith(b"content-length")]
    return status, fields, present, body


def reached(side: Any, new: list[Any]) -> object:
    return len(new)


def known(theirs: Any, ours: Any) -> bool:
    """README: ``$status`` and ``$sent_http_content_type`` in a 206's add_header read
    the 206 (nginx's headers filter runs before its range filter: the 200)."""
    if ours[0][0] != "206":
        return False

    def plain(side: Any) -> Any:
        (status, fields, present, body), seen = side
        kept = [f for f in fields if not f.startswith((b"x-f:", b"x-g:"))]
        return (status, kept, present, body), seen

    return bool(plain(theirs) == plain(ours))


TOOL = Tool(__doc__ or "", config, request, answer, reached, known, prepare=prepare,
            defaults={"configs": 20, "requests": 40})

if __name__ == "__main__":
    raise SystemExit(TOOL.main())
