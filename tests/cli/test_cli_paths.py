"""The main configuration file is named in messages as an included one is: by its
absolute path, as nginx names it (issue #17, "Messages")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_main_and_included_files_are_named_the_same_way(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text("server {\n listen 127.0.0.1:8081;\n"
                                                " bogus_one on;\n}\n")
    (tmp_path / "main.conf").write_text("http {\n include conf.d/*.conf;\n}\n")
    (tmp_path / "m2.conf").write_text("http {\n bogus_two on;\n}\n")
    runs = [subprocess.run([sys.executable, "-m", "fastgate", "-t", "-c", name],
                           capture_output=True, text=True, timeout=30, cwd=tmp_path)
            for name in ("main.conf", "m2.conf")]
    assert runs[0].stderr.splitlines() == [
        f'fastgate: [emerg] unknown directive "bogus_one" in {tmp_path}/conf.d/a.conf:3',
        f"fastgate: configuration file {tmp_path}/main.conf test failed"]
    assert runs[1].stderr.splitlines() == [
        f'fastgate: [emerg] unknown directive "bogus_two" in {tmp_path}/m2.conf:2',
        f"fastgate: configuration file {tmp_path}/m2.conf test failed"]
