"""``fastgate.proxy.symlinks``: nginx's component-by-component open, on a tree of links
— what each mode opens and refuses with which error, and where ``from=`` starts."""

from __future__ import annotations

import dataclasses
import errno
import os
from pathlib import Path

import pytest

from fastgate.config.model import Settings
from fastgate.proxy import symlinks
from fastgate.variables import Template


def _settings(mode: str, start: str | None = None) -> Settings:
    return dataclasses.replace(Settings(), disable_symlinks=mode,
                               disable_symlinks_from=Template(start, (start,))
                               if start is not None else None)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f.txt").write_text("f")
    os.symlink("f.txt", tmp_path / "dir" / "link.txt")
    os.symlink("dir", tmp_path / "dirlink")
    os.symlink(str(tmp_path / "dir" / "f.txt"), tmp_path / "dir" / "abs.txt")
    return tmp_path


def _error(path: Path, s: Settings) -> int | None:
    try:
        os.close(symlinks.open_file(str(path), os.O_RDONLY, s, None))
    except OSError as e:
        return e.errno
    return None


def test_modes(tree: Path) -> None:
    on, owner, off = _settings("on"), _settings("if_not_owner"), _settings("off")
    assert _error(tree / "dir" / "f.txt", on) is None
    assert _error(tree / "dir" / "link.txt", on) == errno.ELOOP
    assert _error(tree / "dirlink" / "f.txt", on) == errno.ENOTDIR
    assert _error(tree / "dir" / "abs.txt", on) == errno.ELOOP
    assert _error(tree / "dir" / "link.txt", owner) is None
    assert _error(tree / "dirlink" / "f.txt", owner) is None
    assert _error(tree / "dirlink" / "link.txt", off) is None
    assert _error(tree / "dir" / "missing", on) == errno.ENOENT
    assert symlinks.file_info(str(tree / "dir") + "/", on, None).st_size >= 0


@pytest.mark.skipif(os.geteuid() != 0, reason="a link owned by another user needs root")
def test_if_not_owner_refuses_another_owners_link(tree: Path) -> None:
    os.lchown(tree / "dir" / "link.txt", 65534, 65534)
    assert _error(tree / "dir" / "link.txt", _settings("if_not_owner")) == errno.ELOOP


def test_from(tree: Path) -> None:
    base = str(tree / "dirlink")
    s = _settings("on", base)
    assert symlinks.policy(s, None, base + "/f.txt") == ("on", len(base))
    assert symlinks.policy(s, None, base) == ("off", 0)
    assert symlinks.policy(_settings("on", base + "/"), None, base + "/f.txt") == (
        "on", len(base))
    assert symlinks.policy(s, None, base + "x/f.txt") == ("on", 0)
    assert _error(tree / "dirlink" / "f.txt", s) is None  # (the part from= names)
    assert _error(tree / "dirlink" / "link.txt", s) == errno.ELOOP
