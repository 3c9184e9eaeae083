"""nginx's range filter, what it decides from a request's ``Range`` and ``If-Range``:
which parts of a body of known length to send. Files (``proxy.static``) and sliced
responses (``proxy.slices``) are served by it."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from fastgate.decimals import decimal

if TYPE_CHECKING:
    from fastgate.proxy.request import Request


def http_time(value: bytes | None) -> int | None:
    """An HTTP date as seconds since the epoch (None: absent or not a date)."""
    if value is None:
        return None
    try:
        return int(parsedate_to_datetime(value.decode("latin-1")).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def ranges(req: Request, size: int, mtime: int | None, etag: bytes | None,
           limit: int | None) -> list[tuple[int, int]] | None:
    """The ranges to send of a body of ``size`` bytes (start, end exclusive); [] when
    none of them is in it (416); None to send it whole (no Range, one that is not bytes
    or is malformed, more than ``limit`` — nginx's max_ranges —, If-Range not met by
    ``etag`` or ``mtime``)."""
    value = req.header(b"range")
    if value is None or not value.startswith(b"bytes="):
        return None
    if_range = req.header(b"if-range")
    if if_range is not None:
        if if_range.startswith(b'"') or if_range.startswith(b"W/"):
            if etag is None or if_range != etag:
                return None
        elif mtime is None or http_time(if_range) != mtime:
            return None
    if limit == 0:
        return None
    out: list[tuple[int, int]] = []
    total = 0
    for spec in value[6:].split(b","):
        spec = spec.strip(b" ")
        first, dash, last = spec.partition(b"-")
        first, last = first.strip(b" "), last.strip(b" ")
        if not dash or (first and not first.isdigit()) or (last and not last.isdigit()):
            return None
        low, high = decimal(first) if first else 0, decimal(last) if last else 0
        if low is None or high is None:
            return []  # past a 64-bit offset: 416, as nginx's range parser
        if not first:
            if not last:
                return None
            start, end = max(size - high, 0), size
        else:
            start = low
            end = size if not last else high + 1
            if last and end <= start:
                return []  # its end before its start: 416, as nginx
            if end > size:
                end = size
        if limit is not None and len(out) >= limit:
            return None
        if start < size and start < end:
            out.append((start, end))
            total += end - start
    if len(out) > 1 and total > size:
        return None  # overlapping ranges asking for more than the body: whole, as nginx
    return out


__all__ = ["http_time", "ranges"]
