"""The status lines and error pages fastgate writes itself, beside nginx 1.22: nginx's
reason phrases ("302 Moved Temporarily", "503 Service Temporarily Unavailable",
"HTTP/1.1 418 " for a code it has none for), its page titles ("401 Authorization
Required", "405 Not Allowed", "504 Gateway Time-out"), no body at all where it has no
page, 408 and 499 closing the connection as 444 does, and headers too large as its
400 "Request Header Or Cookie Too Large". Only the server's name in the page differs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_util import nginx_and_fastgate, wait_for_text

CODES = (200, 204, 301, 302, 303, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407,
         408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 425, 426, 429,
         431, 451, 494, 495, 496, 497, 499, 500, 501, 502, 503, 504, 505, 506, 507, 508,
         510, 511, 599, 600, 999)


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[dict[str, int]]:
    locations = "".join(f"location = /{c} {{ return {c}; }}\n" for c in CODES)

    def body(ports: list[int]) -> str:
        return f"""
http {{ access_log off; large_client_header_buffers 4 8k;
  server {{ listen 127.0.0.1:{ports[0]};
    location = /text {{ return 404 "gone\\n"; }}
    {locations}
  }}
}}
"""

    with nginx_and_fastgate(tmp_path, body) as sides:
        yield {kind: ports[0] for kind, ports in sides.items()}


def _raw(port: int, data: bytes) -> tuple[bytes, list[bytes], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    body = body.replace(b"nginx/1.22.1", b"fastgate")
    # (Date and Server are each side's own; so is a page's length, by the name in it)
    fields = sorted(line.lower() for line in lines[1:]
                    if not line.lower().startswith((b"date:", b"server:"))
                    and not (line.lower().startswith(b"content-length:") and body))
    return lines[0], fields, body


def _same(ours: int, theirs: int, asked: list[bytes]) -> None:
    """Each request's answer the same from fastgate's port as from nginx's."""
    for data in asked:
        assert _raw(ours, data) == _raw(theirs, data), data[:40]


def test_status_lines_and_pages_as_nginx(ports: dict[str, int]) -> None:
    asked = [f"GET /{c} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode()
             for c in (*CODES, "text")]
    asked += [b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n",
              b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n"]
    _same(ports["fastgate"], ports["nginx"], asked)
    # to be sure the comparison compared something
    line, fields, body = _raw(ports["fastgate"], asked[CODES.index(503)])
    assert line == b"HTTP/1.1 503 Service Temporarily Unavailable"
    assert b"<title>503 Service Temporarily Unavailable</title>" in body
    line, fields, body = _raw(ports["fastgate"], asked[CODES.index(418)])
    assert line == b"HTTP/1.1 418 " and body == b"" and b"content-length: 0" in fields
    assert _raw(ports["fastgate"], asked[CODES.index(408)]) == (b"", [], b"")


def test_refusals_take_the_default_servers_headers(tmp_path: Path) -> None:
    """A request refused before any phase (a request line, a URI, a Host or a header
    nginx will not take, TRACE) is answered with the address's default server's
    configuration, as nginx's: its ``add_header ... always`` (HSTS) and its charset
    are on the page; the Host's server's when nginx refuses after reading the Host
    (TRACE, a header given twice)."""
    def body(ports: list[int]) -> str:
        return f"""
http {{ access_log off; charset utf-8; large_client_header_buffers 4 8k;
  server {{ listen 127.0.0.1:{ports[0]}; server_name first;
    add_header Strict-Transport-Security "max-age=63072000" always;
    add_header X-Not-Always no; return 204; }}
  server {{ listen 127.0.0.1:{ports[0]}; server_name other; charset off;
    add_header X-Other yes always; return 204; }}
}}
"""

    asked = [b"GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: other\r\n\r\n",
             b"GET /a b c HTTP/1.1\r\nHost: other\r\n\r\n",
             b"GET / HTTP/1.1\r\nHost: bad/host\r\n\r\n",
             b"TRACE / HTTP/1.1\r\nHost: other\r\n\r\n",
             # (headers too large before the Host: the default server's page; after
             # it, that Host's server's)
             b"GET / HTTP/1.1\r\nX-Big: " + b"x" * 9000 + b"\r\nHost: other\r\n\r\n",
             b"GET / HTTP/1.1\r\nHost: other\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n",
             b"GET / HTTP/1.1\r\nHost: other\r\nIf-Match: a\r\nIf-Match: b\r\n\r\n"]
    with nginx_and_fastgate(tmp_path, body) as sides:
        _same(sides["fastgate"][0], sides["nginx"][0], asked)
        _, fields, _ = _raw(sides["fastgate"][0], asked[0])
        assert b"strict-transport-security: max-age=63072000" in fields
        assert b"content-type: text/html; charset=utf-8" in fields


def test_refusals_go_to_the_servers_error_page(tmp_path: Path) -> None:
    """nginx sends a refused request to its server's error_page too: the default
    server's for a URI or Host it will not take, the Host's server's for TRACE (here
    ``error_page 405 =200``). The page's location answers, as nginx's — in the second
    server that is ``location /``'s ``return 204``, which the =200 makes an empty page
    with the URI's type (fastgate gave it none)."""
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "bad.html").write_text("<p>that request was not understood</p>\n")

    def body(ports: list[int]) -> str:
        return f"""
http {{ access_log off; large_client_header_buffers 4 8k;
  server {{ listen 127.0.0.1:{ports[0]}; server_name first; root {pages};
    error_page 400 /bad.html; location / {{ return 204; }} location = /bad.html {{ }} }}
  server {{ listen 127.0.0.1:{ports[0]}; server_name other; root {pages};
    error_page 405 =200 /allowed.txt; location / {{ return 204; }} }}
}}
"""

    asked = [b"GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: other\r\n\r\n",
             b"GET / HTTP/1.1\r\nHost: bad/host\r\n\r\n",
             b"HEAD / HTTP/1.1\r\nHost: bad/host\r\n\r\n",
             b"TRACE / HTTP/1.1\r\nHost: other\r\n\r\n",
             b"TRACE / HTTP/1.1\r\nHost: first\r\n\r\n",
             b"GET / HTTP/1.1\r\nHost: other\r\nIf-Match: a\r\nIf-Match: b\r\n\r\n"]
    with nginx_and_fastgate(tmp_path, body) as sides:
        _same(sides["fastgate"][0], sides["nginx"][0], asked)
        line, _, page = _raw(sides["fastgate"][0], asked[1])
        assert line == b"HTTP/1.1 400 Bad Request" and b"not understood" in page
        line, fields, page = _raw(sides["fastgate"][0], asked[3])
        assert line == b"HTTP/1.1 200 OK" and page == b""
        assert b"content-type: text/plain" in fields


