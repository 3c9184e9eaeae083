"""The degradation module's directives at load, and what nginx refuses (FILE:LINE)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastgate.config import load_config
from fastgate.config.errors import ConfigError


def _load(tmp_path: Path, http: str, server: str = ""):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.conf"
    path.write_text("http {\n" + http + "\n server { listen 127.0.0.1:8997; " + server
                    + " } }")
    return load_config(str(path))


def test_taken(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "degradation sbrk=500m; degrade 444;", "location / { degrade 204; }")
    s = cfg.servers[0].locations.find("/")[0].settings
    assert (s.degradation_sbrk, s.degrade) == (500 << 20, 204)
    assert cfg.servers[0].settings.degrade == 444


@pytest.mark.parametrize(("http", "server", "message"), [
    ("degradation heap=5m;", "", 'invalid parameter "heap=5m"'),
    ("degradation sbrk=lots;", "", 'invalid sbrk size "sbrk=lots"'),
    ("degrade 503;", "", 'invalid value "503"'),
    ("", "degradation sbrk=1m;", '"degradation" directive is not allowed here'),
])
def test_refusals(tmp_path: Path, http: str, server: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, http, server)
    assert message in str(info.value)
