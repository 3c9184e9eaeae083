"""The filters a response's body goes through, in nginx's order: sub_filter's
replacements (``proxy.sub_filter``), then the charset module's recoding
(``proxy.charset``). Each site that sends a body — a proxied or application response,
a file, fastgate's own — starts them here with the response's headers and length, and
sends what ``feed`` and ``finish`` return."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from fastgate.proxy import charset, sub_filter

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastgate.config.model import Settings
    from fastgate.http.engine import Headers
    from fastgate.proxy.request import Request


class BodyFilter(Protocol):
    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _Chain:
    """Two filters, the first's output the second's input."""

    def __init__(self, first: BodyFilter, second: BodyFilter) -> None:
        self._first = first
        self._second = second

    def feed(self, data: bytes) -> bytes:
        return self._second.feed(self._first.feed(data))

    def finish(self) -> bytes:
        return self._second.feed(self._first.finish()) + self._second.finish()


def start(req: Request, s: Settings, headers: Headers, length: int, status: int,
          head_only: bool, log: Callable[[str], None], sub: bool = True,
          recode: bool = True) -> tuple[BodyFilter | None, Headers, int]:
    """The filter for a response with ``headers`` and ``length`` (-1: unknown), and the
    headers and length the client gets (a filter that changes the length clears it);
    no filter for a response without a body (its headers still change as they would).
    ``sub``, ``recode``: whether sub_filter's and the charset module's parts run here
    (around the image filter and XSLT, nginx runs the one before them, the other
    after: proxy.output)."""
    flt: BodyFilter | None = None
    if sub and s.sub_filter:  # (a HEAD's head changes as the answer's would)
        flt, headers, length = sub_filter.start(req, s, headers, length)
        if head_only:
            flt = None
    if recode and s.recodes:
        recoder, headers = charset.start(req, s, headers, status, log)
        if recoder is not None:
            if not recoder.keeps_length:
                headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
                length = -1
            if not head_only:
                flt = recoder if flt is None else _Chain(flt, recoder)
    return flt, headers, length


__all__ = ["BodyFilter", "start"]