def test_an_error_page_that_errs_answers_its_own_error(tmp_path: Path) -> None:
    """An error while an error page answers is answered itself, whatever code the
    page imposed, as nginx's (its special response sets the status anew): fastgate
    answered a denied page's 403 as the first error's 404, or as =200's 200."""
    def body(ports: list[int]) -> str:
        return f"""
http {{ access_log off;
  server {{ listen 127.0.0.1:{ports[0]}; root {tmp_path};
    error_page 404 /denied; error_page 405 =200 /denied2; error_page 410 =200 /gone;
    location = /denied {{ deny all; }} location = /denied2 {{ deny all; }}
    location = /gone {{ return 200 "gone, but fine"; }}
    location = /x {{ return 405; }} location = /y {{ return 410; }} }}
}}
"""

    asked = [f"GET /{p} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode()
             for p in ("missing", "x", "y")]
    with nginx_and_fastgate(tmp_path, body) as sides:
        _same(sides["fastgate"][0], sides["nginx"][0], asked)
        assert _raw(sides["fastgate"][0], asked[1])[0] == b"HTTP/1.1 403 Forbidden"
        assert _raw(sides["fastgate"][0], asked[2])[0] == b"HTTP/1.1 200 OK"


def test_what_the_http_layer_refuses_goes_to_an_error_page_too(tmp_path: Path) -> None:
    """A request line, header or length the HTTP layer cannot take, or headers too
    large, go to an error_page as nginx's: the default server's, or the Host's
    server's once a Host came before the error; ``error_page 494`` takes headers too
    large (answered as 400, or its ``=code``); $request logs the line as it came,
    read or not (a URI too long: its first buffer). fastgate answered them all with its
    own page, logged "-" for a line it could not read, and waited for the end of a line
    that could be no request's (TLS on a plain port) instead of refusing it at once."""
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "bad.html").write_text("<p>bad</p>\n")
    (pages / "big.html").write_text("<p>big</p>\n")

    def body(ports: list[int]) -> str:
        return f"""
http {{ large_client_header_buffers 2 1k;
  log_format f '$status "$request" $request_method $uri';
  access_log {tmp_path}/a{ports[0]} f;
  server {{ listen 127.0.0.1:{ports[0]}; root {pages};
    error_page 400 /bad.html; error_page 494 =431 /big.html; error_page 414 /big.html;
    add_header X-S default always;
    location / {{ return 200 "ok"; }}
    location = /bad.html {{ add_header X-Page bad always; }} }}
  server {{ listen 127.0.0.1:{ports[0]}; server_name named; root {pages};
    error_page 400 494 /big.html; location / {{ return 200 "named"; }} }}
}}
"""

    asked = [b"GARBAGE\r\n\r\n",
             b"GET / HTTP/1.1\r\nHost: named\r\nBad\x01Header: y\r\n\r\n",
             b"GET / HTTP/1.1\r\nBad\x01Header: y\r\nHost: named\r\n\r\n",
             b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: named\r\n\r\n",
             b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 2000 + b"\r\n\r\n",
             b"GET / HTTP/1.1\r\nHost: named\r\nX-Long: " + b"a" * 2000 + b"\r\n\r\n",
             b"HEAD / HTTP/1.1\r\nHost: named\r\nX-Long: " + b"a" * 2000 + b"\r\n\r\n",
             b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 2000 + b"\r\nHost: named\r\n\r\n",
             b"POST / HTTP/1.1\r\nHost: named\r\nContent-Length: zz\r\n\r\n",
             b"GET / HTTP/2.5\r\nHost: named\r\n\r\n",
             b"POST / HTTP/1.1\r\nHost: named\r\nTransfer-Encoding: gzip\r\n\r\n",
             b"get / HTTP/1.1\r\nHost: named\r\n\r\n",
             b"\r\n\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\"q\x7f\xe9\n"]
    with nginx_and_fastgate(tmp_path, body) as sides:
        ours, theirs = sides["fastgate"][0], sides["nginx"][0]
        _same(ours, theirs, asked)
        logged = {}
        for port in (ours, theirs):
            log = tmp_path / f"a{port}"
            wait_for_text(log, "\\x16")  # (fastgate's log is written from a thread)
            logged[port] = log.read_text().splitlines()
        assert len(logged[ours]) == len(asked)
        assert logged[ours] == logged[theirs]
        assert logged[ours][0] == '400 "GARBAGE" GET /bad.html'  # (the page's request)
        assert logged[ours][-1].startswith(
            '400 "\\x16\\x03\\x01\\x00\\xA5\\x01\\x00\\x00\\xA1\\x03\\x03\\x22q\\x7F\\xE9" ')
        assert _raw(ours, asked[0])[2] == b"<p>bad</p>\n"
        assert _raw(ours, asked[1])[2] == b"named"
        assert _raw(ours, asked[4])[0] == b"HTTP/1.1 431 "


