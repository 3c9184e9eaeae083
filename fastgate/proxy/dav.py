"""nginx's WebDAV module: PUT, DELETE, MKCOL, COPY and MOVE on the files under a
location's ``root`` or ``alias``, for the methods ``dav_methods`` names (the others go
on to the static module, which answers them 405).

As nginx's ngx_http_dav_module, status for status:
- PUT writes the body to a hidden temporary file beside its place (the nearest
  directory that exists) and renames it into place when the body is whole: 201 with a
  ``Location`` (the file is new) or 204; a URI ending in "/" 409, a ``Content-Range``
  501, a directory in the way 409, a missing directory 500 unless
  ``create_full_put_path on`` makes it. Modes come from ``dav_access``; a ``Date``
  header sets the file's time. A body that does not arrive whole leaves nothing.
- DELETE removes a file (``Depth`` 0 or infinity) or a directory tree (its URI ending
  in "/", ``Depth`` infinity); links are removed, never followed; URIs shallower than
  ``min_delete_depth`` 409.
- MKCOL makes a directory (its URI ends in "/"): 201.
- COPY and MOVE take ``Destination`` (a path, or a URL of this Host and the
  connection's scheme) mapped under the same location's root, and ``Overwrite``
  (T/F) and ``Depth``: a file 204, a directory 201.
- Any of them with a body but PUT: 415.
Errors map as nginx's: a missing file 404 (or 409 where the path's parent is missing), a
permission 403, an existing name 405, a full disk 507, the rest 500; each is logged with
the call that failed and the path.

A destination (like a URI) with a ".." segment is never used: nginx refuses it as an
unsafe URI (400), and a path that a variable in root makes with one is refused too.
As in nginx, the destination is mapped by the request's own location (its access checks
are the ones that ran), so under ``root`` a COPY can write anywhere below the root.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

from fastgate.errors import FastgateError
from fastgate.http.uri import encode_path, unsafe_uri
from fastgate.proxy.headers import absolute
from fastgate.proxy.placing import (
    PlaceError,
    Spool,
    copy_file,
    dir_access,
    rename_into,
)
from fastgate.proxy.ranges import http_time
from fastgate.proxy.static import escapes, file_path
from fastgate.proxy.steps import DONE, finished

if TYPE_CHECKING:
    from fastgate.config.model import Location, Settings
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.exchange import UpstreamExchange
    from fastgate.proxy.request import Request
    from fastgate.proxy.respond import Responder
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.steps import Fail, Outcome, Step

_INFINITY = -1
_INVALID = -2


class DavError(FastgateError):
    """A DAV request that fails with ``status``; ``message`` is the error log's line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _failed(e: OSError, not_found: int, call: str, path: str) -> DavError:
    """nginx's ngx_http_dav_error: the status an errno means."""
    code = e.errno
    if code in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
        status = not_found
    elif code in (errno.EACCES, errno.EPERM):
        status = 403
    elif code == errno.EEXIST:
        status = 405
    elif code == errno.ENOSPC:
        status = 507
    else:
        status = 500
    return DavError(status, f'{call}() "{path}" failed ({code}: {e.strerror})')




