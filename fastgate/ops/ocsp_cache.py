"""``ssl_ocsp_cache NAME:SIZE``: the OCSP answers about client certificates, kept in
shared memory that every worker of an instance reads and writes (as nginx's shared
zone), so a certificate's status is asked of its responder once per instance, not once
per worker. Made before the workers fork (``fastgate.ops.zones``), with a lock that
came with it; the checks (``fastgate.http.ocsp``) reach it through ``KeptAnswers``.

A fixed table of entries, each the SHA-256 of a certificate's OCSP identity (issuer
name and key hashes, serial), its status and until when it holds. A key is looked for
in its own slot and the next seven; a new one takes the slot of the same key, a free
or expired one, else the one that expires first. The full digest is compared, so two
certificates never share an answer."""

from __future__ import annotations

import mmap
import struct
from typing import Any

from fastgate.http.ocsp import REVOKED, UNKNOWN

_ENTRY = struct.Struct("=32sB7xd")  # key, status (0: free, 1 good, 2 revoked, 3 unknown), until
_PROBE = 8
_CODES = {"": 1, REVOKED: 2, UNKNOWN: 3}
_WORDS = {1: "", 2: REVOKED, 3: UNKNOWN}


class SharedAnswers:
    """One cache's table over ``region`` (anonymous shared memory), ``lock`` a lock
    shared across the fork (``multiprocessing.Lock``)."""

    def __init__(self, region: mmap.mmap, lock: Any) -> None:
        self._region = region
        self._lock = lock
        self._slots = len(region) // _ENTRY.size

    @property
    def slots(self) -> int:
        return self._slots

    def get(self, key: bytes, now: float) -> str | None:
        """The kept status words of ``key`` ("" for good), or None when none holds."""
        with self._lock:
            for at in self._probe(key):
                kept, code, until = _ENTRY.unpack_from(self._region, at)
                if code and kept == key:
                    return _WORDS[code] if until > now else None
        return None

    def put(self, key: bytes, words: str, until: float, now: float) -> None:
        """Keep ``words`` for ``key`` until ``until``."""
        with self._lock:
            entries = [(at, *_ENTRY.unpack_from(self._region, at)) for at in self._probe(key)]
            if not entries:
                return
            # the key's own slot, else a free or expired one, else the one expiring first
            chosen = next((at for at, kept, code, _ in entries if code and kept == key),
                          None)
            if chosen is None:
                chosen = next((at for at, _, code, expiry in entries
                               if not code or expiry <= now), None)
            if chosen is None:
                chosen = min(entries, key=lambda e: e[3])[0]
            _ENTRY.pack_into(self._region, chosen, key, _CODES[words], until)

    def _probe(self, key: bytes) -> list[int]:
        if not self._slots:
            return []
        first = int.from_bytes(key[:8], "little") % self._slots
        return [((first + i) % self._slots) * _ENTRY.size
                for i in range(min(_PROBE, self._slots))]


__all__ = ["SharedAnswers"]
