"""nginx's slice module: with ``slice SIZE`` and ``proxy_set_header Range $slice_range``
a response is fetched from the upstream in slices of SIZE bytes — the first by the
request itself, each next one by a subrequest (``proxy.capture``) once the one before
has been sent — and the client gets them as one response, whole (200) or the range it
asked for (206), as nginx's range filter makes it of the whole.

Each slice must be a 206 whose Content-Range is the one asked for, of a known complete
length, with the first slice's ETag; one that is not ends the response (nginx's "unexpected
range in slice response", "etag mismatch in slice response"...): before the head is
sent, the connection is closed without an answer; after, it is cut. A first answer that
is not a 206 (a 200 of the whole, a 404) goes to the client as it is. Slices are kept
in memory one at a time (a slice is the size the configuration gives: at most 8 MiB).
Not done, as nothing is cached: slicing only spreads a response over more upstream
requests."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from fastgate._wire import ResponseHead
from fastgate.decimals import decimal
from fastgate.errors import FastgateError
from fastgate.proxy.capture import KEPT_MAX, SubrequestRefused
from fastgate.proxy.ranges import http_time, ranges
from fastgate.proxy.status import reason
from fastgate.variables import SLICE_KEY, SliceState

if TYPE_CHECKING:
    from fastgate.http.engine import Headers
    from fastgate.http.flow import BodyBuffer
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.capture import Capture, Fetch
    from fastgate.proxy.request import Request

# nginx's ngx_http_slice_parse_content_range: "bytes START-END/LENGTH" or ".../*"
_CONTENT_RANGE = re.compile(rb"bytes +(\d+) *- *(\d+) */ *(\d+|\*) *")


class SliceError(FastgateError):
    """A slice is not the one asked for: the response cannot be completed."""


def _header(headers: Headers, name: bytes) -> bytes | None:
    return next((v for n, v in headers if n.lower() == name), None)


def _check(state: SliceState, headers: Headers) -> tuple[int, int, int]:
    """A 206 slice's (start, end exclusive, complete length), checked against what was
    asked for; ``SliceError`` in nginx's words when it is not that."""
    etag = _header(headers, b"etag")
    if state.etag is not None and etag != state.etag:
        raise SliceError("etag mismatch in slice response")
    if etag is not None:
        state.etag = etag
    value = _header(headers, b"content-range")
    m = _CONTENT_RANGE.fullmatch(value) if value is not None else None
    if m is None:
        raise SliceError("invalid range in slice response")
    if m.group(3) == b"*":
        raise SliceError("no complete length in slice response")
    start, last, total = decimal(m.group(1)), decimal(m.group(2)), decimal(m.group(3))
    if start is None or last is None or total is None:
        raise SliceError("invalid range in slice response")
    end = last + 1
    if start != state.start or end != min(start + state.size, total):
        raise SliceError(f"unexpected range in slice response: {start}-{end}")
    state.start = end
    return start, end, total


class Sliced:
    """A sliced response: the head the client gets, and its body (``read`` as an
    upstream body is read: the first slice's bytes, then each next slice's, cut to the
    range the client asked for)."""

    def __init__(self, state: SliceState, first: BodyBuffer | None, offset: int,
                 want: tuple[int, int], fetch: Fetch, conn: ClientSide, req: Request,
                 uri: str) -> None:
        self._state = state
        self._first = first
        self._at = offset  # where the next byte read stands in the whole
        self._start, self._end = want
        self._fetch = fetch
        self._conn = conn
        self._req = req
        self._uri = uri
        self._failed: BaseException | None = None
        self.done = False

    def fail(self, error: BaseException) -> None:
        self._failed = error
        if self._first is not None:
            self._first.fail(error)

    def _cut(self, data: bytes) -> bytes:
        at = self._at
        self._at += len(data)
        return data[max(self._start - at, 0):max(self._end - at, 0)]

    async def read(self, timeout: float | None) -> bytes | None:
        while True:
            if self._first is not None:
                chunk = await self._first.read(timeout)
                if chunk is None:
                    self._first = None
                    continue
                data = self._cut(chunk)
            else:
                state = self._state
                if state.start >= self._end:
                    self.done = True
                    return None
                self._at, kept = await self._next()
                data = self._cut(bytes(kept.out))
            if data:
                return data

    async def _next(self) -> tuple[int, Capture]:
        """The next slice: where it starts in the whole, and its answer."""
        state = self._state
        try:
            kept = await self._fetch(self._conn, self._req, self._uri, {SLICE_KEY: state})
        except SubrequestRefused as e:
            raise SliceError(str(e)) from None
        if self._failed is not None:
            raise self._failed
        if kept.cut:
            raise SliceError(f"a slice of \"{self._uri}\" could not be had whole (at most "
                             f"{KEPT_MAX} bytes)")
        if kept.status != 206:
            raise SliceError(f"unexpected status code {kept.status} in slice response")
        start, end, _ = _check(state, kept.headers)
        if len(kept.out) != end - start:
            raise SliceError("a slice response shorter than its range")
        return start, kept


def begin(req: Request, rhead: ResponseHead, max_ranges: int | None
          ) -> tuple[ResponseHead, tuple[int, int], int] | None:
    """The head the client gets for the first slice's answer ``rhead``, the part of
    the whole it gets (start, end exclusive) and where the first slice starts; None when
    the answer is not a slice (it goes as it is) — and for a range none of the whole
    holds, a 416 head (its part empty). ``SliceError`` when it is not the slice asked
    for."""
    state: SliceState | None = req.memo.get(SLICE_KEY)
    if state is None:
        return None
    if rhead.status != 206:
        del req.memo[SLICE_KEY]
        return None
    offset, _, total = _check(state, rhead.headers)
    headers = [(n, v) for n, v in rhead.headers
               if n.lower() not in (b"content-range", b"accept-ranges", b"content-length")]
    modified = http_time(_header(rhead.headers, b"last-modified"))
    # one range at most, as nginx's single_range (max_ranges 0: none, nor Accept-Ranges)
    wanted = ranges(req, total, modified, state.etag, 1) if max_ranges != 0 else None
    if wanted is None:
        if offset != 0:  # (a Range nginx's range filter then declines: it fails too)
            raise SliceError(f"unexpected range in slice response: {offset}-")
        if max_ranges != 0:
            headers.append((b"Accept-Ranges", b"bytes"))
        head = ResponseHead(200, b"OK", rhead.version, headers, total, rhead.keep_alive)
        return head, (0, total), offset
    if not wanted:
        head = ResponseHead(416, reason(416), rhead.version, [
            (b"Content-Range", b"bytes */%d" % total)], -1, rhead.keep_alive)
        return head, (0, 0), offset
    start, end = wanted[0]
    if state.start + state.size <= start:  # the first slice was before the range: skip on
        state.start = state.size * (start // state.size)
    headers.append((b"Content-Range", b"bytes %d-%d/%d" % (start, end - 1, total)))
    return (ResponseHead(206, b"Partial Content", rhead.version, headers, end - start,
                         rhead.keep_alive), (start, end), offset)


__all__ = ["SliceError", "Sliced", "begin"]
