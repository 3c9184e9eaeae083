"""An upstream's Location and Refresh beside nginx 1.22, through ``proxy_redirect``
(default, off, a prefix rule, a rule to a path, a proxy_pass with a URI part): a URL a
rule rewrote into a path is made absolute by the header filter; a path no rule touched
stays as the upstream sent it — the usual answer of an application behind
``proxy_redirect off`` (Mastodon's, Rails'), which fastgate used to make absolute."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_util import nginx_and_fastgate
from raw_backend import RawBackend, Received


def _moved(req: Received) -> bytes:
    """302 to a path, or (``abs`` in the target) to a URL of the upstream's own."""
    target = req.target.split(b"?")[0]
    url = b"http://127.0.0.1:%d/abs/x" % int(req.header(b"x-port")[0]) \
        if b"abs" in target else b"/elsewhere?q=1"
    return (b"HTTP/1.1 302 Found\r\nLocation: " + url + b"\r\nRefresh: 3; url=" + url
            + b"\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[dict[str, int]]:
    backend = RawBackend(answer=_moved)
    up = f"http://127.0.0.1:{backend.port}"

    def body(ports: list[int]) -> str:
        return f"""
http {{ access_log off;
  server {{ listen 127.0.0.1:{ports[0]};
    proxy_set_header X-Port {backend.port};
    location /d/ {{ proxy_pass {up}; }}
    location /o/ {{ proxy_pass {up}; proxy_redirect off; }}
    location /m/ {{ proxy_pass {up}; proxy_redirect {up}/ /; }}
    location /r/ {{ proxy_pass {up}; proxy_redirect / /x/; }}
    location /u/ {{ proxy_pass {up}/; }}
    location /n/ {{ proxy_pass {up}; proxy_redirect {up}/ /; absolute_redirect off; }}
  }}
}}
"""

    try:
        with nginx_and_fastgate(tmp_path, body) as sides:
            yield {kind: ports[0] for kind, ports in sides.items()}
    finally:
        backend.stop()


def _redirect(port: int, path: str) -> tuple[int, str, str]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Host": "gw.test"})
        r = c.getresponse()
        r.read()
        shown = (r.getheader("Location") or "", r.getheader("Refresh") or "")
        return r.status, *(v.replace(f":{port}/", ":PORT/") for v in shown)
    finally:
        c.close()


def test_locations_as_nginx_leaves_them(ports: dict[str, int]) -> None:
    answers = {}
    for prefix in ("/d/", "/o/", "/m/", "/r/", "/u/", "/n/"):
        for name in ("rel", "abs"):
            path = f"{prefix}{name}"
            ours = _redirect(ports["fastgate"], path)
            assert ours == _redirect(ports["nginx"], path), path
            answers[path] = ours
    # what they are, to be sure the comparison compared something
    assert answers["/o/rel"] == (302, "/elsewhere?q=1", "3; url=/elsewhere?q=1")
    assert answers["/d/rel"][1] == "/elsewhere?q=1"
    assert answers["/m/abs"][1] == "http://gw.test:PORT/abs/x"
    assert answers["/r/rel"][1] == "http://gw.test:PORT/x/elsewhere?q=1"
    assert answers["/n/abs"][1] == "/abs/x"
