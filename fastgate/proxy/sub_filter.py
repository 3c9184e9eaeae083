"""nginx's ``ngx_http_sub_filter_module``: strings of a response body replaced as it
streams to the client. A match is case-insensitive (nginx lowercases the strings and
compares the body's bytes lowercased); at each point the leftmost match wins, and of
two at one point the one written first; with ``sub_filter_once on`` (the default) each
string is replaced once. A match may span the upstream's reads: the bytes that could
still begin one are held back until the next read or the end.

It applies to a response whose type is one of ``sub_filter_types`` (``text/html`` by
default, ``*`` any) and whose length is not known to be zero; such a response loses
its ``Content-Length`` (the client's engine frames it), and its ``Last-Modified`` and
``ETag`` unless ``sub_filter_last_modified on`` (then the ETag is made weak)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.proxy.headers import changed_body_head, html_or_of, kind_of

if TYPE_CHECKING:
    from fastgate.config.model import Settings
    from fastgate.http.engine import Headers
    from fastgate.proxy.request import Request


class SubFilter:
    """One response's replacements: ``feed`` each piece of its body, ``finish`` at its
    end; each returns the bytes that may go to the client now."""

    def __init__(self, pairs: list[tuple[bytes, bytes]], once: bool) -> None:
        self._pairs = pairs  # (the match lowercased, its replacement)
        self._done = [False] * len(pairs)
        self._once = once
        self._longest = max(len(m) for m, _ in pairs)
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        return self._run(self._held + data, False)

    def finish(self) -> bytes:
        return self._run(self._held, True)

    def _run(self, buf: bytes, final: bool) -> bytes:
        low = buf.lower()
        # a match that starts before this is whole in ``buf`` whatever its length
        limit = len(buf) if final else len(buf) - self._longest + 1
        out = []
        pos = 0
        while pos < limit:
            best = -1
            which = -1
            for i, (match, _) in enumerate(self._pairs):
                if self._done[i]:
                    continue
                at = low.find(match, pos)
                if 0 <= at < limit and (best < 0 or at < best):
                    best, which = at, i
            if final:
                # nginx's parser, at a body's end, stops at the first point where a
                # string tried before any that matches could still begin (the body
                # ends inside it): from there the rest goes as it is, unreplaced
                stop = self._cut_short(low, pos, best if which >= 0 else len(buf), which)
                if stop is not None:
                    out.append(buf[pos:])
                    self._held = b""
                    return b"".join(out)
            if which < 0:
                break
            match, replacement = self._pairs[which]
            out.append(buf[pos:best])
            out.append(replacement)
            pos = best + len(match)
            if self._once:
                self._done[which] = True
        keep = max(pos, limit)
        out.append(buf[pos:keep])
        self._held = buf[keep:]
        return b"".join(out)

    def _cut_short(self, low: bytes, pos: int, upto: int, which: int) -> int | None:
        """The first point from ``pos`` up to ``upto`` (the next match, string ``which``,
        or the end) where nginx's parser tries, in the order written, a string of which
        the body's end is a proper prefix before it meets one that matches whole; None
        when there is none."""
        n = len(low)
        for p in range(max(pos, n - self._longest + 1), min(upto, n - 1) + 1):
            rest = low[p:]
            for i, (match, _) in enumerate(self._pairs):
                if self._done[i]:
                    continue
                if p == upto and i == which:
                    break  # (the match itself comes first)
                if len(match) > len(rest) and match.startswith(rest):
                    return p
        return None


def start(req: Request, s: Settings, headers: Headers, length: int
          ) -> tuple[SubFilter | None, Headers, int]:
    """The filter for a response with ``headers`` and ``length`` (-1: unknown) where
    the location has ``sub_filter``, and the headers and length the client gets: None
    and the same ones when it does not apply."""
    if not s.sub_filter or length == 0:
        return None, headers, length
    if not html_or_of(kind_of(headers), s.sub_filter_types):
        return None, headers, length
    pairs = []
    for match, replacement in s.sub_filter:
        m = match.render(req).encode("utf-8", "surrogateescape").lower()
        if m:  # a match made empty by its variables is left out, as nginx's
            pairs.append((m, replacement.render(req).encode("utf-8", "surrogateescape")))
    if not pairs:
        return None, headers, length
    out = changed_body_head(headers, (b"content-length",), s.sub_filter_last_modified)
    return SubFilter(pairs, s.sub_filter_once), out, -1
