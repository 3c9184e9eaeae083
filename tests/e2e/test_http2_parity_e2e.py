"""HTTP/2 to clients beside nginx 1.22: the same configuration (``listen ... http2``,
cleartext with prior knowledge) under both, the same streams on one connection to each,
the answers compared — status, the fields that carry meaning, the body — and what the
backend received: the request line, the body and its framing, the cookie crumbs joined
into one field."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_util import wait_for_text
from h2_client import Answer, H2Client
from test_nginx_parity_e2e import NGINX, Side, both

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(),
                                reason="nginx is installed by make test (test-deps)")

BLOCK = """
log_format sizes '$request_uri $status $body_bytes_sent';
server { listen 127.0.0.1:PORT http2; server_name parity.test;
  access_log HOME/SIDE-sizes.log sizes;
  location = /v { add_header X-V "$http2"; return 200
    "$server_protocol|$request|$scheme|$host|$http_cookie|$cookie_b|$content_length|$request_method\\n"; }
  location = /cors {
    if ($request_method = OPTIONS) { add_header Access-Control-Allow-Origin "*"; return 204; }
    return 200 "get\\n";
  }
  location = /moved { return 301 /there; }
  location /p/ { proxy_pass http://BACKEND; proxy_set_header X-Set "$request_method"; }
  location /files/ { root HOME; gzip on; gzip_min_length 1; gzip_types text/plain; }
}
"""

# (method, path, extra fields, body, whether the body goes with a content-length)
STREAMS: list[tuple[str, str, list[tuple[bytes, bytes]], bytes, bool]] = [
    ("GET", "/v?x=1", [(b"cookie", b"a=1"), (b"x-any", b"y"), (b"cookie", b"b=2")], b"", True),
    ("HEAD", "/v", [], b"", True),
    ("OPTIONS", "/cors", [], b"", True),
    ("GET", "/cors", [], b"", True),
    ("GET", "/moved", [], b"", True),
    ("GET", "/files/a.txt", [], b"", True),
    ("GET", "/files/none.txt", [], b"", True),
    ("GET", "/files/a.txt?gz", [(b"accept-encoding", b"gzip")], b"", True),  # (chunked)
    ("POST", "/p/sized?q=1", [(b"cookie", b"c=3"), (b"cookie", b"d=4")], b"a body", True),
    ("POST", "/p/unsized", [], b"x" * 70000, False),  # past the first window, no length
    ("PUT", "/v", [], b"abc", True),
]
COMPARED = (b"x-v", b"access-control-allow-origin", b"location", b"content-type",
            b"content-length", b"allow")


def _ask(side: Side) -> list[Answer]:
    with H2Client(side.port) as c:
        sids = []
        for method, path, extra, body, sized in STREAMS:
            fields = [(b":method", method.encode()), (b":path", path.encode()),
                      (b":scheme", b"http"), (b":authority", b"parity.test"), *extra]
            if body and sized:
                fields.append((b"content-length", str(len(body)).encode()))
            sids.append(c.request(fields=fields, body=body))
        return c.wait(*sids)


def _view(side: Side, a: Answer) -> tuple[object, ...]:
    fields = {n: a.header(n) for n in COMPARED if a.header(n) is not None}
    if b"location" in fields:
        fields[b"location"] = fields[b"location"].replace(str(side.port).encode(), b"PORT")
    body = a.body
    if fields.get(b"content-type") == b"text/html":  # a built-in page: its footer differs
        body = b"(page)" if b"<html>" in body else body
        fields.pop(b"content-length", None)
    return a.status, a.ended, a.reset, fields, body


def test_the_same_streams_the_same_answers(tmp_path: Path, engine: str) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.txt").write_bytes(b"static\n")
    with both(tmp_path, BLOCK, engine) as (nginx, fastgate):
        expected, got = _ask(nginx), _ask(fastgate)
        for stream, want, have in zip(STREAMS, expected, got, strict=True):
            assert _view(fastgate, have) == _view(nginx, want), stream[:2]
        # $body_bytes_sent of a stream is its DATA's payload (the HTTP/1.1 chunks a
        # stream's answer passes through are never on the wire), a built-in page's
        # the size of its own
        sizes = {}
        for kind in ("nginx", "fastgate"):
            log = tmp_path / f"{kind}-sizes.log"
            wait_for_text(log, "/files/a.txt?gz")  # (fastgate writes its log in batches)
            sizes[kind] = sorted(line for line in log.read_text().splitlines()
                                 if not line.startswith(("/files/none.txt ", "/moved ")))
        assert len(sizes["fastgate"]) == len(STREAMS) - 2 and sizes["fastgate"] == sizes["nginx"]
        for path in (b"/p/sized?q=1", b"/p/unsized"):
            (want_r,) = [r for r in nginx.backend.requests() if r.target == path]
            (have_r,) = [r for r in fastgate.backend.requests() if r.target == path]
            assert (have_r.method, have_r.body) == (want_r.method, want_r.body), path
            framing = (b"content-length", b"transfer-encoding")
            for name in (b"cookie", b"x-set", b"x-any", *framing):
                # (Connection differs: fastgate keeps upstreams alive); a body of no
                # known length is read whole and goes with one, by both
                assert have_r.header(name) == want_r.header(name), (path, name)
