"""gzip, gzip_static and gunzip beside nginx 1.22, on the same files and the same upstream:
which answers are compressed for which requests, their heads, and their bytes (zlib
with nginx's parameters gives nginx's). Both engines; the upstream's answers over a
pooled connection (the callback path keeps the requests that cannot have gzip)."""

from __future__ import annotations

import gzip
import os
import socket
import zlib
from pathlib import Path

import pytest
from conftest import wait_port
from e2e_util import NGINX, beside_nginx, compared_answer, stop_process
from raw_backend import RawBackend, Received

TYPES = ("types { text/html html; text/plain txt; application/json json; "
         "application/javascript js; text/css css; image/png png; }")


def _conf(port: int, backend: int, root: Path) -> str:
    return f"""http {{
  {TYPES}
  default_type application/octet-stream; server_tokens off;
  gzip on; gzip_types text/plain application/json application/javascript text/css;
  gzip_min_length 50;
  upstream be {{ server 127.0.0.1:{backend}; keepalive 4; }}
  server {{ listen 127.0.0.1:{port}; root {root};
    location / {{ }}
    location /vary/ {{ gzip_vary on; gzip_static on; }}
    location /always/ {{ gzip_static always; }}
    location /best/ {{ gzip_comp_level 9; gzip_disable msie6 "^curl/";
                      gzip_http_version 1.0; gzip_window 8k; gzip_hash 16k; }}
    location /off/ {{ gzip off; }}
    location /stored/ {{ gzip_static always; gunzip on; gzip_vary on; }}
    location /inflated/ {{ gunzip on; proxy_pass http://be; proxy_http_version 1.1;
                          proxy_set_header Connection ""; }}
    location /filtered/ {{ sub_filter hello HELLO; sub_filter_once off; }}
    location /api/ {{ proxy_pass http://be; proxy_http_version 1.1;
                     proxy_set_header Connection ""; }}
    location /proxied/ {{ gzip_proxied expired no-cache auth; gzip_vary on;
                         proxy_pass http://be; proxy_http_version 1.1;
                         proxy_set_header Connection ""; }}
    location /stream/ {{ proxy_buffering off; proxy_pass http://be;
                        proxy_http_version 1.1; proxy_set_header Connection ""; }}
    location = /ret {{ default_type text/plain; return 200 "{'text to return ' * 8}"; }}
    location = /forbidden {{ return 403; }}
  }}
}}
"""


PAGE = b"<p>a page of html, long enough to be worth compressing</p>\n" * 40


def _answer(req: Received) -> bytes:
    path = req.target.split(b"?")[0]
    name = path.rsplit(b"/", 1)[-1]
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
    body = PAGE
    if name == b"page":
        head += (b'ETag: "x1"\r\nAccept-Ranges: bytes\r\n'
                 b"Last-Modified: Thu, 01 Jan 2015 00:00:00 GMT\r\n")
    elif name == b"chunked":
        parts = [b'{"items": [' + b'"an item", ' * 30, b'"last"]}']
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n")
    elif name == b"encoded":
        head += b"Content-Encoding: br\r\n"
    elif name == b"small":
        body = b"<p>tiny</p>"
    elif name == b"error":
        head = b"HTTP/1.1 500 Oops\r\nContent-Type: text/html\r\n"
    elif name == b"missing":
        head = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n"
    elif name == b"expired":
        head += b"Expires: Thu, 01 Jan 1970 00:00:01 GMT\r\n"
    elif name == b"fresh":
        head += b"Expires: Fri, 01 Jan 2100 00:00:00 GMT\r\n"
    elif name == b"nocache":
        head += b"Cache-Control: private, no-cache\r\n"
    elif name == b"gzipped":
        body = gzip.compress(PAGE, mtime=0) + (gzip.compress(b"<p>more</p>", mtime=0)
                                               if b"two" in path else b"")
        head += b'Content-Encoding: gzip\r\nETag: "g1"\r\n'
    elif name == b"image":
        head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def _site(root: Path) -> None:
    files = {"page.html": PAGE, "small.txt": b"tiny", "data.json": b'{"k": "v"}' * 30,
             "img.png": b"\x89PNG" * 100, "vary/app.js": b"var x = 1;\n" * 60,
             "vary/bare.js": b"var y = 2;\n" * 60, "always/site.css": b"a { b: c }\n" * 60,
             "best/page.html": PAGE, "off/page.html": PAGE,
             "filtered/page.html": b"<p>hello, hello</p>\n" * 30}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    for name in ("vary/app.js", "always/site.css", "stored/only.js"):
        (root / name).parent.mkdir(exist_ok=True)
        (root / f"{name}.gz").write_bytes(gzip.compress(b"precompressed " + name.encode()))
    for path in root.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))