class DavModule:
    """The WebDAV methods of a location that serves files."""

    def __init__(self, worker: Runtime, respond: Responder, upstream: UpstreamExchange,
                 fail: Fail) -> None:
        self.w = worker
        self.respond = respond
        self.upstream = upstream  # reads a PUT's body as proxy_pass reads a body
        self.fail = fail

    def handle(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        if req.method == "PUT":
            if req.uri.endswith("/"):
                return self._error(conn, req, loc, DavError(409, "cannot PUT to a collection"))
            if req.header(b"content-range") is not None:
                return self._error(conn, req, loc,
                                   DavError(501, "PUT with range is unsupported"))
            return self._put(conn, req, loc)
        try:
            if req.head.content_length != 0:
                what = "COPY and MOVE with body are" if req.method in ("COPY", "MOVE") \
                    else f"{req.method} with body is"
                raise DavError(415, f"{what} unsupported")
            if req.method == "DELETE":
                self._delete(req, loc.settings)
                status = 204
            elif req.method == "MKCOL":
                self._mkcol(req, loc.settings)
                return self._created(conn, req, loc)
            else:
                status = self._copy_move(conn, req, loc.settings)
        except DavError as e:
            return self._error(conn, req, loc, e)
        self.respond.send(conn, req, loc, status, b"", None)
        return DONE

    def _error(self, conn: ClientSide, req: Request, loc: Location, e: DavError) -> Outcome:
        self.w.log.error(str(e), conn, req)
        return self.fail(conn, req, loc, e.status)

    def _created(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        """201, with the URI as its Location (made absolute as nginx's header filter)."""
        url = absolute(loc.settings, req, encode_path(req.uri))
        self.respond.send(conn, req, loc, 201, b"", None, [(b"Location", url.encode())])
        return DONE

    @staticmethod
    def _path(req: Request, s: Settings, uri: str | None = None) -> str:
        path = file_path(req, s, uri)
        if escapes(path):
            raise DavError(404, f'"{path}" has a ".." segment: not used')
        return path

    # --- PUT ------------------------------------------------------------------------------

    def _put(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        try:
            path = self._path(req, loc.settings)
        except DavError as e:
            return self._error(conn, req, loc, e)
        return self._put_body(conn, req, loc, path)

    async def _put_body(self, conn: ClientSide, req: Request, loc: Location,
                        path: str) -> Step:
        s = loc.settings
        try:
            spool = Spool(path)
        except OSError as e:
            return await finished(self._error(conn, req, loc,
                                              _failed(e, 500, "open", path)))
        try:
            try:
                if req.head.content_length != 0 and not await self.upstream.read_body_to(
                        conn, req, loc, spool.write):
                    return DONE  # (answered)
            except OSError as e:
                conn.close_after_response()  # the rest of the body is not read
                return await finished(self._error(conn, req, loc,
                                                  _failed(e, 500, "write", spool.temp)))
            try:
                status = 204 if not stat.S_ISDIR(os.stat(path).st_mode) else 409
            except OSError:
                status = 201
            if status == 409:
                return await finished(self._error(conn, req, loc, DavError(
                    409, f'"{path}" could not be created (21: Is a directory)')))
            try:
                spool.place(s.dav_access, http_time(req.header(b"date")),
                            s.create_full_put_path)
            except PlaceError as e:
                return await finished(self._error(conn, req, loc, DavError(500, str(e))))
            if status == 201:
                return await finished(self._created(conn, req, loc))
            self.respond.send(conn, req, loc, 204, b"", None)
            return DONE
        finally:
            spool.discard()

    # --- DELETE, MKCOL --------------------------------------------------------------------

    def _delete(self, req: Request, s: Settings) -> None:
        uri = req.uri
        if s.min_delete_depth:
            depth = 0
            for i, c in enumerate(uri):
                if c == "/":
                    depth += 1
                    if depth >= s.min_delete_depth and i + 1 < len(uri):
                        break
            else:
                raise DavError(409, f"insufficient URI depth:{depth} to DELETE")
        path = self._path(req, s)
        try:
            st = os.lstat(path)
        except OSError as e:
            raise _failed(e, 409 if e.errno == errno.ENOTDIR else 404, "lstat", path) \
                from None
        if stat.S_ISDIR(st.st_mode):
            if not uri.endswith("/"):
                raise DavError(409, f'DELETE "{path}" failed (21: Is a directory)')
            if _depth(req, _INFINITY) != _INFINITY:
                raise DavError(400, '"Depth" header must be infinity')
            self._remove(req, path.rstrip("/") or "/", True)
        else:
            if _depth(req, 0) not in (0, _INFINITY):
                raise DavError(400, '"Depth" header must be 0 or infinity')
            self._remove(req, path, False)

    def _remove(self, req: Request, path: str, directory: bool) -> None:
        """A file, or a directory and all below it (what cannot be removed inside is
        logged and left, and then the directory's own removal says so). A symbolic link
        is removed, never followed — also where the URI's slash made it look like the
        directory it names (nginx would empty that directory, wherever it is)."""
        if directory and os.path.islink(path):
            directory = False
        if directory:
            self._remove_tree(req, path)
            call = "rmdir"
        else:
            call = "unlink"
        try:
            os.rmdir(path) if directory else os.unlink(path)
        except OSError as e:
            raise _failed(e, 404, call, path) from None

    def _entries(self, req: Request, path: str) -> list[os.DirEntry[str]]:
        """A directory's entries; none (logged) when it cannot be read."""
        try:
            return list(os.scandir(path))
        except OSError as e:
            self.w.log.error(f'opendir() "{path}" failed ({e.errno}: {e.strerror})', None,
                             req)
            return []

    def _remove_tree(self, req: Request, path: str) -> None:
        for entry in self._entries(req, path):
            try:
                if entry.is_dir(follow_symlinks=False):
                    self._remove_tree(req, entry.path)
                    os.rmdir(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError as e:
                self.w.log.error(f'remove "{entry.path}" failed ({e.errno}: {e.strerror})',
                                 None, req)

    def _mkcol(self, req: Request, s: Settings) -> None:
        if not req.uri.endswith("/"):
            raise DavError(409, "MKCOL can create a collection only")
        path = self._path(req, s)[:-1]
        try:
            os.mkdir(path, dir_access(s.dav_access))
        except OSError as e:
            raise _failed(e, 409, "mkdir", path) from None

    # --- COPY, MOVE -----------------------------------------------------------------------

    def _copy_move(self, conn: ClientSide, req: Request, s: Settings) -> int:
        value = req.header(b"destination")
        if value is None:
            raise DavError(400, 'client sent no "Destination" header')
        text = value.decode("latin-1")
        invalid = DavError(400, f'client sent invalid "Destination" header: "{text}"')
        duri = self._destination(req, text, invalid)
        if req.uri.endswith("/") != text.endswith("/"):
            raise DavError(409, f'both URI "{req.uri}" and "Destination" URI "{text}" '
                           "should be either collections or non-collections")
        root = s.root
        if root is not None and root.alias > 0 and len(duri) < root.alias:
            raise invalid
        move = req.method == "MOVE"
        depth = _depth(req, _INFINITY)
        if depth != _INFINITY and (move or depth != 0):
            raise DavError(400, '"Depth" header must be infinity' if move
                           else '"Depth" header must be 0 or infinity')
        over = req.header(b"overwrite")
        if over is None:
            overwrite = True
        elif over in (b"T", b"t", b"F", b"f"):
            overwrite = over in (b"T", b"t")
        else:
            raise DavError(400, f'client sent invalid "Overwrite" header: '
                           f'"{over.decode("latin-1")}"')
        src = _merge_slashes(self._path(req, s))
        dst = _merge_slashes(self._path(req, s, duri))
        slash = dst.endswith("/")
        if slash:
            dst = dst[:-1]
        self._validate(req, src, dst, slash, text)
        try:
            dst_st = os.lstat(dst)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise _failed(e, 404, "lstat", dst) from None
            overwrite = False
            dst_dir = False
        else:
            dst_dir = stat.S_ISDIR(dst_st.st_mode)
            if dst_dir and not slash:
                raise DavError(409, f'"{req.uri}" could not be {req.method.lower()}ed to '
                               f'collection "{text}"')
            if not overwrite:
                raise DavError(412, f'"{dst}" could not be created (17: File exists)')
        try:
            src_st = os.lstat(src)
        except OSError as e:
            raise _failed(e, 404, "lstat", src) from None
        if stat.S_ISDIR(src_st.st_mode):
            if not req.uri.endswith("/"):
                raise DavError(400, f'"{req.uri}" is collection')
            if overwrite:
                self._remove(req, dst, dst_dir)
            return self._copy_tree(req, src.rstrip("/"), dst, src_st, move)
        if move:
            _placed_rename(src, dst, True, dir_access(s.dav_access))
        else:
            _placed_copy(src, dst, _stat(src))  # (a link: its file's bytes and mode)
        return 204

    @staticmethod
    def _destination(req: Request, text: str, invalid: DavError) -> str:
        """The Destination's path, decoded (nginx's ngx_http_parse_unsafe_uri)."""
        if text.startswith("/"):
            raw = text
        else:
            if req.header(b"host") is None:
                raise DavError(400, 'client sent no "Host" header')
            scheme = req.scheme + "://"
            host = req.host or ""
            if not text.startswith(scheme):
                raise invalid
            rest = text[len(scheme):]
            if not rest.startswith(host):
                raise DavError(400, f'"Destination" URI "{text}" is handled by different '
                               "repository than the source URI")
            at = rest.find("/", len(host))
            if at < 0:
                raise invalid
            raw = rest[at:]
        path = unsafe_uri(raw.partition("?")[0])
        if path is None:
            raise invalid
        return path

    @staticmethod
    def _validate(req: Request, src: str, dst: str, slash: bool, text: str) -> None:
        """nginx's ngx_http_dav_validate_paths: not onto itself, not into itself."""
        mine = src[:-1] if src.endswith("/") else src
        if mine == dst:
            raise DavError(403, f'both URI "{req.uri}" and "Destination" URI "{text}" '
                           "point to the same location")
        if slash:
            short = min(len(mine), len(dst))
            if src[:short] == dst[:short] and (
                    dst[len(mine):len(mine) + 1] == "/" if len(mine) < len(dst)
                    else src[len(dst):len(dst) + 1] == "/"):
                raise DavError(403, f'"{req.uri}" could not be {req.method.lower()}ed to '
                               f'collection "{text}"')

    def _copy_tree(self, req: Request, src: str, dst: str, st: os.stat_result,
                   move: bool) -> int:
        if move:
            try:
                os.rename(src, dst)
                return 201
            except OSError:
                pass  # (another file system: copied, then removed)
        try:
            os.mkdir(dst, stat.S_IMODE(st.st_mode))
        except OSError as e:
            raise _failed(e, 404, "mkdir", dst) from None
        self._copy_below(req, src, dst)
        os.utime(dst, (st.st_atime, st.st_mtime))
        if move:
            self._remove(req, src, True)
        return 201

    def _copy_below(self, req: Request, src: str, dst: str) -> None:
        """What is inside ``src``, into ``dst``: directories and regular files, their
        modes and times; what cannot be copied is logged and left (as nginx's tree
        walk); links and special files are not copied."""
        for entry in self._entries(req, src):
            to = os.path.join(dst, entry.name)
            try:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    os.mkdir(to, dir_access(stat.S_IMODE(st.st_mode)))
                    self._copy_below(req, entry.path, to)
                    os.utime(to, (st.st_atime, st.st_mtime))
                elif stat.S_ISREG(st.st_mode):
                    _placed_copy(entry.path, to, st)
            except (OSError, DavError) as e:
                self.w.log.error(f'copy "{entry.path}" to "{to}" failed ({e})', None, req)






def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as e:
        raise _failed(e, 404, "stat", path) from None



def _depth(req: Request, default: int) -> int:
    value = req.header(b"depth")
    if value is None:
        return default
    return {b"0": 0, b"1": 1, b"infinity": _INFINITY}.get(value, _INVALID)





def _merge_slashes(path: str) -> str:
    while "//" in path:
        path = path.replace("//", "/")
    return path




def _placed_rename(src: str, dst: str, create_path: bool, path_access: int) -> None:
    try:
        rename_into(src, dst, create_path, path_access)
    except PlaceError as e:
        raise DavError(500, str(e)) from None


def _placed_copy(src: str, dst: str, st: os.stat_result) -> None:
    try:
        copy_file(src, dst, st)
    except PlaceError as e:
        raise DavError(500, str(e)) from None


__all__ = ["DavError", "DavModule"]
