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
