"""``proxy_store``, ``fastcgi_store``, ``uwsgi_store``, ``scgi_store``: an upstream's
200 response body kept as a file while it is relayed (nginx's mirror-on-demand:
``try_files $uri @fetch;`` and a named location that proxies and stores), as nginx's
ngx_http_upstream_store: ``on`` stores under the location's root or alias, a string is
the file's path; the file gets ``*_store_access``'s mode, the upstream's
``Last-Modified`` as its time, and the directories above it as they are needed.

A body is stored only when it came whole — the status 200, every byte a Content-Length
announced, the client still there to the end — and never half: it is written beside
its place and renamed in at the end (``proxy.placing``). A response to HEAD is not
stored; nor is a path with a ".." segment (logged). What could not be stored is logged
and the response goes on unchanged."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.proxy.placing import PlaceError, Spool
from fastgate.proxy.ranges import http_time
from fastgate.proxy.static import escapes, file_path

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastgate.config.model import Settings
    from fastgate.http.engine import Headers
    from fastgate.proxy.request import Request
    from fastgate.variables import Template


class Store:
    """One response's body on its way to its file: ``write`` each piece as it comes,
    then ``end`` (whole) or ``drop`` (cut short)."""

    def __init__(self, spool: Spool, length: int, access: int, mtime: int | None,
                 log: Callable[[str], None]) -> None:
        self._spool: Spool | None = spool
        self._length = length  # -1: unknown
        self._access = access
        self._mtime = mtime
        self._log = log

    def write(self, data: bytes) -> None:
        spool = self._spool
        if spool is None:
            return
        try:
            spool.write(data)
        except OSError as e:
            self._log(f'write() "{spool.temp}" failed ({e.errno}: {e.strerror})')
            self.drop()

    def end(self) -> None:
        spool, self._spool = self._spool, None
        if spool is None:
            return
        if 0 <= self._length != spool.written:
            spool.discard()
            return
        try:
            spool.place(self._access, self._mtime, True)
        except PlaceError as e:
            self._log(str(e))

    def drop(self) -> None:
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.discard()


def begin(req: Request, s: Settings, where: Template | bool, access: int, status: int,
          headers: Headers, length: int, head_only: bool,
          log: Callable[[str], None]) -> Store | None:
    """The store for an upstream response (``where``: the location's ``*_store``), or
    None when it is not to be stored."""
    if where is False or status != 200 or head_only:
        return None
    path = file_path(req, s) if isinstance(where, bool) else where.render(req)
    if not path or escapes(path):
        log(f'"{path}" is not stored: it has a ".." segment' if path else
            "the store's path is empty")
        return None
    try:
        spool = Spool(path)
    except OSError as e:
        log(f'open() a file beside "{path}" failed ({e.errno}: {e.strerror})')
        return None
    modified = next((v for n, v in headers if n.lower() == b"last-modified"), None)
    return Store(spool, length, access, http_time(modified), log)


__all__ = ["Store", "begin"]
