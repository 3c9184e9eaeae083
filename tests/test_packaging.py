"""What ships beside the code (issue #15): the licence the metadata names, a systemd unit
that systemd accepts, a container image that builds, a configuration for it that loads."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_licence_file_is_the_one_the_metadata_names() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "MIT"
    assert meta["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")


def test_every_package_of_the_tree_is_shipped() -> None:
    """A wheel holds the packages pyproject lists, not what an editable install sees: a
    new subpackage missing from the list would be missing from every installed gateway."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())
                 ["tool"]["setuptools"]["packages"])
    tree = {".".join(p.parent.relative_to(ROOT).parts)
            for p in (ROOT / "fastgate").rglob("__init__.py")}
    assert listed == tree


def test_the_systemd_unit_is_valid(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here: the unit file is not checked")
    unit = (ROOT / "contrib" / "fastgate.service").read_text()
    for line in ("Type=simple", "KillSignal=SIGQUIT", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in unit
    # systemd checks that the programs exist: this checkout's instead of /usr/local/bin's
    exe = Path(sys.executable).with_name("fastgate")
    (tmp_path / "fastgate.service").write_text(unit.replace("/usr/local/bin/fastgate", str(exe)))
    run = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "fastgate.service")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "fastgate.service" not in run.stderr, run.stderr  # no warning about it either


def test_the_container_configuration_loads() -> None:
    run = subprocess.run([sys.executable, "-m", "fastgate", "-t", "-c",
                          str(ROOT / "contrib" / "docker.conf")],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr


def test_the_container_image_builds_and_answers_its_healthcheck() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True,
                                        timeout=30).returncode != 0:
        pytest.skip("no docker daemon here: the Dockerfile is not built")
    tag = "fastgate-test:latest"
    build = subprocess.run([docker, "build", "-q", "-t", tag, str(ROOT)],
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([docker, "run", "--rm", "--entrypoint", "fastgate", tag, "-t", "-c",
                          "/etc/fastgate/fastgate.conf"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    user = subprocess.run([docker, "run", "--rm", "--entrypoint", "id", tag, "-u"],
                          capture_output=True, text=True, timeout=120)
    assert user.stdout.strip() != "0"  # not root


def test_the_build_configuration_raises_no_warning() -> None:
    # the old license table and an old setuptools printed deprecation warnings through
    # every `make demo`; as errors, any such warning fails this
    run = subprocess.run([sys.executable, "-W", "error", "setup.py", "-q", "--version"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    makefile = (ROOT / "Makefile").read_text()
    assert '"setuptools>=77"' in makefile
    assert "building fastgate's compiled modules" in makefile  # the minute of compiling, said
