"""What a response's body goes through on its way to the client, in nginx's order: the
body filters (sub_filter's replacements, the charset module's recoding:
``proxy.body_filter``), then SSI (``proxy.ssi``), with the additions
(``add_before_body``, ``add_after_body``: ``proxy.addition``) around it, and last the
gzip filter (``proxy.gzip``) compressing all that; first of all, the gunzip filter
inflating an answer for a client that does not take gzip. A response
the image filter or XSLT transforms (``proxy.held``) is transformed between the two
body filters: sub_filter's replacements before, the charset module and SSI after
(``after_transform``), as nginx's filters are ordered. Each site that
sends a body — a file, a proxied or FastCGI-family answer, ``return``'s text — starts
them here once, with the response's headers and length, and sends what ``begin``,
``feed`` and ``end`` give; ``OutputFailed`` from any of them means the response
cannot be completed (its head is out: the connection is cut)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.proxy import addition, body_filter, charset, gzip, ssi
from fastgate.proxy.headers import kind_of
from fastgate.proxy.transforms import transformed

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from fastgate.config.model import Settings
    from fastgate.http.engine import Headers
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.addition import Addition
    from fastgate.proxy.body_filter import BodyFilter
    from fastgate.proxy.capture import Fetch
    from fastgate.proxy.gzip import Gunzip, Gzip
    from fastgate.proxy.request import Request
    from fastgate.proxy.ssi import Ssi
    from fastgate.variables import Getter


class _Inflated:
    """The gunzip filter before the body filters (none: only it)."""

    def __init__(self, gun: Gunzip, then: BodyFilter | None) -> None:
        self._gun = gun
        self._then = then

    def feed(self, data: bytes) -> bytes:
        data = self._gun.feed(data)
        return data if self._then is None else self._then.feed(data)

    def finish(self) -> bytes:
        tail = self._gun.finish()
        then = self._then
        return tail if then is None else then.feed(tail) + then.finish()


class Output:
    """One response's filters: ``begin`` before the first byte of its body, ``feed``
    each piece, ``end`` at its end; each gives the bytes to send then."""

    def __init__(self, flt: BodyFilter | None, ssi: Ssi | None,
                 adding: Addition | None, gz: Gzip | None = None,
                 gun: Gunzip | None = None) -> None:
        self._flt = flt = _Inflated(gun, flt) if gun is not None else flt
        self._ssi = ssi
        self._adding = adding
        self._gz = gz
        # only the body filters: a body had whole may go through them at once (``now``)
        self.immediate = ssi is None and adding is None

    def flush_each(self) -> None:
        """Each piece fed goes out as soon as it is through (an unbuffered relay's):
        the compressor, which would hold it, is flushed with each."""
        if self._gz is not None:
            self._gz.flushing = True

    def now(self, data: bytes) -> bytes:
        """A whole body through the body filters (only when ``immediate``)."""
        flt = self._flt
        if flt is not None:
            data = flt.feed(data) + flt.finish()
        gz = self._gz
        return data if gz is None else gz.feed(data) + gz.finish()

    async def begin(self) -> bytes:
        data = b"" if self._adding is None else await self._adding.before()
        return data if self._gz is None else self._gz.feed(data)

    async def feed(self, data: bytes) -> bytes:
        if self._flt is not None:
            data = self._flt.feed(data)
        if self._ssi is not None and data:
            data = await self._ssi.feed(data)
        return data if self._gz is None else self._gz.feed(data)

    async def end(self) -> bytes:
        tail = b"" if self._flt is None else self._flt.finish()
        if self._ssi is not None:
            tail = (await self._ssi.feed(tail) if tail else b"") + await self._ssi.finish()
        if self._adding is not None:
            tail += await self._adding.after()
        return tail if self._gz is None else self._gz.feed(tail) + self._gz.finish()


def start(req: Request, s: Settings, headers: Headers, length: int, status: int,
          head_only: bool, conn: ClientSide, fetch: Fetch,
          variables: Mapping[str, Getter], log: Callable[[str], None]
          ) -> tuple[Output | None, Headers, int]:
    """The filters for a response with ``headers`` and ``length`` (-1: unknown), and the
    headers and length the client gets; none for a response without a body (its headers
    still change as they would) or where none applies."""
    flt = run = adding = gun = None
    if s.gunzip:  # (first: the others see the answer inflated)
        gun, headers, length = gzip.gunzip_start(req, s, headers, length, head_only)
    held = transformed(s, status, headers)
    if held:
        # held whole and transformed (proxy.held: no ranges, as nginx's); the charset
        # module and SSI see what the transformation made (``after_transform``)
        length = -1
    if s.sub_filter or (s.recodes and not held):
        flt, headers, length = body_filter.start(req, s, headers, length, status,
                                                 head_only, log, recode=not held)
    if s.ssi and not held:
        applies, headers, length = ssi.start(req, s, headers, length)
        if applies and not head_only:
            run = ssi.Ssi(req, s, conn, fetch, variables, kind_of(headers), log)
    if s.add_before_body or s.add_after_body:
        adding, headers, length = addition.start(req, s, headers, length, status,
                                                 head_only, conn, fetch)
    gz = None
    if s.gzip:  # (last: it compresses what the others made)
        gz, headers, length = gzip.start(req, s, headers, length, status, head_only)
    if flt is None and run is None and adding is None and gz is None and gun is None:
        return None, headers, length
    return Output(flt, run, adding, gz, gun), headers, length


async def after_transform(req: Request, s: Settings, headers: Headers, body: bytes,
                          status: int, head_only: bool, conn: ClientSide, fetch: Fetch,
                          variables: Mapping[str, Getter], log: Callable[[str], None]
                          ) -> tuple[Headers, bytes, int]:
    """A response the image filter or XSLT made (``proxy.held``) through the filters
    nginx runs after those — the charset module, then SSI — as a whole: its headers,
    body and length (-1: unknown, sent chunked as nginx's)."""
    length = len(body)
    flt: BodyFilter | None = None
    run: Ssi | None = None
    if s.charset is not None and not s.recodes:
        headers = charset.apply(headers, status, s, req)
    elif s.recodes:
        flt, headers, length = body_filter.start(req, s, headers, length, status,
                                                 head_only, log, sub=False)
    if s.ssi:
        applies, headers, length = ssi.start(req, s, headers, length)
        if applies and not head_only:
            run = ssi.Ssi(req, s, conn, fetch, variables, kind_of(headers), log)
    gz = None
    if s.gzip:
        gz, headers, length = gzip.start(req, s, headers, length, status, head_only)
    if not head_only and (flt is not None or run is not None or gz is not None):
        out = Output(flt, run, None, gz)
        body = await out.feed(body) + await out.end()
    return headers, body, length


def own_page(req: Request, s: Settings, headers: Headers, body: bytes, status: int,
             head_only: bool, variables: Mapping[str, Getter],
             log: Callable[[str], None]) -> tuple[Headers, bytes, bool]:
    """A page of fastgate's own (an error page, a redirect's) through the body filters
    and SSI, as nginx's filters see its own pages: the headers, the body, and whether
    its length is still known. (No additions: they are not done for these pages.)
    ``OutputFailed``: the body does not inflate (gunzip)."""
    framed = len(body)
    if s.gunzip:
        gun, headers, framed = gzip.gunzip_start(req, s, headers, framed, head_only)
        if gun is not None:
            body = gun.feed(body) + gun.finish()
    flt, headers, framed = body_filter.start(req, s, headers, framed, status,
                                             head_only, log)
    if flt is not None:
        body = flt.feed(body) + flt.finish()
    if s.ssi:
        applies, headers, framed = ssi.start(req, s, headers, framed)
        if applies and not head_only:
            body = ssi.Ssi(req, s, None, None, variables, kind_of(headers), log).now(body)
    if s.gzip:
        gz, headers, framed = gzip.start(req, s, headers, framed, status, head_only)
        if gz is not None:
            body = gz.feed(body) + gz.finish()
    return headers, body, framed >= 0


__all__ = ["Output", "after_transform", "own_page", "start"]
