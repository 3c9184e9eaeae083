"""A request body kept whole: in memory up to its limit, in a nameless file past it, read
back whole from its start as often as it is sent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgate.http.buffered_body import PIECE, BufferedBody, KeptBodyError


def _read(body: BufferedBody) -> bytes:
    whole = body.in_memory()
    return whole if whole is not None else b"".join(body.pieces())


def test_a_body_within_the_limit_stays_in_memory(tmp_path: Path) -> None:
    body = BufferedBody(10, str(tmp_path))
    for part in (b"abc", b"", b"defg", b"hij"):
        body.write(part)
    assert body.in_memory() == b"abcdefghij" and body.size == 10
    assert list(tmp_path.iterdir()) == []  # no file was made
    body.close()


def test_past_the_limit_it_goes_to_a_file_with_no_name(tmp_path: Path) -> None:
    body = BufferedBody(4, str(tmp_path))
    body.write(b"abc")
    body.write(b"defg")  # 7 > 4: what was in memory goes first
    body.write(b"x" * (PIECE + 5))
    assert body.in_memory() is None and body.size == 7 + PIECE + 5
    assert list(tmp_path.iterdir()) == []  # made nameless (or unlinked at once)
    pieces = list(body.pieces())
    assert [len(p) for p in pieces] == [PIECE, 12]
    assert b"".join(pieces) == b"abcdefg" + b"x" * (PIECE + 5)
    assert b"".join(body.pieces()) == b"".join(pieces)  # again, from its start
    body.close()


def test_a_directory_that_is_gone_fails_at_the_first_write_past_the_limit(
        tmp_path: Path) -> None:
    body = BufferedBody(2, str(tmp_path / "missing"))
    body.write(b"ab")
    with pytest.raises(OSError):
        body.write(b"c")
    body.close()


def test_a_file_cut_short_is_an_error_not_a_short_body(tmp_path: Path) -> None:
    body = BufferedBody(0, str(tmp_path))
    body.write(b"0123456789")
    f = body._file  # what a full disk, or another hand, could leave
    assert f is not None
    f.flush()
    os.ftruncate(f.fileno(), 4)
    with pytest.raises(KeptBodyError, match="ended at 4 of 10"):
        list(body.pieces())
    body.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=12), st.integers(0, 1000))
def test_what_is_read_back_is_what_was_written(parts: list[bytes], limit: int) -> None:
    body = BufferedBody(limit, None)
    try:
        for part in parts:
            body.write(part)
        whole = b"".join(parts)
        assert body.size == len(whole)
        assert _read(body) == whole
        assert (body.in_memory() is None) == (len(whole) > limit)
    finally:
        body.close()


def test_the_file_closes_with_its_last_holder(tmp_path: Path) -> None:
    body = BufferedBody(1, str(tmp_path))
    body.write(b"abc")
    body.hold()  # a mirror's copy
    body.close()  # its request is done with it
    assert b"".join(body.pieces()) == b"abc"  # the copy still reads it
    body.close()
    with pytest.raises(ValueError):  # (closed: its fd is gone)
        list(body.pieces())


@pytest.mark.parametrize("keep", ["on", "clean"])
def test_a_named_file_from_the_start_kept_or_cleaned(tmp_path: Path, keep: str) -> None:
    """client_body_in_file_only: a file with a name at once (an empty body has one),
    every byte in it; "on" leaves it, "clean" removes it with the last holder."""
    body = BufferedBody(1 << 20, str(tmp_path), keep)
    name = Path(body.name)
    assert name.parent == tmp_path and name.exists() and body.in_memory() is None
    body.write(b"small")
    assert b"".join(body.pieces()) == b"small"
    body.hold()
    body.close()
    assert name.exists()  # (a holder is left)
    body.close()
    assert name.exists() == (keep == "on")
    if keep == "on":
        assert name.read_bytes() == b"small" and oct(name.stat().st_mode & 0o777) == "0o600"


def test_a_spilled_body_is_named_when_asked_and_removed_with_its_last_holder(
        tmp_path: Path) -> None:
    """$request_body_file for a body past the buffer: the nameless file is linked into
    the directory when the name is asked for (once), and the name goes with the body."""
    body = BufferedBody(4, str(tmp_path))
    body.write(b"abc")
    assert body.file_name() == ""  # in memory: no file to name
    body.write(b"defgh")
    body.complete()
    assert list(tmp_path.iterdir()) == []
    name = Path(body.file_name())
    assert name.parent == tmp_path and body.file_name() == str(name)  # named once
    assert list(tmp_path.iterdir()) == [name] and name.read_bytes() == b"abcdefgh"
    assert oct(name.stat().st_mode & 0o777) == "0o600"
    body.write(b"ij")  # (the same file: what comes after is in it too)
    body.complete()
    assert b"".join(body.pieces()) == b"abcdefghij" and name.read_bytes() == b"abcdefghij"
    body.hold()
    body.close()
    assert name.exists()
    body.close()
    assert list(tmp_path.iterdir()) == []


def test_a_spilled_body_that_cannot_be_named_gives_no_name(tmp_path: Path) -> None:
    body = BufferedBody(1, str(tmp_path))
    body.write(b"abc")
    tmp_path.chmod(0o500)  # (the link cannot be made: the name is "", nothing breaks)
    try:
        assert body.file_name() == "" or os.geteuid() == 0
    finally:
        tmp_path.chmod(0o700)
        body.close()
    assert b"" not in [p.read_bytes() for p in tmp_path.iterdir()]
