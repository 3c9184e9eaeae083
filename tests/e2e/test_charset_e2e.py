"""charset (the header part of nginx's charset filter) compared with nginx 1.22: the
Content-Type of proxied and local answers, error pages and redirects, with and without
a charset of their own, for the default and a given charset_types; both engines (a
proxied location's repeated requests take the callback path too)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_nginx_parity_e2e import NGINX, _request, both

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(),
                                reason="nginx is installed by make test (test-deps)")

BLOCK = """
upstream be { server BACKEND; keepalive 4; }
server { listen 127.0.0.1:PORT; charset utf-8;
  location /html/ { proxy_pass http://be/html; }
  location /plain/ { proxy_pass http://be/plain; }
  location /bare/ { proxy_pass http://be/bare; }
  location /text/ { return 200 "text"; }
  location /moved/ { return 302 /elsewhere; }
  location /gone/ { return 404; }
  location /css/ { charset_types text/css; proxy_pass http://be/plain; }
  location /css-html/ { charset_types text/css; default_type text/html; return 200 "x"; }
  location /off/ { charset off; proxy_pass http://be/plain; }
  location /latin/ { charset koi8-r; return 200 "x"; }
  location /if/ { if ($arg_x) { charset windows-1251; } return 200 "x"; }
}
"""

PATHS = ["/html/", "/plain/", "/plain/", "/plain/", "/bare/", "/text/", "/moved/", "/gone/",
         "/css/", "/css-html/", "/off/", "/latin/", "/if/", "/if/?x=1"]


def test_charset_as_nginx(tmp_path: Path, engine: str) -> None:
    with both(tmp_path, BLOCK, engine) as (nginx, fastgate):
        for path in PATHS:
            want, got = nginx.send(_request("GET", path)), fastgate.send(_request("GET", path))
            assert got[0] == want[0], path
            assert got[1].get("content-type") == want[1].get("content-type"), path