def test_a_refused_body_goes_to_the_error_page_without_it(tmp_path: Path) -> None:
    """A body over client_max_body_size — declared, or a chunked one found too large as
    it comes — is answered through error_page, as nginx's: the page's location runs
    for a request that carries none of the body (nginx discards it: a proxied page
    gets none, a named one keeps the method), no "100 Continue" invites it, and a
    proxied page's status line has nginx's words for 413, not the upstream's "OK"."""
    from raw_backend import RawBackend

    backend = RawBackend()

    def body(ports: list[int]) -> str:
        return f"""
http {{ access_log off;
  server {{ listen 127.0.0.1:{ports[0]}; client_max_body_size 1k;
    error_page 413 /page413;
    location = /page413 {{ return 200 "page\\n"; }}
    location / {{ return 200 "ok\\n"; }}
    location /pp/ {{ error_page 413 /up/from413; proxy_pass http://127.0.0.1:{backend.port}; }}
    location /pn/ {{ error_page 413 = @named; proxy_pass http://127.0.0.1:{backend.port}; }}
    location @named {{ proxy_pass http://127.0.0.1:{backend.port}; }}
    location /up/ {{ proxy_pass http://127.0.0.1:{backend.port}; }} }}
}}
"""

    chunked = b"Transfer-Encoding: chunked\r\n\r\n7d0\r\n" + b"x" * 2000 + b"\r\n0\r\n\r\n"
    sized = b"Content-Length: 2000\r\n\r\n" + b"x" * 2000
    asked = [b"POST " + path + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + rest
             for path in (b"/", b"/pp/x", b"/pn/x", b"/up/x") for rest in (chunked, sized)]
    try:
        with nginx_and_fastgate(tmp_path, body) as sides:
            ours, theirs = sides["fastgate"][0], sides["nginx"][0]
            _same(ours, theirs, asked)
            line, _, page = _raw(ours, asked[3])
            assert line == b"HTTP/1.1 413 Request Entity Too Large" and b"from413" in page
            assert _raw(ours, asked[1])[2] == b"page\n"  # (a return reads no chunked body)
            # a client that waits to be asked sends nothing, and is not asked
            with socket.create_connection(("127.0.0.1", ours), timeout=5) as s:
                s.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n"
                          b"Expect: 100-continue\r\n\r\n")
                got = s.recv(65536)
            assert got.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in got
        seen = [(r.method, r.target, r.body) for r in backend.requests()]
        assert all(body == b"" for _, _, body in seen) and seen
        assert {(m, t) for m, t, _ in seen} == {(b"GET", b"/up/from413"), (b"POST", b"/pn/x")}
    finally:
        backend.stop()
