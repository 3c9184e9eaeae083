"""sub_filter compared with nginx 1.22: the same configuration and requests through
nginx and fastgate, each in front of its own backend answering the same HTML; the
bodies (de-chunked) and the headers the filter changes compared — on both engines,
through the task path that filtered locations take."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_nginx_parity_e2e import NGINX, _dechunk, _request, both

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(),
                                reason="nginx is installed by make test (test-deps)")

BLOCK = """
server { listen 127.0.0.1:PORT;
  location /once/ { sub_filter old.example.com new.example.net; proxy_pass http://BACKEND/html; }
  location /all/ { sub_filter old.example.com new.example.net; sub_filter_once off;
                   proxy_pass http://BACKEND/html; }
  location /many/ { sub_filter "Old Title" "New $host"; sub_filter abc X;
                    sub_filter "</body>" "<script src=/a.js></script></body>";
                    sub_filter_once off; proxy_pass http://BACKEND/html; }
  location /types/ { sub_filter old new; proxy_pass http://BACKEND/plain; }
  location /types2/ { sub_filter old new; sub_filter_types text/plain;
                      proxy_pass http://BACKEND/plain; }
  location /keep/ { sub_filter old new; sub_filter_last_modified on;
                    proxy_pass http://BACKEND/html; }
  location /var/ { sub_filter $arg_find $arg_put; sub_filter_once off;
                   proxy_pass http://BACKEND/html; }
  location /local/ { sub_filter hello bye; sub_filter_types text/plain;
                     return 200 "hello, Hello and HELLO"; }
  location /missing/ { sub_filter "not found" "Gone Away"; sub_filter_once off; return 404; }
}
"""

PATHS = ["/once/", "/all/", "/many/", "/types/", "/types2/", "/keep/",
         "/var/?find=EXAMPLE&put=sample", "/var/?find=&put=x", "/local/", "/missing/"]


def test_sub_filter_as_nginx(tmp_path: Path, engine: str) -> None:
    with both(tmp_path, BLOCK, engine) as (nginx, fastgate):
        for path in PATHS:
            raw = _request("GET", path)
            want, got = nginx.send(raw), fastgate.send(raw)
            assert got[0] == want[0], path
            w, g = _dechunk(want[1], want[2]), _dechunk(got[1], got[2])
            if want[0] == 404:  # the error pages differ by their server's name only
                w = w.replace(b"nginx/1.22.1", b"fastgate")
            assert g == w, (path, w, g)
            for name in ("content-length", "last-modified", "etag", "content-type"):
                assert got[1].get(name) == want[1].get(name), (path, name, want[1], got[1])
