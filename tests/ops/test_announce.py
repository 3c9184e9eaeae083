"""ops.gateway.announce: one line per listening address, each kind and family in its
own words (HTTP's scheme and engine, the stream block's protocol, the mail server's
protocol; a unix socket by its path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastgate.config import load_config
from fastgate.ops.gateway import announce


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def reaches(self, where: str, level: str) -> bool:
        return True  # (so nothing is printed besides)

    def write(self, level: str, line: str) -> None:
        assert level == "notice"
        self.lines.append(line)

    def flush(self) -> None:
        pass


def test_every_kind_of_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "a.conf"
    conf.write_text(f"""worker_processes 2; http_engine h11;
http {{ server {{ listen 127.0.0.1:8080; listen [::1]:8081; listen unix:{tmp_path}/h.sock;
  return 200; }} }}
stream {{ server {{ listen 127.0.0.1:9000; listen 127.0.0.1:9000 udp; return x; }}
  server {{ listen unix:{tmp_path}/s.sock; return y; }} }}
mail {{ auth_http 127.0.0.1:9; server {{ listen 127.0.0.1:1143; protocol imap; }}
  server {{ listen unix:{tmp_path}/m.sock; protocol smtp; }} }}
""")
    log = _Log()
    announce(load_config(str(conf)), None, log)
    assert log.lines == [
        "listening on http://127.0.0.1:8080 (2 workers, h11)",
        "listening on http://[::1]:8081 (2 workers, h11)",
        f"listening on unix:{tmp_path}/h.sock (http, 2 workers, h11)",
        "listening on tcp://127.0.0.1:9000 (stream, 2 workers)",
        "listening on udp://127.0.0.1:9000 (stream, 2 workers)",
        f"listening on unix:{tmp_path}/s.sock (stream, 2 workers)",
        "listening on tcp://127.0.0.1:1143 (mail, imap, 2 workers)",
        f"listening on unix:{tmp_path}/m.sock (mail, smtp, 2 workers)",
    ]
    assert capsys.readouterr().err == ""
