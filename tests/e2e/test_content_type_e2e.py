"""The Content-Type of fastgate's own answers (``return``), compared with nginx 1.22:
the request URI's extension in ``types`` (nginx's built-in three without a block; a
``types`` block, nginx's mime.types included as it is, replaces them), else
``default_type``; none on a 204."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_nginx_parity_e2e import NGINX, _request, both

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(),
                                reason="nginx is installed by make test (test-deps)")

MIME = Path("/etc/nginx/mime.types")

BLOCK = """
server { listen 127.0.0.1:PORT;
  location /plain/ { return 200 "text"; }
  location /empty/ { return 200; }
  location /none/ { return 204; }
  location /typed/ { default_type application/json; return 200 '{"ok":true}'; }
  location /mime/ { types { application/x-custom cst; text/css css CSS2; }
                    default_type application/octet-stream; return 200 "x"; }
  location /stock/ { include MIME; default_type application/octet-stream; return 200 "x"; }
}
"""

PATHS = ["/plain/a", "/plain/a.html", "/plain/a.JPG", "/plain/a.css", "/plain/dir.html/x",
         "/empty/", "/none/", "/typed/a.gif", "/mime/a.cst", "/mime/a.css2", "/mime/a.html",
         "/stock/a.json", "/stock/a.svg", "/stock/a.unknown", "/stock/.hidden"]


def test_content_types_as_nginx(tmp_path: Path, engine: str) -> None:
    if not MIME.exists():
        pytest.skip("nginx's mime.types comes with the nginx package (test-deps)")
    with both(tmp_path, BLOCK.replace("MIME", str(MIME)), engine) as (nginx, fastgate):
        for path in PATHS:
            want, got = nginx.send(_request("GET", path)), fastgate.send(_request("GET", path))
            assert got[0] == want[0], path
            assert got[1].get("content-type") == want[1].get("content-type"), path