GZ = {"Accept-Encoding": "gzip, deflate"}
ASKED = [
    (method, path, headers)
    for method in ("GET", "HEAD")
    for path in ("/page.html", "/small.txt", "/data.json", "/img.png", "/nothere",
                 "/vary/app.js", "/vary/bare.js", "/always/site.css", "/best/page.html",
                 "/off/page.html", "/filtered/page.html", "/ret", "/forbidden",
                 "/api/page", "/api/chunked", "/api/encoded", "/api/small", "/api/error",
                 "/api/missing", "/api/image", "/stream/page", "/proxied/expired",
                 "/proxied/fresh", "/proxied/nocache", "/proxied/plain", "/stored/only.js",
                 "/inflated/gzipped", "/inflated/two/gzipped", "/inflated/page")
    for headers in ({}, GZ, {"Accept-Encoding": "gzip;q=0"}, {**GZ, "Via": "1.1 cdn"})
] + [
    ("GET", path, headers)
    for path in ("/page.html", "/vary/app.js", "/api/page", "/best/page.html")
    for headers in ({**GZ, "Range": "bytes=0-9"}, {**GZ, "User-Agent": "curl/8.0"},
                    {**GZ, "User-Agent": "Mozilla/4.0 (compatible; MSIE 6.0; Windows 98)"},
                    {**GZ, "If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT"},
                    {"Accept-Encoding": "br, GZIP;Q=0.5"}, {"Accept-Encoding": "x-gzip"})
] + [("GET", "/proxied/plain", {**GZ, "Via": "1.1 cdn", "Authorization": "Basic eA=="})]


def _ask(port: int, method: str, path: str, headers: dict[str, str]) -> object:
    return compared_answer(port, method, path, headers)


def _http10(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n".encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    lines = sorted(line.lower() for line in head.split(b"\r\n")[1:]
                   if not line.lower().startswith((b"date:", b"server:", b"connection:")))
    return head.split(b"\r\n")[0] + b"\n" + b"\n".join(lines) + b"\n\n" + body


def test_as_nginx_compresses(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    root = tmp_path / "www"
    _site(root)
    backends = {kind: RawBackend(answer=_answer) for kind in ("nginx", "fastgate")}
    ports = {kind: free() for kind in backends}
    home = tmp_path / "nginx"
    home.mkdir()
    proc = beside_nginx("nginx", home, _conf(ports["nginx"], backends["nginx"].port, root),
                        "error")
    try:
        wait_port(ports["nginx"], proc)
        gateway(_conf(ports["fastgate"], backends["fastgate"].port, root), ports["fastgate"])
        for method, path, headers in ASKED:
            ours = _ask(ports["fastgate"], method, path, headers)
            assert ours == _ask(ports["nginx"], method, path, headers), (method, path, headers)
        for path in ("/page.html", "/best/page.html", "/api/page"):
            assert _http10(ports["fastgate"], path) == _http10(ports["nginx"], path), path
        # the upstream got the same requests, Accept-Encoding as the client sent it
        seen = [[(r.method, r.target, sorted((n.lower(), v) for n, v in r.headers
                                             if n.lower() != b"host")) for r in be.requests()]
                for be in backends.values()]
        assert seen[1] == seen[0]
        # what the answers were, for the record: compressed, with nginx's bytes
        status, fields, raw = _ask(ports["fastgate"], "GET", "/api/page", GZ)  # type: ignore[misc]
        assert ("content-encoding", "gzip") in fields and ("etag", 'W/"x1"') in fields
        assert zlib.decompress(raw, 47) == PAGE
        status, fields, raw = _ask(ports["fastgate"], "GET", "/vary/app.js", GZ)  # type: ignore[misc]
        assert raw == (root / "vary/app.js.gz").read_bytes()
        # gunzip: inflated for a client that does not take gzip, members one by one
        status, fields, raw = _ask(ports["fastgate"], "GET", "/inflated/two/gzipped", {})  # type: ignore[misc]
        assert raw == PAGE + b"<p>more</p>" and ("etag", 'W/"g1"') in fields
        assert not any(name == "content-encoding" for name, _ in fields)
        status, fields, raw = _ask(ports["fastgate"], "GET", "/stored/only.js", {})  # type: ignore[misc]
        assert raw == b"precompressed stored/only.js"
    finally:
        stop_process(proc)
        for be in backends.values():
            be.stop()
