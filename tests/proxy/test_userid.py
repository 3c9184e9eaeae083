"""userid: a new visitor's cookie as nginx makes it (its words: the address the
request came to or the service, the time, the worker's start value, a sequence), on
proxied responses of both engines and paths and on local ones. nginx's answers for
clients that bring a cookie are compared in tests/e2e/test_nginx_parity_e2e.py."""

from __future__ import annotations

import asyncio
import base64
import re
import struct
import time
from pathlib import Path

import pytest
from scenario import ENGINES, PATHS, Scenario

HTTP = """
upstream be { server 127.0.0.1:9; keepalive 8; }
server { listen 127.0.0.1:8080;
  location /on/ { userid on; userid_expires 1d; proxy_pass http://be;
                  proxy_set_header X-Uid $uid_set; }
  location /v1/ { userid v1; userid_service 7; userid_mark Z; return 200 "$uid_set"; }
}"""
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
COOKIE = re.compile(rb"Set-Cookie: uid=([A-Za-z0-9+/=]{24})(; expires=[^;\r]+)?; path=/\r\n")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_a_new_visitor_gets_nginx_s_cookie(tmp_path: Path, engine: str, path: str) -> None:
    async def main() -> list[tuple[bytes, bytes]]:
        sc = Scenario(tmp_path, engine, HTTP, path)
        try:
            return [await sc.exchange(b"GET /on/a HTTP/1.1\r\nHost: a\r\n\r\n", OK),
                    await sc.exchange(b"GET /v1/b HTTP/1.1\r\nHost: a\r\n\r\n", None)]
        finally:
            sc.close()

    (on, upstream), (v1, _) = asyncio.run(main())
    m = COOKIE.search(on)
    assert m is not None and m.group(2), on
    words = base64.b64decode(m.group(1))
    assert words[:4] == bytes([127, 0, 0, 1])  # the address the request came to
    address, when, _start, sequence = struct.unpack(">4I", words)
    assert abs(when - time.time()) < 60 and sequence >= 0x03030302
    # $uid_set: nginx's words as it keeps them in memory (little-endian), in hex
    shown = "".join(f"{w:08X}" for w in struct.unpack("<4I", words))
    assert f"X-Uid: uid={shown}\r\n".encode() in upstream
    v1_cookie = re.search(rb"Set-Cookie: uid=([A-Za-z0-9+/]{22})Z=; path=/\r\n", v1[len(on):])
    assert v1_cookie is not None  # the mark in place of the padding's first "="
    service, when, _start, sequence = struct.unpack(
        "<4I", base64.b64decode(v1_cookie.group(1) + b"=="))
    assert service == 7 and abs(when - time.time()) < 60
    assert v1[len(on):].endswith(f"uid={service:08X}{when:08X}".encode()
                                 + v1[len(on):][-16:])


@pytest.mark.parametrize("written,flags", [
    ("httponly secure", ("secure", "httponly")),  # nginx's order, whatever the written one
    ("samesite=lax OFF Secure", ("secure", "samesite=lax")),  # caseless; "off" adds nothing
    ("off", ()),
])
def test_cookie_flags_as_nginx_reads_them(tmp_path: Path, written: str,
                                          flags: tuple[str, ...]) -> None:
    from fastgate.config import load_config

    conf = tmp_path / "t.conf"
    conf.write_text("http { server { listen 127.0.0.1:8080; "
                    f"location / {{ userid on; userid_flags {written}; }} }} }}")
    loc = load_config(str(conf)).servers[0].locations.find("/")[0]
    assert loc is not None and loc.settings.userid_flags == flags
