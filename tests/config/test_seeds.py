"""The seed configurations of SPEC.md section 4 pass ``fastgate -t`` unchanged, apart
from the key path and the backends' host names, run through the real command line.

The seeds name docker-compose services (``backend``, ``cms_backend``...): ``-t`` resolves
upstream names as ``nginx -t`` does (issue #17), so here, where they do not resolve,
they are replaced by ``localhost``, and as written they fail with nginx's message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SEEDS = Path(__file__).parent.parent / "seeds"


HOSTS = ("http://backend", "http://app_backend", "http://cms_backend")


def seed_text(name: str, key_path: Path, hosts: bool = True) -> str:
    text = (SEEDS / name).read_text().replace("/etc/fastgate/jwt-keys/public.pem",
                                              str(key_path))
    if hosts:
        for host in HOSTS:
            text = text.replace(host, "http://localhost")
    return text


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


def test_a_backend_name_that_does_not_resolve_fails_t(tmp_path: Path,
                                                      keypairs: dict[str, Any]) -> None:
    if _resolves("backend"):
        pytest.skip('"backend" resolves on this machine')
    key = tmp_path / "public.pem"
    key.write_bytes(keypairs["RSA"].public_pem)
    conf = tmp_path / "basic.conf"
    conf.write_text(seed_text("basic.conf", key, hosts=False))
    run = subprocess.run([sys.executable, "-m", "fastgate", "-t", "-c", str(conf)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.splitlines()[0] == (
        f'fastgate: [emerg] host not found in upstream "backend:80" in {conf}:8')


def _resolves(name: str) -> bool:
    import socket

    try:
        socket.getaddrinfo(name, 80)
        return True
    except OSError:
        return False


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
