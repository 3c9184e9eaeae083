"""nginx's ``stub_status`` page beside ``fastgate_status``, in process on both engines."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from scenario import ENGINES, Scenario

from fastgate.config import load_config
from fastgate.config.errors import ConfigError

HTTP = """
upstream be { server 127.0.0.1:9; }
server { listen 127.0.0.1:8080;
  location = /basic_status { stub_status; }
  location = /old { stub_status on; }
}"""


@pytest.mark.parametrize("engine", ENGINES)
def test_stub_status_is_nginx_text(tmp_path: Path, engine: str) -> None:
    async def main() -> tuple[bytes, bytes, bytes]:
        sc = Scenario(tmp_path, engine, HTTP)
        try:
            first, _ = await sc.exchange(b"GET /basic_status HTTP/1.1\r\nHost: a\r\n\r\n", None)
            sc.client_out.out.clear()
            second, _ = await sc.exchange(b"GET /old HTTP/1.1\r\nHost: a\r\n\r\n", None)
            sc.client_out.out.clear()
            post, _ = await sc.exchange(b"POST /old HTTP/1.1\r\nHost: a\r\n"
                                        b"Content-Length: 0\r\n\r\n", None)
            return first, second, post
        finally:
            sc.close()

    first, second, post = asyncio.run(main())
    assert first.startswith(b"HTTP/1.1 200 ") and b"Content-Type: text/plain\r\n" in first
    body = first.split(b"\r\n\r\n", 1)[1].decode()
    assert re.fullmatch(r"Active connections: \d+ \nserver accepts handled requests\n"
                        r" \d+ \d+ \d+ \nReading: 0 Writing: \d+ Waiting: \d+ \n", body), body
    later = second.split(b"\r\n\r\n", 1)[1].decode()
    assert int(later.split("\n")[2].split()[2]) == 1  # the first request was counted
    assert post.startswith(b"HTTP/1.1 405 ")


def test_one_status_page_per_location(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http { server { listen 127.0.0.1:8080;\n"
                    "location / { stub_status; fastgate_status; } } }")
    with pytest.raises(ConfigError, match='"fastgate_status" and another content handler of fastgate'):
        load_config(str(path))
    # nginx never reads stub_status's argument: "off" serves the page too, said once
    path.write_text("http { server { listen 127.0.0.1:8080;\nlocation / { stub_status off; } } }")
    config = load_config(str(path))
    assert config.servers[0].locations.all()[0].own_content == "stub"
    assert [w for w in config.warnings if "stub_status" in w] == [
        f'[warn] "stub_status off": its argument is ignored, as nginx ignores it: the status page '
        f"is served in {path}:2"]
