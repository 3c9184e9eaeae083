"""The mp4 module's cut (fastgate.proxy.mp4) in parts: nginx's time arguments, the
cuts nginx declines, and files no cut may crash on — any bytes give a cut, the whole
file or an Mp4Error (nginx's 500), and a cut never names bytes outside the file. (Cuts
compared with nginx byte for byte: the parity test.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mp4_sample import sample_mp4

from fastgate.config import ConfigError, load_config
from fastgate.proxy import mp4


@pytest.mark.parametrize("text,want", [
    ("2", 2000), ("2.5", 2500), ("2.5678", 2567), (".5", 500), ("0", 0), ("", None),
    ("1.2.3", None), ("-1", None), ("abc", None), ("99999999999999999999", None),
])
def test_times_as_nginx_reads_them(text: str, want: int | None) -> None:
    assert mp4.atofp(text) == want


def _cut(tmp_path: Path, data: bytes, start: int, length: int = 0,
         key_frame: bool = False) -> list[bytes | tuple[int, int]] | None:
    path = tmp_path / "f.mp4"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        return mp4.cut(fd, str(path), len(data), start, length, 512 * 1024, 10 << 20,
                       key_frame)
    finally:
        os.close(fd)


def _body(data: bytes, parts: list[bytes | tuple[int, int]]) -> bytes:
    return b"".join(p if isinstance(p, bytes) else data[p[0]:p[1]] for p in parts)


def test_a_cut_is_a_smaller_file_that_starts_as_an_mp4(tmp_path: Path) -> None:
    data = sample_mp4()
    parts = _cut(tmp_path, data, 2500)
    assert parts is not None
    body = _body(data, parts)
    assert body[4:8] == b"ftyp" and b"moov" in body[:64] and len(body) < len(data)
    assert b"udta" not in body  # (dropped, as nginx drops it)
    # cut again from its own start: nothing more to cut, the same moov
    again = _cut(tmp_path, body, 0, 0)
    assert again is None  # (the moov before mdat and nothing to cut: the file as it is)


def test_what_nginx_declines_and_refuses(tmp_path: Path) -> None:
    assert _cut(tmp_path, sample_mp4(), 0) is None  # moov first, start=0: the whole file
    assert _cut(tmp_path, sample_mp4(moov_first=False), 0) is not None  # (mdat first)
    with pytest.raises(mp4.Mp4Error, match="start time exceeds file duration"):
        _cut(tmp_path, sample_mp4(), 20_000)
    with pytest.raises(mp4.Mp4Error, match="no mp4 trak atoms were found"):
        _cut(tmp_path, b"\0\0\0\x10ftypisom\0\0\0\0\0\0\0\x08mdat", 1000)
    with pytest.raises(mp4.Mp4Error, match="mp4 atom too large"):
        _cut(tmp_path, b"\0\0\0\x40ftypisom", 1000)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30000), st.integers(0, 255)), max_size=6),
       st.integers(0, 12000), st.integers(0, 12000), st.booleans(),
       st.integers(0, 200000), st.sampled_from([0, 1]))
def test_no_file_makes_it_fail(tmp_path_factory: pytest.TempPathFactory,
                               edits: list[tuple[int, int]], start: int, length: int,
                               key_frame: bool, truncate: int, which: int) -> None:
    data = bytearray(sample_mp4(moov_first=bool(which)))
    for at, value in edits:
        if at < len(data):
            data[at] = value
    data = data[:truncate] if truncate < len(data) else data
    tmp = tmp_path_factory.mktemp("mp4")
    try:
        parts = _cut(tmp, bytes(data), start, length, key_frame)
    except mp4.Mp4Error:
        return
    for part in parts or ():
        if isinstance(part, tuple):
            assert 0 <= part[0] <= part[1] <= len(data)


def test_mp4_is_a_location_content_handler(tmp_path: Path) -> None:
    conf = tmp_path / "f.conf"
    conf.write_text("http { server { listen 127.0.0.1:8080; location /v/ { mp4; "
                    "mp4_buffer_size 1m; mp4_max_buffer_size 20m; mp4_start_key_frame on; "
                    "} } }")
    loc = load_config(str(conf)).servers[0].locations.find("/v/")[0]
    assert loc is not None and loc.own_content == "mp4"
    assert (loc.settings.mp4_buffer_size, loc.settings.mp4_max_buffer_size,
            loc.settings.mp4_start_key_frame) == (1 << 20, 20 << 20, True)
    conf.write_text("http { server { listen 127.0.0.1:8080; mp4; } }")
    with pytest.raises(ConfigError, match='"mp4" directive is not allowed here'):
        load_config(str(conf))
