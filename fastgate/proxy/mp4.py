"""nginx's mp4 module (``ngx_http_mp4_module``): an MP4 file cut by time for
pseudo-streaming — ``?start=SECONDS`` and ``?end=SECONDS`` (milliseconds after the
dot) give the file from the sample at ``start`` (with ``mp4_start_key_frame on``, from
the key frame before it, the frames before ``start`` hidden by an edit list) to the one
at ``end``: a new ``moov`` whose sample tables (``stts``, ``stss``, ``ctts``, ``stsc``,
``stsz``, ``stco``/``co64``) and durations describe only that part, then the part of
``mdat`` it needs.

A port of nginx 1.22's code, state for state, so the bytes are nginx's: the atoms it
keeps and in its order (a ``moov``'s others — ``udta``, a track's ``edts``... — are
dropped as nginx drops them), its checks and their messages. ``cut`` answers None where
nginx sends the file as it is (no ``start``/``end``; a ``moov`` before ``mdat`` and
nothing to cut) and raises ``Mp4Error`` where nginx answers 500."""

from __future__ import annotations

import os
import struct

from fastgate.errors import FastgateError

# the slots of a track's output, in nginx's order (NGX_HTTP_MP4_*_ATOM/_DATA)
(TRAK, TKHD, EDTS, ELST, MDIA, MDHD, HDLR, MINF, VMHD, SMHD, DINF, STBL, STSD, STTS,
 STTS_DATA, STSS, STSS_DATA, CTTS, CTTS_DATA, STSC, STSC_START, STSC_DATA, STSC_END,
 STSZ, STSZ_DATA, STCO, STCO_DATA, CO64, CO64_DATA) = range(29)
_SLOTS = 29

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF


class Mp4Error(FastgateError):
    """The file cannot be cut (nginx answers 500); the reason is logged."""


class _Declined(FastgateError):  # noqa: N818 - nginx's NGX_DECLINED, not an error
    """Not this track (its duration ends before the start), or not the file."""


def _u32(b: bytearray | bytes, at: int) -> int:
    return int.from_bytes(b[at:at + 4], "big")


def _u64(b: bytearray | bytes, at: int) -> int:
    return int.from_bytes(b[at:at + 8], "big")


def _set32(b: bytearray, at: int, n: int) -> None:
    b[at:at + 4] = (n & _U32).to_bytes(4, "big")


def _set64(b: bytearray, at: int, n: int) -> None:
    b[at:at + 8] = (n & _U64).to_bytes(8, "big")


class _Buf:
    """A part of the output: ``data[pos:last]`` (nginx's ngx_buf_t in memory)."""

    __slots__ = ("data", "pos", "last")

    def __init__(self, data: bytearray, pos: int, last: int) -> None:
        self.data = data
        self.pos = pos
        self.last = last

    def bytes(self) -> bytes:
        return bytes(self.data[self.pos:self.last])


class _Trak:
    def __init__(self) -> None:
        self.out: list[_Buf | None] = [None] * _SLOTS
        self.timescale = 0
        self.time_to_sample_entries = 0
        self.sample_to_chunk_entries = 0
        self.sync_samples_entries = 0
        self.composition_offset_entries = 0
        self.sample_sizes_entries = 0
        self.chunks = 0
        self.start_sample = 0
        self.end_sample = 0
        self.start_chunk = 0
        self.end_chunk = 0
        self.start_chunk_samples = 0
        self.end_chunk_samples = 0
        self.start_chunk_samples_size = 0
        self.end_chunk_samples_size = 0
        self.duration = 0
        self.prefix = 0
        self.movie_duration = 0
        self.start_offset = 0
        self.end_offset = 0
        self.tkhd_size = 0
        self.mdhd_size = 0
        self.hdlr_size = 0
        self.vmhd_size = 0
        self.smhd_size = 0
        self.dinf_size = 0
        self.size = 0


def atofp(text: str, point: int = 3) -> int | None:
    """nginx's ngx_http_mp4_atofp: "12.5" as 12500 (``point`` digits after the dot,
    more allowed and dropped); None when it is not such a number."""
    if not text:
        return None
    value = 0
    dot = False
    for ch in text:
        if ch == ".":
            if dot:
                return None
            dot = True
            continue
        if not "0" <= ch <= "9":
            return None
        if point == 0:
            continue
        value = value * 10 + ord(ch) - 48
        point -= dot
    value *= 10 ** point
    return value if value < 1 << 63 else None


