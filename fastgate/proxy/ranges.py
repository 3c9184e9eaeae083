"""nginx's not-modified and range filters, what they decide from a request's
conditional headers, ``Range`` and ``If-Range``: whether a response goes at all (304,
412), and which parts of a body of known length to send. Files (``proxy.static``),
sliced responses (``proxy.slices``) and fastgate's own 200 pages (``return``'s,
empty_gif's, the status pages: ``proxy.respond``) are served by them."""

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


def _etag_matches(header: bytes, etag: bytes | None, weak: bool) -> bool:
    """``If-Match``/``If-None-Match`` name the ETag (``*`` any, an ETag or not);
    ``weak``: W/ ignored."""
    if header.strip() == b"*":
        return True
    if etag is None:
        return False
    mine = etag[2:] if weak and etag.startswith(b"W/") else etag
    for item in header.split(b","):
        item = item.strip()
        if weak and item.startswith(b"W/"):
            item = item[2:]
        if item == mine:
            return True
    return False


def not_modified(req: Request, if_modified_since: str, mtime: int | None,
                 etag: bytes | None) -> int:
    """nginx's not-modified filter over a 200 whose Last-Modified is ``mtime`` and
    ETag ``etag`` (None: it has none): 412, 304, or 200 (go on). As nginx's, a
    response without a Last-Modified fails any If-Unmodified-Since (an unreadable
    date too) and passes any If-Modified-Since; one without an ETag fails an
    If-Match other than ``*``; ``If-None-Match: *`` matches any."""
    unmodified = req.header(b"if-unmodified-since")
    if unmodified is not None:
        at = http_time(unmodified)
        if mtime is None or at is None or at < mtime:
            return 412
    if_match = req.header(b"if-match")
    if if_match is not None and not _etag_matches(if_match, etag, False):
        return 412
    since = req.header(b"if-modified-since")
    none_match = req.header(b"if-none-match")
    if since is None and none_match is None:
        return 200
    if since is not None:
        if mtime is None or if_modified_since == "off":
            return 200
        at = http_time(since)
        if at is None or not (at == mtime or (if_modified_since == "before"
                                              and at >= mtime)):
            return 200
    if none_match is not None and not _etag_matches(none_match, etag, True):
        return 200
    return 304


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
        elif start == 0:
            return None  # (an empty body: a range from its start is all of it, as nginx's)
    if len(out) > 1 and total > size:
        return None  # overlapping ranges asking for more than the body: whole, as nginx
    return out


__all__ = ["http_time", "ranges"]
