"""Variables of the response (issue #17, item 7): ``$upstream_http_NAME``,
``$sent_http_NAME``, ``$upstream_header_time``, in headers and in the access log, on
both engines and both exchange paths."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scenario import ENGINES, PATHS, Scenario

RESPONSE = (b"HTTP/1.1 200 OK\r\nX-Backend: b1\r\nX-Backend: b2\r\nContent-Length: 4\r\n"
            b"\r\nbody")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_response_variables(tmp_path: Path, engine: str, path: str) -> None:
    log = tmp_path / "access.log"
    http = f"""
log_format vars '$upstream_http_x_backend|$sent_http_x_added|$sent_http_server|'
                '$upstream_header_time|$document_root|$upstream_http_missing|'
                '$upstream_connect_time|$upstream_bytes_received';
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080; access_log {log} vars;
  location / {{ add_header X-Added "from $upstream_http_x_backend"; proxy_pass http://be; }}
}}"""

    async def main() -> bytes:
        sc = Scenario(tmp_path, engine, http, path)
        try:
            client, _ = await sc.exchange(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", RESPONSE)
            return client
        finally:
            sc.close()

    client = asyncio.run(main())
    assert b"X-Added: from b1, b2\r\n" in client
    line = log.read_text().strip()
    fields = line.split("|")
    assert fields[0] == "b1, b2" and fields[1] == "from b1, b2" and fields[2] == "fastgate"
    # $document_root: nginx's default root, "html" under the prefix (the config's dir)
    assert float(fields[3]) >= 0 and fields[4] == str(tmp_path / "html")
    assert fields[5] == "-"  # empty: "-"
    # a pooled connection: nothing to connect; every byte of the answer counted
    assert fields[6] == "0.000" and fields[7] == str(len(RESPONSE))


# h5bp's idiom: headers and expiry chosen by the response's own type, through maps of
# $sent_http_content_type that add_header and expires read while the head is made
BY_TYPE = """
map $sent_http_content_type $xfo { ~*text/html DENY; }
map $sent_http_content_type $expires { default off; ~*text/html epoch; ~*json 1h; }
upstream be { server 127.0.0.1:9; keepalive 8; }
server { listen 127.0.0.1:8080;
  expires $expires;
  add_header X-Frame-Options $xfo always;
  add_header X-First one;
  add_header X-Seen "[$sent_http_x_first|$sent_http_cache_control]";
  location /api/ { proxy_pass http://be; }
  location = /page { default_type text/html; return 200 "page"; }
  location = /data { default_type application/json; return 200 "{}"; }
  location = /gone { return 404; }
}"""


def _head(response: bytes) -> dict[bytes, bytes]:
    head = response.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    return {n.lower(): v for n, _, v in (line.partition(b": ") for line in head)}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_headers_added_see_the_response_as_it_stands(tmp_path: Path, engine: str,
                                                     path: str) -> None:
    """``$sent_http_NAME`` in add_header and expires is the response being made — its
    Content-Type, the headers added before — as nginx's headers filter sees it; before
    the fix every such map rendered empty, and the headers were never sent."""
    html = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nCache-Control: private\r\n"
            b"Content-Length: 2\r\n\r\nok")

    async def main() -> list[bytes]:
        sc = Scenario(tmp_path, engine, BY_TYPE, path)
        try:
            proxied, _ = await sc.exchange(b"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n", html)
            return [proxied, await sc.get("/page"), await sc.get("/data"),
                    await sc.get("/gone")]
        finally:
            sc.close()

    proxied, page, data, gone = (_head(r) for r in asyncio.run(main()))
    for html_response in (proxied, page):
        assert html_response[b"x-frame-options"] == b"DENY"
        # epoch: expires replaces the upstream's Cache-Control, and X-Seen sees both
        assert html_response[b"cache-control"] == b"no-cache"
        assert html_response[b"expires"] == b"Thu, 01 Jan 1970 00:00:01 GMT"
        assert html_response[b"x-seen"] == b"[one|no-cache]"
    assert data[b"cache-control"] == b"max-age=3600" and b"x-frame-options" not in data
    assert data[b"x-seen"] == b"[one|max-age=3600]"
    # the 404 page is text/html: an "always" header takes its type; expires and the
    # others are for 2xx/3xx only
    assert gone[b"x-frame-options"] == b"DENY"
    assert b"expires" not in gone and b"x-seen" not in gone
