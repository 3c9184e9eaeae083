"""``http2_push``: what each level's list is, and nginx's errors for mixing ``off``
with URIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastgate.config.errors import ConfigError
from fastgate.config.load import load_config


def _load(tmp: Path, server: str) -> dict[str, tuple[str, ...]]:
    path = tmp / "t.conf"
    path.write_text("http { server { listen 127.0.0.1:8997 http2; " + server + " } }\n")
    config = load_config(str(path))
    (s,) = config.servers
    return {loc.pattern: tuple(t.source for t in loc.settings.http2_push)
            for loc in s.locations.prefixes}


def test_levels(tmp_path: Path) -> None:
    got = _load(tmp_path, """http2_push /a.css; http2_push /$uri.js;
        location /in { } location /own { http2_push /b.css; } location /off { http2_push off; }""")
    assert got == {"/in": ("/a.css", "/$uri.js"), "/own": ("/b.css",), "/off": ()}


@pytest.mark.parametrize("server,message", [
    ("http2_push off; http2_push /a;", 'URI cannot be used with "off" parameter'),
    ("http2_push /a; http2_push off;", '"off" parameter cannot be used with URI'),
    ("http2_push off; http2_push off;", '"http2_push" directive is duplicate'),
])
def test_off_and_uris_do_not_mix(tmp_path: Path, server: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, server + " location / { }")