class _File:
    """One cut: nginx's ngx_http_mp4_file_t."""

    def __init__(self, fd: int, name: str, end: int, start: int, length: int,
                 buffer_size: int, max_buffer_size: int, start_key_frame: bool) -> None:
        self.fd = fd
        self.name = name
        self.end = end
        self.start = start
        self.length = length
        self.buffer_size = buffer_size
        self.max_buffer_size = max_buffer_size
        self.start_key_frame = start_key_frame
        self.offset = 0
        self.content_length = 0
        self.timescale = 0
        self.traks: list[_Trak] = []
        self.ftyp: bytearray | None = None
        self.ftyp_size = 0
        self.moov: bytearray | None = None  # the moov atom's data, read whole
        self.moov_size = 0
        self.moov_at = 0  # the file offset of moov's data (moov[i] is at moov_at + i)
        self.mvhd: _Buf | None = None
        self.mdat_seen = False
        self.mdat_pos = 0
        self.mdat_last = 0

    def error(self, what: str) -> Mp4Error:
        return Mp4Error(what.replace("NAME", f'"{self.name}"'))

    # --- reading atoms ----------------------------------------------------------------

    def _head(self, size: int) -> bytes:
        """``size`` bytes at the offset, from the file or the moov in memory."""
        moov = self.moov
        if moov is not None and self.moov_at <= self.offset \
                and self.offset + size <= self.moov_at + len(moov):
            at = self.offset - self.moov_at
            return bytes(moov[at:at + size])
        if self.offset + size > self.end:
            raise self.error("NAME mp4 file truncated")
        data = os.pread(self.fd, size, self.offset)
        if len(data) != size:
            raise self.error(f"read only {len(data)} of {size} from NAME")
        return data

    def read_atoms(self, handlers: dict[bytes, object], data_size: int) -> None:
        end = self.offset + data_size
        while self.offset < end:
            head = self._head(4)
            size = _u32(head, 0)
            header = 8
            if size == 0:
                return  # (the atoms end here)
            if size < 8:
                if size != 1:
                    raise self.error(f"NAME mp4 atom is too small:{size}")
                head = self._head(16)
                size = _u64(head, 8)
                header = 16
                if size < 16:
                    raise self.error(f"NAME mp4 atom is too small:{size}")
            name = self._head(8)[4:8]
            if self.offset + size > end:
                raise self.error(f"NAME mp4 atom too large:{size}")
            handler = handlers.get(name)
            if handler is None:
                self.offset += size
                continue
            self.offset += header
            handler(size - header)  # type: ignore[operator]

    def _atom(self, data_size: int) -> tuple[int, int]:
        """The atom just entered, in the moov buffer: where its 8-byte header (nginx's
        ngx_mp4_atom_header, the 8 bytes before its data) and its data start."""
        at = self.offset - self.moov_at
        return at - 8, at

    def _next(self, n: int) -> None:
        self.offset += n

    def _trak(self) -> _Trak:
        return self.traks[-1]

    # --- the top level ----------------------------------------------------------------

    def ftyp_atom(self, data_size: int) -> None:
        if data_size > 1024 or self.offset + data_size > self.end:
            raise self.error(f"NAME mp4 ftyp atom is too large:{data_size}")
        if self.ftyp is not None:
            raise self.error("duplicate mp4 ftyp atom in NAME")
        size = 8 + data_size
        self.ftyp = bytearray(struct.pack(">I4s", size, b"ftyp"))
        self.ftyp += os.pread(self.fd, data_size, self.offset)
        self.ftyp_size = size
        self.content_length = size
        self._next(data_size)

    def moov_atom(self, data_size: int) -> None:
        no_mdat = not self.mdat_seen
        if no_mdat and self.start == 0 and self.length == 0:
            raise _Declined  # the moov before the mdat, the whole file asked for
        if self.moov is not None:
            raise self.error("duplicate mp4 moov atom in NAME")
        if data_size > self.buffer_size and data_size > self.max_buffer_size:
            raise self.error(f"NAME mp4 moov atom is too large:{data_size}, you may want "
                             f"to increase mp4_max_buffer_size")
        if self.offset + data_size > self.end:
            raise self.error("NAME mp4 file truncated")
        self.moov_at = self.offset - 8  # (its header's 8 bytes are written to)
        self.moov = bytearray(b"\0" * 8) + bytearray(os.pread(self.fd, data_size,
                                                               self.offset))
        if len(self.moov) != 8 + data_size:
            raise self.error("NAME mp4 file truncated")
        self.read_atoms({b"mvhd": self.mvhd_atom, b"trak": self.trak_atom,
                         b"cmov": self.cmov_atom}, data_size)
        if not no_mdat:
            self.offset = self.end  # (the atoms after it are not read)

    def mdat_atom(self, data_size: int) -> None:
        if self.mdat_seen:
            raise self.error("duplicate mp4 mdat atom in NAME")
        self.mdat_seen = True
        self.mdat_last = self.offset + data_size
        if self.traks:
            self.offset = self.end
        else:
            self._next(data_size)

    def update_mdat_atom(self, start_offset: int, end_offset: int) -> tuple[bytes, int]:
        size = end_offset - start_offset
        self.mdat_pos, self.mdat_last = start_offset, end_offset
        if size > _U32 - 8:
            header = struct.pack(">I4sQ", 1, b"mdat", 16 + size)
        else:
            header = struct.pack(">I4s", 8 + size, b"mdat")
        self.content_length += len(header) + size
        return header, len(header)

    # --- moov -------------------------------------------------------------------------

    def mvhd_atom(self, data_size: int) -> None:
        if self.mvhd is not None:
            raise self.error("duplicate mp4 mvhd atom in NAME")
        moov = self._buf()
        head, data = self._atom(data_size)
        moov[head + 4:head + 8] = b"mvhd"
        if data_size < 100:
            raise self.error("NAME mp4 mvhd atom too small")
        if moov[data] == 0:
            timescale, duration = _u32(moov, data + 12), _u32(moov, data + 16)
        else:
            if data_size < 112:
                raise self.error("NAME mp4 mvhd atom too small")
            timescale, duration = _u32(moov, data + 20), _u64(moov, data + 24)
        self.timescale = timescale
        start_time = self.start * timescale // 1000
        if duration < start_time:
            raise self.error("NAME mp4 start time exceeds file duration")
        duration -= start_time
        if self.length:
            duration = min(duration, self.length * timescale // 1000)
        size = 8 + data_size
        _set32(moov, head, size)
        if moov[data] == 0:
            _set32(moov, data + 16, duration)
        else:
            _set64(moov, data + 24, duration)
        self.mvhd = _Buf(moov, head, head + size)
        self._next(data_size)

    def _buf(self) -> bytearray:
        assert self.moov is not None
        return self.moov

    def cmov_atom(self, data_size: int) -> None:
        raise self.error("NAME mp4 compressed moov atom (cmov) is not supported")

    def trak_atom(self, data_size: int) -> None:
        trak = _Trak()
        self.traks.append(trak)
        moov = self._buf()
        head, _ = self._atom(data_size)
        moov[head + 4:head + 8] = b"trak"
        trak.out[TRAK] = _Buf(moov, head, head + 8)
        file_end = self.offset + data_size
        try:
            self.read_atoms({b"tkhd": self.tkhd_atom, b"mdia": self.mdia_atom}, data_size)
        except _Declined:
            self.traks.pop()  # (this track ends before the start: left out)
            self.offset = file_end

    def tkhd_atom(self, data_size: int) -> None:
        moov = self._buf()
        head, data = self._atom(data_size)
        moov[head + 4:head + 8] = b"tkhd"
        if data_size < 84:
            raise self.error("NAME mp4 tkhd atom too small")
        if moov[data] == 0:
            duration = _u32(moov, data + 20)
        else:
            if data_size < 96:
                raise self.error("NAME mp4 tkhd atom too small")
            duration = _u64(moov, data + 28)
        start_time = self.start * self.timescale // 1000
        if duration <= start_time:
            raise _Declined
        duration -= start_time
        if self.length:
            duration = min(duration, self.length * self.timescale // 1000)
        trak = self._trak()
        if trak.out[TKHD] is not None:
            raise self.error("duplicate mp4 tkhd atom in NAME")
        size = 8 + data_size
        trak.tkhd_size = size
        trak.movie_duration = duration
        _set32(moov, head, size)
        if moov[data] == 0:
            _set32(moov, data + 20, duration)
        else:
            _set64(moov, data + 28, duration)
        trak.out[TKHD] = _Buf(moov, head, head + size)
        self._next(data_size)

    def _container(self, slot: int, name: bytes, data_size: int,
                   children: dict[bytes, object]) -> None:
        moov = self._buf()
        head, _ = self._atom(data_size)
        moov[head + 4:head + 8] = name
        trak = self._trak()
        if trak.out[slot] is not None:
            raise self.error(f"duplicate mp4 {name.decode()} atom in NAME")
        trak.out[slot] = _Buf(moov, head, head + 8)
        self.read_atoms(children, data_size)

    def mdia_atom(self, data_size: int) -> None:
        self._container(MDIA, b"mdia", data_size, {
            b"mdhd": self.mdhd_atom, b"hdlr": self.hdlr_atom, b"minf": self.minf_atom})

    def minf_atom(self, data_size: int) -> None:
        self._container(MINF, b"minf", data_size, {
            b"vmhd": self.vmhd_atom, b"smhd": self.smhd_atom, b"dinf": self.dinf_atom,
            b"stbl": self.stbl_atom})

    def stbl_atom(self, data_size: int) -> None:
        self._container(STBL, b"stbl", data_size, {
            b"stsd": self.stsd_atom, b"stts": self.stts_atom, b"stss": self.stss_atom,
            b"ctts": self.ctts_atom, b"stsc": self.stsc_atom, b"stsz": self.stsz_atom,
            b"stco": self.stco_atom, b"co64": self.co64_atom})

    def mdhd_atom(self, data_size: int) -> None:
        moov = self._buf()
        head, data = self._atom(data_size)
        moov[head + 4:head + 8] = b"mdhd"
        if data_size < 24:
            raise self.error("NAME mp4 mdhd atom too small")
        if moov[data] == 0:
            timescale, duration = _u32(moov, data + 12), _u32(moov, data + 16)
        else:
            if data_size < 36:
                raise self.error("NAME mp4 mdhd atom too small")
            timescale, duration = _u32(moov, data + 20), _u64(moov, data + 24)
        start_time = self.start * timescale // 1000
        if duration <= start_time:
            raise _Declined
        duration -= start_time
        if self.length:
            duration = min(duration, self.length * timescale // 1000)
        trak = self._trak()
        if trak.out[MDHD] is not None:
            raise self.error("duplicate mp4 mdhd atom in NAME")
        size = 8 + data_size
        trak.mdhd_size = size
        trak.timescale = timescale
        trak.duration = duration
        _set32(moov, head, size)
        trak.out[MDHD] = _Buf(moov, head, head + size)
        self._next(data_size)

    def _whole(self, slot: int, name: bytes, data_size: int, clash: tuple[int, ...]) -> int:
        """An atom kept whole (hdlr, vmhd, smhd, dinf): its size."""
        moov = self._buf()
        head, _ = self._atom(data_size)
        size = 8 + data_size
        _set32(moov, head, size)
        moov[head + 4:head + 8] = name
        trak = self._trak()
        if any(trak.out[s] is not None for s in clash):
            raise self.error(f"duplicate mp4 {name.decode()} atom in NAME"
                             if len(clash) == 1 else
                             "duplicate mp4 vmhd/smhd atom in NAME")
        trak.out[slot] = _Buf(moov, head, head + size)
        self._next(data_size)
        return size

    def hdlr_atom(self, data_size: int) -> None:
        self._trak().hdlr_size = self._whole(HDLR, b"hdlr", data_size, (HDLR,))

    def vmhd_atom(self, data_size: int) -> None:
        self._trak().vmhd_size += self._whole(VMHD, b"vmhd", data_size, (VMHD, SMHD))

    def smhd_atom(self, data_size: int) -> None:
        self._trak().smhd_size += self._whole(SMHD, b"smhd", data_size, (VMHD, SMHD))

    def dinf_atom(self, data_size: int) -> None:
        self._trak().dinf_size += self._whole(DINF, b"dinf", data_size, (DINF,))

    def stsd_atom(self, data_size: int) -> None:
        moov = self._buf()
        head, _ = self._atom(data_size)
        size = 8 + data_size
        _set32(moov, head, size)
        moov[head + 4:head + 8] = b"stsd"
        if data_size < 16:
            raise self.error("NAME mp4 stsd atom too small")
        trak = self._trak()
        if trak.out[STSD] is not None:
            raise self.error("duplicate mp4 stsd atom in NAME")
        trak.out[STSD] = _Buf(moov, head, head + size)
        trak.size += size
        self._next(data_size)

    def _table(self, slot: int, name: bytes, data_size: int, fixed: int, entry: int,
               clash: tuple[int, ...]) -> int:
        """A table atom (stts, stss, ctts, stsc, stco, co64): its header part (``fixed``
        bytes of data) and its entries as two parts; the number of entries."""
        moov = self._buf()
        head, data = self._atom(data_size)
        moov[head + 4:head + 8] = name
        label = name.decode()
        if data_size < fixed:
            raise self.error(f"NAME mp4 {label} atom too small")
        entries = _u32(moov, data + fixed - 4)
        if fixed + entries * entry > data_size:
            raise self.error(f"NAME mp4 {label} atom too small")
        trak = self._trak()
        if any(trak.out[s] is not None for s in clash):
            raise self.error(f"duplicate mp4 {label} atom in NAME" if len(clash) == 1
                             else "duplicate mp4 stco/co64 atom in NAME")
        table = data + fixed
        trak.out[slot] = _Buf(moov, head, table)
        trak.out[slot + 1] = _Buf(moov, table, table + entries * entry)
        self._next(data_size)
        return entries

    def stts_atom(self, data_size: int) -> None:
        self._trak().time_to_sample_entries = self._table(STTS, b"stts", data_size, 8, 8,
                                                          (STTS,))

    def stss_atom(self, data_size: int) -> None:
        self._trak().sync_samples_entries = self._table(STSS, b"stss", data_size, 8, 4,
                                                        (STSS,))

    def ctts_atom(self, data_size: int) -> None:
        self._trak().composition_offset_entries = self._table(CTTS, b"ctts", data_size, 8,
                                                              8, (CTTS,))

    def stsc_atom(self, data_size: int) -> None:
        trak = self._trak()
        trak.sample_to_chunk_entries = self._table(STSC, b"stsc", data_size, 8, 12, (STSC,))
        # (its data is slot STSC_DATA, not the one after STSC)
        trak.out[STSC_DATA], trak.out[STSC_START] = trak.out[STSC_START], None

    def stco_atom(self, data_size: int) -> None:
        self._trak().chunks = self._table(STCO, b"stco", data_size, 8, 4, (STCO, CO64))

    def co64_atom(self, data_size: int) -> None:
        self._trak().chunks = self._table(CO64, b"co64", data_size, 8, 8, (STCO, CO64))

    def stsz_atom(self, data_size: int) -> None:
        moov = self._buf()
        head, data = self._atom(data_size)
        moov[head + 4:head + 8] = b"stsz"
        if data_size < 12:
            raise self.error("NAME mp4 stsz atom too small")
        uniform, entries = _u32(moov, data + 4), _u32(moov, data + 8)
        trak = self._trak()
        if trak.out[STSZ] is not None:
            raise self.error("duplicate mp4 stsz atom in NAME")
        trak.sample_sizes_entries = entries
        table = data + 12
        trak.out[STSZ] = _Buf(moov, head, table)
        if uniform == 0:
            if 12 + entries * 4 > data_size:
                raise self.error("NAME mp4 stsz atom too small")
            trak.out[STSZ_DATA] = _Buf(moov, table, table + entries * 4)
        else:  # all samples of one size: kept as it is (nginx: "TODO: chunk samples")
            size = 8 + data_size
            _set32(moov, head, size)
            trak.size += size
        self._next(data_size)

    # --- the cut ----------------------------------------------------------------------

    def process(self) -> list[bytes | tuple[int, int]]:
        self.read_atoms({b"ftyp": self.ftyp_atom, b"moov": self.moov_atom,
                         b"mdat": self.mdat_atom}, self.end)
        if not self.traks:
            raise self.error("no mp4 trak atoms were found in NAME")
        if not self.mdat_seen:
            raise self.error("no mp4 mdat atom was found in NAME")
        head: list[bytes] = []
        if self.ftyp is not None:
            head.append(bytes(self.ftyp))
        if self.mvhd is not None:
            self.moov_size += self.mvhd.last - self.mvhd.pos
        start_offset, end_offset = self.end, 0
        for trak in self.traks:
            self.update_stts(trak)
            self.update_stss(trak)
            self.update_ctts(trak)
            self.update_stsc(trak)
            self.update_stsz(trak)
            if trak.out[CO64_DATA] is not None:
                self.update_chunk_offsets(trak, CO64, 8)
            else:
                self.update_chunk_offsets(trak, STCO, 4)
            trak.size += 8  # stbl
            self._size(trak, STBL)
            trak.size += 8 + trak.vmhd_size + trak.smhd_size + trak.dinf_size
            self._size(trak, MINF)
            mdhd = trak.out[MDHD]
            if mdhd is not None:
                if mdhd.data[mdhd.pos + 8] == 0:
                    _set32(mdhd.data, mdhd.pos + 24, trak.duration)
                else:
                    _set64(mdhd.data, mdhd.pos + 32, trak.duration)
                trak.size += trak.mdhd_size
            trak.size += trak.hdlr_size
            trak.size += 8  # mdia
            self._size(trak, MDIA)
            trak.size += trak.tkhd_size
            self.update_edts(trak)
            trak.size += 8
            self._size(trak, TRAK)
            self.moov_size += trak.size
            start_offset = min(start_offset, trak.start_offset)
            end_offset = max(end_offset, trak.end_offset)
        end_offset = max(end_offset, start_offset)
        self.moov_size += 8
        self.content_length += self.moov_size
        if start_offset > self.mdat_last:
            raise self.error("start time is out mp4 mdat atom in NAME")
        mdat_header, mdat_header_size = self.update_mdat_atom(start_offset, end_offset)
        adjustment = self.ftyp_size + self.moov_size + mdat_header_size - start_offset
        for trak in self.traks:
            if trak.out[CO64_DATA] is not None:
                self._adjust(trak, CO64_DATA, 8, adjustment)
            else:
                self._adjust(trak, STCO_DATA, 4, adjustment)
        out: list[bytes | tuple[int, int]] = [*head, struct.pack(">I4s", self.moov_size,
                                                                 b"moov")]
        if self.mvhd is not None:
            out.append(self.mvhd.bytes())
        for trak in self.traks:
            out.extend(b.bytes() for b in trak.out if b is not None)
        out.append(mdat_header)
        if end_offset > start_offset:
            out.append((start_offset, end_offset))
        return out

    @staticmethod
    def _size(trak: _Trak, slot: int) -> None:
        buf = trak.out[slot]
        assert buf is not None
        _set32(buf.data, buf.pos, trak.size)

    def update_edts(self, trak: _Trak) -> None:
        if trak.prefix == 0:
            return
        trak.out[EDTS] = _Buf(bytearray(struct.pack(">I4s", 8 + 36, b"edts")), 0, 8)
        elst = struct.pack(">I4sB3sIQQHH", 36, b"elst", 1, b"\0\0\0", 1,
                           trak.movie_duration & _U64, trak.prefix & _U64, 1, 0)
        trak.out[ELST] = _Buf(bytearray(elst), 0, 36)
        trak.size += 8 + 36

    # stts

    def update_stts(self, trak: _Trak) -> None:
        data = trak.out[STTS_DATA]
        if data is None:
            raise self.error("no mp4 stts atoms were found in NAME")
        self.crop_stts(trak, True)
        self.crop_stts(trak, False)
        size = 16 + (data.last - data.pos)
        trak.size += size
        atom = trak.out[STTS]
        assert atom is not None
        _set32(atom.data, atom.pos, size)
        _set32(atom.data, atom.pos + 12, trak.time_to_sample_entries)

    def crop_stts(self, trak: _Trak, start: bool) -> None:
        if start:
            start_sec = self.start
        elif self.length:
            start_sec = self.length
        else:
            return
        data = trak.out[STTS_DATA]
        assert data is not None
        b = data.data
        start_time = start_sec * trak.timescale // 1000 + trak.prefix
        entries = trak.time_to_sample_entries
        start_sample = 0
        entry = data.pos
        count = duration = rest = 0
        while entry < data.last:
            count, duration = _u32(b, entry), _u32(b, entry + 4)
            if start_time < count * duration:
                start_sample += start_time // duration
                rest = (start_time // duration) & _U32
                break
            start_sample += count
            start_time = (start_time - ((count * duration) & _U32)) & _U64
            entries -= 1
            entry += 8
        else:
            if start:
                raise self.error("start time is out mp4 stts samples in NAME")
            trak.end_sample = trak.start_sample + start_sample
            return
        if start:
            key_prefix = self.seek_key_frame(trak, start_sample)
            start_sample -= key_prefix
            while rest < key_prefix:
                trak.prefix += rest * duration
                key_prefix -= rest
                entry -= 8
                entries += 1
                count, duration = _u32(b, entry), _u32(b, entry + 4)
                rest = count
            trak.prefix += key_prefix * duration
            trak.duration += trak.prefix
            rest -= key_prefix
            _set32(b, entry, count - rest)
            data.pos = entry
            trak.time_to_sample_entries = entries
            trak.start_sample = start_sample
        else:
            _set32(b, entry, rest)
            data.last = entry + 8
            trak.time_to_sample_entries -= entries - 1
            trak.end_sample = trak.start_sample + start_sample

    def seek_key_frame(self, trak: _Trak, start_sample: int) -> int:
        if not self.start_key_frame:
            return 0
        data = trak.out[STSS_DATA]
        if data is None:
            return 0
        start_sample = (start_sample + 1) & _U32
        key_prefix = 0
        for at in range(data.pos, data.last, 4):
            sample = _u32(data.data, at)
            if sample > start_sample:
                break
            key_prefix = start_sample - sample
        return key_prefix

    # stss

    def update_stss(self, trak: _Trak) -> None:
        data = trak.out[STSS_DATA]
        if data is None:
            return
        self.crop_stss(trak, True)
        self.crop_stss(trak, False)
        if trak.sync_samples_entries:
            for at in range(data.pos, data.last, 4):
                _set32(data.data, at, _u32(data.data, at) - trak.start_sample)
        else:
            trak.out[STSS_DATA] = None
        size = 16 + (data.last - data.pos)
        trak.size += size
        atom = trak.out[STSS]
        assert atom is not None
        _set32(atom.data, atom.pos, size)
        _set32(atom.data, atom.pos + 12, trak.sync_samples_entries)

    def crop_stss(self, trak: _Trak, start: bool) -> None:
        if start:
            start_sample = trak.start_sample + 1
        elif self.length:
            start_sample = trak.end_sample + 1
        else:
            return
        data = trak.out[STSS_DATA]
        assert data is not None
        entries = trak.sync_samples_entries
        entry = data.pos
        while entry < data.last:
            if _u32(data.data, entry) >= start_sample:
                break
            entries -= 1
            entry += 4
        if start:
            data.pos = entry
            trak.sync_samples_entries = entries
        else:
            data.last = entry
            trak.sync_samples_entries -= entries

    # ctts

    def update_ctts(self, trak: _Trak) -> None:
        data = trak.out[CTTS_DATA]
        if data is None:
            return
        self.crop_ctts(trak, True)
        self.crop_ctts(trak, False)
        if trak.composition_offset_entries == 0:
            trak.out[CTTS] = trak.out[CTTS_DATA] = None
            return
        size = 16 + (data.last - data.pos)
        trak.size += size
        atom = trak.out[CTTS]
        assert atom is not None
        _set32(atom.data, atom.pos, size)
        _set32(atom.data, atom.pos + 12, trak.composition_offset_entries)

    def crop_ctts(self, trak: _Trak, start: bool) -> None:
        if start:
            start_sample = (trak.start_sample + 1) & _U32
        elif self.length:
            start_sample = (trak.end_sample - trak.start_sample + 1) & _U32
        else:
            return
        data = trak.out[CTTS_DATA]
        assert data is not None
        b = data.data
        entries = trak.composition_offset_entries
        entry = data.pos
        while entry < data.last:
            count = _u32(b, entry)
            if start_sample <= count:
                rest = start_sample - 1
                break
            start_sample -= count
            entries -= 1
            entry += 8
        else:
            if start:
                data.pos = data.last
                trak.composition_offset_entries = 0
            return
        if start:
            _set32(b, entry, count - rest)
            data.pos = entry
            trak.composition_offset_entries = entries
        else:
            _set32(b, entry, rest)
            data.last = entry + 8
            trak.composition_offset_entries -= entries - 1

    # stsc

    def update_stsc(self, trak: _Trak) -> None:
        data = trak.out[STSC_DATA]
        if data is None:
            raise self.error("no mp4 stsc atoms were found in NAME")
        if trak.sample_to_chunk_entries == 0:
            raise self.error("zero number of entries in stsc atom in NAME")
        self.crop_stsc(trak, True)
        self.crop_stsc(trak, False)
        for at in range(data.pos, data.last, 12):
            _set32(data.data, at, _u32(data.data, at) - trak.start_chunk)
        size = 16 + trak.sample_to_chunk_entries * 12
        trak.size += size
        atom = trak.out[STSC]
        assert atom is not None
        _set32(atom.data, atom.pos, size)
        _set32(atom.data, atom.pos + 12, trak.sample_to_chunk_entries)

    def crop_stsc(self, trak: _Trak, start: bool) -> None:
        entries = trak.sample_to_chunk_entries - 1
        if start:
            start_sample = trak.start_sample & _U32
        elif self.length:
            start_sample = (trak.end_sample - trak.start_sample) & _U32
            first = trak.out[STSC_START]
            if first is not None:
                samples = _u32(first.data, first.pos + 4)
                entries -= 1
                if samples > start_sample:
                    samples = start_sample
                    _set32(first.data, first.pos + 4, samples)
                start_sample -= samples
        else:
            return
        data = trak.out[STSC_DATA]
        assert data is not None
        b = data.data
        entry = data.pos
        chunk, samples, sid = _u32(b, entry), _u32(b, entry + 4), _u32(b, entry + 8)
        prev_samples = 0
        entry += 12
        while entry < data.last:
            next_chunk = _u32(b, entry)
            n = ((next_chunk - chunk) * samples) & _U32
            if start_sample < n:
                break
            start_sample -= n
            prev_samples = samples
            chunk = next_chunk
            samples, sid = _u32(b, entry + 4), _u32(b, entry + 8)
            entries -= 1
            entry += 12
        else:
            next_chunk = trak.chunks + 1
            n = ((next_chunk - chunk) * samples) & _U32
            if start_sample > n:
                raise self.error(f"{'start' if start else 'end'} time is out mp4 stsc "
                                 f"chunks in NAME")
        entries += 1
        entry -= 12
        if samples == 0:
            raise self.error("zero number of samples in NAME")
        target_chunk = chunk - 1 + start_sample // samples
        chunk_samples = start_sample % samples
        if start:
            data.pos = entry
            trak.sample_to_chunk_entries = entries
            trak.start_chunk = target_chunk
            trak.start_chunk_samples = chunk_samples
            _set32(b, entry, trak.start_chunk + 1)
            samples -= chunk_samples
        else:
            if start_sample:
                data.last = entry + 12
                trak.sample_to_chunk_entries -= entries - 1
                trak.end_chunk_samples = samples
            else:
                data.last = entry
                trak.sample_to_chunk_entries -= entries
                trak.end_chunk_samples = prev_samples
            if chunk_samples:
                trak.end_chunk = target_chunk + 1
                trak.end_chunk_samples = chunk_samples
            else:
                trak.end_chunk = target_chunk
            samples = chunk_samples
            next_chunk = chunk + 1
        if chunk_samples and next_chunk - target_chunk == 2:
            _set32(b, entry + 4, samples)
        elif chunk_samples and start:
            first_entry = bytearray(struct.pack(">III", 1, samples & _U32, sid))
            trak.out[STSC_START] = _Buf(first_entry, 0, 12)
            _set32(b, entry, trak.start_chunk + 2)
            trak.sample_to_chunk_entries += 1
        elif chunk_samples:
            last_entry = bytearray(struct.pack(
                ">III", (trak.end_chunk - trak.start_chunk) & _U32, samples & _U32, sid))
            trak.out[STSC_END] = _Buf(last_entry, 0, 12)
            trak.sample_to_chunk_entries += 1

    # stsz

    def update_stsz(self, trak: _Trak) -> None:
        data = trak.out[STSZ_DATA]
        if data is None:
            return
        entries = trak.sample_sizes_entries
        if trak.start_sample > entries:
            raise self.error("start time is out mp4 stsz samples in NAME")
        entries -= trak.start_sample
        data.pos += trak.start_sample * 4
        b = data.data
        trak.start_chunk_samples_size += sum(
            _u32(b, at) for at in range(data.pos - trak.start_chunk_samples * 4,
                                        data.pos, 4))
        if trak.start_chunk_samples_size > self.end:
            raise self.error("too large mp4 start samples size in NAME")
        if self.length:
            if trak.end_sample - trak.start_sample > entries:
                raise self.error("end time is out mp4 stsz samples in NAME")
            entries = trak.end_sample - trak.start_sample
            data.last = data.pos + entries * 4
            trak.end_chunk_samples_size += sum(
                _u32(b, at) for at in range(data.last - trak.end_chunk_samples * 4,
                                            data.last, 4))
            if trak.end_chunk_samples_size > self.end:
                raise self.error("too large mp4 end samples size in NAME")
        size = 20 + (data.last - data.pos)
        trak.size += size
        atom = trak.out[STSZ]
        assert atom is not None
        _set32(atom.data, atom.pos, size)
        _set32(atom.data, atom.pos + 16, entries)

    # stco, co64

    def update_chunk_offsets(self, trak: _Trak, slot: int, width: int) -> None:
        label = "stco" if width == 4 else "co64"
        data = trak.out[slot + 1]
        if data is None:
            raise self.error(f"no mp4 {label} atoms were found in NAME")
        if trak.start_chunk > trak.chunks:
            raise self.error(f"start time is out mp4 {label} chunks in NAME")
        get = _u32 if width == 4 else _u64
        put = _set32 if width == 4 else _set64
        b = data.data
        data.pos += trak.start_chunk * width
        chunk_offset = get(b, data.pos)
        samples_size = trak.start_chunk_samples_size
        if chunk_offset > self.end - samples_size or (
                width == 4 and chunk_offset + samples_size > _U32):
            raise self.error(f"start time is out mp4 {label} chunks in NAME")
        trak.start_offset = chunk_offset + samples_size
        put(b, data.pos, trak.start_offset)
        if self.length:
            if trak.end_chunk > trak.chunks:
                raise self.error(f"end time is out mp4 {label} chunks in NAME")
            entries = trak.end_chunk - trak.start_chunk
            data.last = data.pos + entries * width
            if entries:
                chunk_offset = get(b, data.last - width)
                samples_size = trak.end_chunk_samples_size
                if chunk_offset > self.end - samples_size or (
                        width == 4 and chunk_offset + samples_size > _U32):
                    raise self.error(f"end time is out mp4 {label} chunks in NAME")
                trak.end_offset = chunk_offset + samples_size
        else:
            entries = trak.chunks - trak.start_chunk
            trak.end_offset = self.mdat_last
        if entries == 0:
            trak.start_offset = self.end
            trak.end_offset = 0
        size = 16 + (data.last - data.pos)
        trak.size += size
        atom = trak.out[slot]
        assert atom is not None
        _set32(atom.data, atom.pos, size)
        _set32(atom.data, atom.pos + 12, entries)

    @staticmethod
    def _adjust(trak: _Trak, slot: int, width: int, adjustment: int) -> None:
        data = trak.out[slot]
        assert data is not None
        get = _u32 if width == 4 else _u64
        put = _set32 if width == 4 else _set64
        if width == 4:  # (nginx adds it as an int32_t)
            adjustment = ((adjustment + (1 << 31)) & _U32) - (1 << 31)
        for at in range(data.pos, data.last, width):
            put(data.data, at, get(data.data, at) + adjustment)


def cut(fd: int, name: str, size: int, start: int, length: int, buffer_size: int,
        max_buffer_size: int, start_key_frame: bool
        ) -> list[bytes | tuple[int, int]] | None:
    """The body of the file cut from ``start`` ms for ``length`` ms (0: to its end) —
    bytes, and (start, end) ranges of the file — or None to send it whole;
    ``Mp4Error`` when it cannot be cut."""
    mp4 = _File(fd, name, size, start, length, buffer_size, max_buffer_size,
                start_key_frame)
    try:
        return mp4.process()
    except _Declined:
        return None
    except OSError as e:
        raise mp4.error(f"pread() NAME failed ({e.errno}: {e.strerror})") from None


__all__ = ["Mp4Error", "atofp", "cut"]
