"""$upstream_connect_time and $upstream_bytes_received over real connections: a new
connection's time is measured (on loopback it rounds to 0.000, as nginx's does), a
pooled one's is 0, and the bytes are the whole answer's."""

from __future__ import annotations

import http.client
import time
from pathlib import Path


def test_connect_time_and_bytes(tmp_path: Path, gateway, free, backends) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    port = free()
    log = tmp_path / "up.log"
    gateway(f"""http {{ log_format up '$uri $upstream_connect_time $upstream_bytes_received';
      upstream pooled {{ server 127.0.0.1:{be.port}; keepalive 4; }}
      server {{ listen 127.0.0.1:{port}; access_log {log} up;
        location / {{ proxy_pass http://pooled; }}
        location = /none {{ return 204; }} }} }}""", port)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sizes = []
    for path in ("/first", "/second", "/none"):
        c.request("GET", path)
        r = c.getresponse()
        sizes.append(len(r.read()))
    c.close()
    deadline = time.time() + 5
    while time.time() < deadline and "/none" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.1)
    first, second, none = (line.split() for line in log.read_text().splitlines())
    assert first[0] == "/first" and 0 <= float(first[1]) < 1  # a new connection
    assert second[1] == "0.000"  # the pooled one
    assert int(first[2]) > sizes[0] and int(second[2]) > sizes[1]  # head and body
    assert none[1:] == ["-", "-"]  # no upstream
