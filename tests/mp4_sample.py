"""A synthetic MP4 file for the mp4 module's tests: the atoms nginx's module reads (and
some it drops), a video track with key frames, composition offsets and chunks of
several sizes, an audio track, interleaved in ``mdat`` — no media, but tables and
offsets that agree, so a cut can be checked byte for byte against nginx's."""

from __future__ import annotations

import struct


def _atom(name: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), name) + body


def _full(name: bytes, version: int, *parts: bytes) -> bytes:
    return _atom(name, bytes([version, 0, 0, 0]), *parts)


class _Track:
    def __init__(self, kind: str, timescale: int, deltas: list[tuple[int, int]],
                 sizes: list[int], per_chunk: list[tuple[int, int]],
                 keys: list[int] | None, ctts: list[tuple[int, int]] | None) -> None:
        self.kind = kind
        self.timescale = timescale
        self.deltas = deltas  # stts: (count, delta)
        self.sizes = sizes  # one per sample
        self.per_chunk = per_chunk  # stsc: (first chunk, samples per chunk)
        self.keys = keys
        self.ctts = ctts
        self.chunks = self._chunks()

    @property
    def duration(self) -> int:
        return sum(c * d for c, d in self.deltas)

    def _chunks(self) -> list[list[int]]:
        """The samples of each chunk, by their sizes."""
        out: list[list[int]] = []
        sample = 0
        table = [*self.per_chunk, (1 << 30, 0)]
        entry = 0
        chunk = 1
        while sample < len(self.sizes):
            while table[entry + 1][0] <= chunk:
                entry += 1
            n = table[entry][1]
            out.append(self.sizes[sample:sample + n])
            sample += n
            chunk += 1
        return out


def _tracks(uniform_audio: bool) -> list[_Track]:
    video_sizes = [100 + (i * 37) % 400 for i in range(300)]
    video = _Track("vide", 600, [(200, 20), (100, 20)], video_sizes,
                   [(1, 5), (10, 4), (20, 5)], list(range(1, 301, 30)),
                   [(1, 0), (2, 40), (3, 20), (294, 40)])
    audio_sizes = [64] * 430 if uniform_audio else [60 + i % 9 for i in range(430)]
    audio = _Track("soun", 44100, [(430, 1024)], audio_sizes, [(1, 10), (40, 8)], None,
                   None)
    return [video, audio]


def _trak(t: _Track, offsets: list[int], co64: bool, uniform: bool, version: int) -> bytes:
    movie = t.duration * 1000 // t.timescale
    if version == 0:
        tkhd = _full(b"tkhd", 0, struct.pack(">IIIII", 0, 0, 1, 0, movie), b"\0" * 8,
                     b"\0" * 8, b"\0" * 36, struct.pack(">II", 320 << 16, 240 << 16))
        mdhd = _full(b"mdhd", 0, struct.pack(">IIII", 0, 0, t.timescale, t.duration),
                     b"\x55\xc4\0\0")
    else:
        tkhd = _full(b"tkhd", 1, struct.pack(">QQIIQ", 0, 0, 1, 0, movie), b"\0" * 8,
                     b"\0" * 8, b"\0" * 36, struct.pack(">II", 320 << 16, 240 << 16))
        mdhd = _full(b"mdhd", 1, struct.pack(">QQIQ", 0, 0, t.timescale, t.duration),
                     b"\x55\xc4\0\0")
    hdlr = _full(b"hdlr", 0, b"\0" * 4, t.kind.encode(), b"\0" * 12, b"handler\0")
    media = (_full(b"vmhd", 0, b"\0" * 8) if t.kind == "vide"
             else _full(b"smhd", 0, b"\0" * 4))
    dinf = _atom(b"dinf", _full(b"dref", 0, struct.pack(">I", 1), _full(b"url ", 0)))
    stsd = _full(b"stsd", 0, struct.pack(">I", 1),
                 _atom(b"avc1" if t.kind == "vide" else b"mp4a", b"\0" * 20))
    stts = _full(b"stts", 0, struct.pack(">I", len(t.deltas)),
                 *(struct.pack(">II", c, d) for c, d in t.deltas))
    tables = [stsd, stts]
    if t.keys is not None:
        tables.append(_full(b"stss", 0, struct.pack(">I", len(t.keys)),
                            *(struct.pack(">I", k) for k in t.keys)))
    if t.ctts is not None:
        tables.append(_full(b"ctts", 0, struct.pack(">I", len(t.ctts)),
                            *(struct.pack(">II", c, o) for c, o in t.ctts)))
    tables.append(_full(b"stsc", 0, struct.pack(">I", len(t.per_chunk)),
                        *(struct.pack(">III", c, n, 1) for c, n in t.per_chunk)))
    if uniform:
        tables.append(_full(b"stsz", 0, struct.pack(">II", t.sizes[0], len(t.sizes))))
    else:
        tables.append(_full(b"stsz", 0, struct.pack(">II", 0, len(t.sizes)),
                            *(struct.pack(">I", s) for s in t.sizes)))
    if co64:
        tables.append(_full(b"co64", 0, struct.pack(">I", len(offsets)),
                            *(struct.pack(">Q", o) for o in offsets)))
    else:
        tables.append(_full(b"stco", 0, struct.pack(">I", len(offsets)),
                            *(struct.pack(">I", o) for o in offsets)))
    minf = _atom(b"minf", media, dinf, _atom(b"stbl", *tables))
    edts = _atom(b"edts", _full(b"elst", 0, struct.pack(">IIIHH", 1, movie, 0, 1, 0)))
    return _atom(b"trak", tkhd, edts, _atom(b"mdia", mdhd, hdlr, minf))


def sample_mp4(moov_first: bool = True, co64: bool = False, uniform_audio: bool = False,
               version: int = 0) -> bytes:
    """The file: ftyp, then moov and mdat in either order."""
    tracks = _tracks(uniform_audio)
    ftyp = _atom(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")
    # chunks interleaved: a video chunk, then an audio one, while either has chunks
    order: list[tuple[int, int]] = []
    for i in range(max(len(t.chunks) for t in tracks)):
        order += [(n, i) for n, t in enumerate(tracks) if i < len(t.chunks)]

    def build(mdat_at: int) -> tuple[bytes, bytes]:
        offsets: list[list[int]] = [[] for _ in tracks]
        data = bytearray()
        for n, i in order:
            offsets[n].append(mdat_at + 8 + len(data))
            for k, size in enumerate(tracks[n].chunks[i]):
                data += bytes([(n * 64 + i + k) % 251]) * size
        mvhd_body = (struct.pack(">IIII", 0, 0, 1000, 10_000) if version == 0
                     else struct.pack(">QQIQ", 0, 0, 1000, 10_000))
        mvhd = _full(b"mvhd", version, mvhd_body, struct.pack(">IH", 1 << 16, 1 << 8),
                     b"\0" * 10, b"\0" * 36, b"\0" * 24, struct.pack(">I", 3))
        udta = _atom(b"udta", _atom(b"name", b"sample"))
        moov = _atom(b"moov", mvhd, *(_trak(t, offsets[n], co64,
                                            uniform_audio and t.kind == "soun", version)
                                      for n, t in enumerate(tracks)), udta)
        return moov, _atom(b"mdat", bytes(data))

    if moov_first:
        moov, _ = build(0)
        moov, mdat = build(len(ftyp) + len(moov))
        return ftyp + moov + mdat
    moov, mdat = build(len(ftyp))
    return ftyp + mdat + moov
