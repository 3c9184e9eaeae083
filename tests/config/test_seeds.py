"""The seed configurations of SPEC.md section 4 pass ``fastgate -t`` unchanged, apart
from the key path, run through the real command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SEEDS = Path(__file__).parent.parent / "seeds"


def seed_text(name: str, key_path: Path) -> str:
    return (SEEDS / name).read_text().replace("/etc/fastgate/jwt-keys/public.pem", str(key_path))


@pytest.mark.parametrize("name", sorted(p.name for p in SEEDS.glob("*.conf")))
def test_seed_passes_t(tmp_path: Path, keypairs: dict[str, Any], name: str) -> None:
    key = tmp_path / "public.pem"
    key.write_bytes(keypairs["RSA"].public_pem)
    conf = tmp_path / name
    conf.write_text(seed_text(name, key))
    run = subprocess.run([sys.executable, "-m", "fastgate", "-t", "-c", str(conf)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip().endswith(f"fastgate: configuration file {conf} test is successful")
    assert "Traceback" not in run.stderr


def test_t_failure_line(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("http {\n  server {\n    auth_jwt on;\n  }\n}\n")
    run = subprocess.run([sys.executable, "-m", "fastgate", "-t", "-c", str(conf)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.splitlines()[0] == f"fastgate: [emerg] JWT: key not set in {conf}:3"
    assert "Traceback" not in run.stderr


def test_t_missing_file(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "fastgate", "-t", "-c", str(tmp_path / "x.conf")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "(2: No such file or directory)" in run.stderr
