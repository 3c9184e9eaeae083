"""Files, as nginx serves them: the content of a location without a proxy or an
application, through nginx's index, autoindex and static modules, and ``try_files``'s
checks (the precontent phase), with the not-modified and range filters.

- A URI ending in "/" is a directory: ``index``'s files are tried in order and the first
  that exists is an internal redirect to it (locations are found again); none: the
  listing with ``autoindex on``, else a 403 (a directory that does not exist: 404).
- Any other URI is a file under ``root`` (the URI appended) or ``alias`` (the URI's part
  past the location's name, or in a regex location the alias alone): GET and HEAD are
  answered (another method: 405), a directory is a 301 to the URI with a slash, a file
  that is missing a 404 (logged unless ``log_not_found off``), unreadable a 403.
- A file is a 200 with its type (``types`` by the extension, else ``default_type``),
  ``Last-Modified``, an ``ETag`` (``etag off``: none) and ``Accept-Ranges``; against
  the request's ``If-Match``/``If-Unmodified-Since`` a 412, ``If-None-Match``/
  ``If-Modified-Since`` (as ``if_modified_since`` says) a 304; a ``Range`` of bytes
  (``If-Range`` honoured, at most ``max_ranges``) a 206 — several ranges as
  multipart/byteranges — or, out of the file, a 416.

A path with a ".." segment is never opened: nginx would open it when an alias misses
the slash its location's name ends with (``location /i { alias /data/i/; }`` and
``/i../secret``); fastgate answers 404 and logs why. Symbolic links are followed
(nginx's ``disable_symlinks off``), or not, as ``disable_symlinks`` says
(``fastgate.proxy.symlinks``): a refused link is a 403, as nginx's. Files are read
with ``pread`` as they are sent, never whole unless small, and the client's pace is
kept (``send_timeout``)."""

from __future__ import annotations

import errno
import itertools
import json
import os
import random
import stat
import time
from email.utils import formatdate
from html import escape
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote, unquote

from fastgate._wire import ResponseHead
from fastgate.decimals import decimal
from fastgate.errors import OutputFailed
from fastgate.http.engine import ProtocolError
from fastgate.http.uri import encode_args, encode_path
from fastgate.proxy import charset, gzip, output, rate, symlinks
from fastgate.proxy import mp4 as mp4_cut
from fastgate.proxy._headers import response_head
from fastgate.proxy.capture import Capture
from fastgate.proxy.headers import RESPONSE_DROP
from fastgate.proxy.ranges import not_modified, ranges
from fastgate.proxy.respond import final_status
from fastgate.proxy.rewrite import STAYED
from fastgate.proxy.status import reason
from fastgate.proxy.steps import DONE, NEXT

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastgate.config.model import Location, Settings
    from fastgate.http.exchange import Exchange
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.capture import Fetch
    from fastgate.proxy.output import Output
    from fastgate.proxy.rate import Pace
    from fastgate.proxy.request import Request
    from fastgate.proxy.respond import Responder
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.steps import Fail, Outcome, Phase, Step

    # an internal redirect that keeps the method (index, try_files): (conn, req, loc, uri)
    Redirect = Callable[[ClientSide, Request, Location, str], Outcome]

# a part of a response body: bytes as they are, or a range of the file (start, end)
Piece = bytes | tuple[int, int]

_WHOLE = 256 * 1024  # a file this small is read and written at once
_CHUNK = 64 * 1024
_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block the worker
# a request's memo: gzip_static found a .gz under gzip_vary: the answer gets Vary
_VARY_PENDING = ("gzip_static", "vary")
# ngx_http_flv_module's header before a file sent from an offset: FLV, version 1, audio
# and video, a 9-byte header, and the first "previous tag size" (0)
FLV_HEADER = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")


def file_path(req: Request, s: Settings, uri: str | None = None) -> str:
    """The file a URI (the request's) names under the location's root or alias."""
    root = s.root
    target = req.uri if uri is None else uri
    return target if root is None else root.file(req, target)


def escapes(path: str) -> bool:
    """The path has a ".." segment (only an alias that misses a slash, or variables in
    root or alias, can make one: the URI has none)."""
    return "/../" in path or path.endswith("/..") or path.startswith("../")


def _error_text(e: OSError) -> str:
    return f"({e.errno}: {e.strerror})"


# the name try_files found and its file (None: a directory), for the content phase
_TRIED_KEY = "try_files"


class StaticModule:
    """The content handler of locations that serve files, and ``try_files``'s checks."""

    def __init__(self, worker: Runtime, respond: Responder, fail: Fail,
                 internal: Redirect, dav: Phase, fetch: Fetch) -> None:
        self.w = worker
        self.dav = dav  # the WebDAV methods (proxy.dav), before the static module
        self.fetch = fetch  # a subrequest's answer (add_*_body, SSI's include)
        self.respond = respond
        self.fail = fail
        self.internal = internal
        self._boundaries = itertools.count(1)  # multipart boundaries, as nginx's counter

    # --- try_files (nginx's precontent phase) ------------------------------------------

    def try_files(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        """nginx's try_files module, in the precontent phase of every location that has
        it, whatever answers there (files, proxy_pass, fastcgi_pass...): the first name
        that exists becomes the URI and the location's content handler goes on
        (``serve_tried`` for files); none: the last parameter, a code
        (``try_files $uri =404`` keeps a PHP location from running a script that is not
        there) or an internal redirect."""
        tf = loc.try_files
        assert tf is not None
        s = loc.settings
        if self._alias_unusable(conn, req, loc):
            return self.fail(conn, req, loc, 500)
        for template in tf.files:
            name = template.render(req)
            # (an empty name is tried too: under a regex location's alias, whose value is
            # the whole path, `try_files "" =404` serves the alias, as nginx's)
            # "name/" checks for a directory, and the URI becomes the name without the
            # slash (then a 301 adds it, as nginx's static module does)
            want_dir = template.source.endswith("/")  # as written, not as rendered
            if want_dir and name.endswith("/") and len(name) > 1:
                name = name[:-1]
            path = self._candidate(req, s, name)
            if escapes(path):
                continue
            try:
                st = symlinks.file_info(path, s, req)
            except ValueError:
                continue
            except OSError as e:
                if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
                    self.w.log.write("crit", f'{symlinks.label(s, True)} "{path}" failed '
                                             f"{_error_text(e)}", conn, req)
                continue
            if stat.S_ISDIR(st.st_mode) != want_dir:
                continue
            req.uri = name  # nginx: the location serves the name found, found again never
            req.memo[_TRIED_KEY] = (name, None if want_dir else path)
            return NEXT
        if tf.fallback_code is not None:
            return self.fail(conn, req, loc, tf.fallback_code)
        assert tf.fallback_target is not None
        target = tf.fallback_target.render(req)
        if target[:1] == "/" and "?" not in target:
            # nginx's try_files hands its redirect arguments it never set where the
            # target has no "?": found and empty ($args logs "", not "-"), none sent
            target += "?"
        return self.internal(conn, req, loc, target)

    @staticmethod
    def _candidate(req: Request, s: Settings, name: str) -> str:
        """try_files' file for ``name``: under root, or under alias with the location's
        name taken off when the name starts with it (as nginx's try_files phase)."""
        root = s.root
        if root is None:
            return name
        cut = root.alias
        if 0 < cut and name[:cut] == req.uri[:cut]:
            name = name[cut:]
        return root.render(req) + name

    # --- the content phase ----------------------------------------------------------------

    def serve_tried(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        """The files of a location with try_files: the file its precontent phase found
        (under an alias the URI alone would not name it)."""
        tried = req.memo.pop(_TRIED_KEY, None)
        if (tried is None or tried[0] != req.uri or tried[1] is None
                or req.method not in ("GET", "HEAD", "POST")):
            return self.serve(conn, req, loc)
        return self._open(conn, req, loc, tried[1])

    def serve(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        if req.method in loc.settings.dav_methods:
            return self.dav(conn, req, loc)
        if req.method not in ("GET", "HEAD", "POST"):
            return self.fail(conn, req, loc, 405)
        if req.uri.endswith("/"):
            return self._directory(conn, req, loc)
        return self._open(conn, req, loc, file_path(req, loc.settings))

    def _alias_unusable(self, conn: ClientSide, req: Request, loc: Location) -> bool:
        """nginx's ngx_http_map_uri_to_path: an alias cannot map a URI that a ``rewrite
        ... break`` of this location made (r->valid_location is 0): logged, and the
        caller answers 500, as nginx's. Asked where a URI is mapped: try_files, and the
        file or directory every content handler here opens."""
        root = loc.settings.root
        if root is None or root.alias == 0 or req.rewritten != STAYED:
            return False
        self.w.log.error(f'"alias" cannot be used in location "{loc.pattern}" where URI '
                         "was rewritten", conn, req)
        return True

    def _open(self, conn: ClientSide, req: Request, loc: Location, path: str,
              flv: bool = False, mp4: bool = False) -> Outcome:
        if self._alias_unusable(conn, req, loc):
            return self.fail(conn, req, loc, 500)
        if escapes(path):
            self.w.log.error(f'"{path}" has a ".." segment: not opened (an alias that '
                             "misses its location's slash?)", conn, req)
            return self.fail(conn, req, loc, 404)
        if loc.settings.gzip_static != "off" and not (flv or mp4) and req.method != "POST":
            done = self._precompressed(conn, req, loc, path)
            if done is not None:
                return done
        try:
            fd = symlinks.open_file(path, _READ, loc.settings, req)
        except (OSError, ValueError) as e:
            return self._open_failed(conn, req, loc, path, e)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                os.close(fd)
                return self._slash_redirect(conn, req, loc)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                self.w.log.error(f'"{path}" is not a regular file', conn, req)
                return self.fail(conn, req, loc, 404)
            if req.method == "POST":
                os.close(fd)
                return self.fail(conn, req, loc, 405)
            if flv:
                start = _offset(_raw_arg(req.args, "start"), st.st_size)
                if start:
                    return self._file(conn, req, loc, fd, st,
                                      [FLV_HEADER, (start, st.st_size)])
            if mp4:
                return self._mp4(conn, req, loc, fd, st, path)
            return self._file(conn, req, loc, fd, st)
        except BaseException:
            _close(fd)
            raise

    def _precompressed(self, conn: ClientSide, req: Request, loc: Location,
                       path: str) -> Outcome | None:
        """nginx's gzip_static: the file's ``.gz`` beside it, sent as the answer with
        ``Content-Encoding: gzip`` (the type the URI names, its own length, date and
        ETag, no ranges) to a client that may have it compressed, or to any under
        ``always``; None: the file itself answers (with ``Vary`` under ``on`` where
        the ``.gz`` is there and ``gzip_vary on``)."""
        s = loc.settings
        ok = s.gzip_static == "always" or gzip.may_compress(req, s, [])
        if not ok and not s.gzip_vary:
            return None
        packed = path + ".gz"
        try:
            fd = symlinks.open_file(packed, _READ, s, req)
        except ValueError:
            return None
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
                self.w.log.error(f'{symlinks.label(s)} "{packed}" failed {_error_text(e)}',
                                 conn, req)
            return None
        try:
            st = os.fstat(fd)
            if s.gzip_static == "on" and s.gzip_vary:
                req.memo[_VARY_PENDING] = True  # (the answer says it varies, either way)
            if not ok or stat.S_ISDIR(st.st_mode):
                os.close(fd)
                return None
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                self.w.log.write("crit", f'"{packed}" is not a regular file', conn, req)
                return self.fail(conn, req, loc, 404)
            return self._file(conn, req, loc, fd, st, encoded=True)
        except BaseException:
            _close(fd)
            raise

    def _open_failed(self, conn: ClientSide, req: Request, loc: Location, path: str,
                     e: OSError | ValueError) -> Outcome:
        if isinstance(e, ValueError):  # (a NUL never reaches here: the URI refuses it)
            return self.fail(conn, req, loc, 404)
        call = symlinks.label(loc.settings)
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
            if loc.settings.log_not_found:
                self.w.log.error(f'{call} "{path}" failed {_error_text(e)}', conn, req)
            return self.fail(conn, req, loc, 404)
        self.w.log.error(f'{call} "{path}" failed {_error_text(e)}', conn, req)
        if e.errno == errno.EACCES or e.errno in symlinks.REFUSED:
            return self.fail(conn, req, loc, 403)
        return self.fail(conn, req, loc, 500)

    def _slash_redirect(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        location = encode_path(req.uri + "/")
        if req.args:
            location += "?" + encode_args(req.args)
        self.respond.redirect(conn, req, loc, 301, location)
        return DONE

    def _directory(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        """nginx's index module, then autoindex, then the core's 403."""
        if self._alias_unusable(conn, req, loc):
            return self.fail(conn, req, loc, 500)
        s = loc.settings
        directory = file_path(req, s)
        if escapes(directory):
            self.w.log.error(f'"{directory}" has a ".." segment: not opened', conn, req)
            return self.fail(conn, req, loc, 404)
        # random_index and index look for GET, HEAD and POST; autoindex answers GET and
        # HEAD
        if s.random_index:
            picked = self._random_index(conn, req, loc, directory)
            if picked is not None:
                return picked
        names = [t.render(req) for t in s.index] if s.index else ["index.html"]
        for name in names:
            if name.startswith("/"):  # the last may be a URI, taken as it is
                return self.internal(conn, req, loc, encode_path(name) + _args_of(req))
            try:
                st = symlinks.file_info(directory + name, s, req)
            except (OSError, ValueError) as e:
                if isinstance(e, OSError) and e.errno in symlinks.REFUSED:
                    return self.fail(conn, req, loc, 403)  # (nginx logs nothing)
                if isinstance(e, OSError) and e.errno == errno.EACCES:
                    self.w.log.error(f'"{directory}{name}" is forbidden {_error_text(e)}',
                                     conn, req)
                    return self.fail(conn, req, loc, 403)
                if isinstance(e, OSError) and e.errno == errno.ENOTDIR:
                    break
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            return self.internal(conn, req, loc, encode_path(req.uri + name) + _args_of(req))
        try:
            st = symlinks.file_info(directory, s, req)
        except (OSError, ValueError) as e:
            if isinstance(e, OSError) and e.errno in symlinks.REFUSED:
                return self.fail(conn, req, loc, 403)
            if loc.settings.log_not_found:
                text = _error_text(e) if isinstance(e, OSError) else ""
                self.w.log.error(f'"{directory}" is not found {text}'.rstrip(), conn, req)
            return self.fail(conn, req, loc, 404)
        if not stat.S_ISDIR(st.st_mode):
            return self.fail(conn, req, loc, 404)
        if s.autoindex and req.method in ("GET", "HEAD"):
            return self._listing(conn, req, loc, directory)
        self.w.log.error(f'directory index of "{directory}" is forbidden', conn, req)
        return self.fail(conn, req, loc, 403)

    def _random_index(self, conn: ClientSide, req: Request, loc: Location,
                      directory: str) -> Outcome | None:
        """nginx's random_index: an internal redirect to one of the directory's files
        (not those whose names start with a dot), picked at random; None when it has
        none (index goes on)."""
        names = []
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    try:
                        if entry.is_file():  # (a link: its target)
                            names.append(entry.name)
                    except OSError:
                        continue
        except (OSError, ValueError) as e:
            code = getattr(e, "errno", errno.ENOENT)
            text = _error_text(e) if isinstance(e, OSError) else ""
            self.w.log.error(f'opendir() "{directory.rstrip("/")}" failed {text}'.rstrip(),
                             conn, req)
            return self.fail(conn, req, loc, 404 if code in (
                errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG) else
                403 if code == errno.EACCES else 500)
        if not names:
            return None
        return self.internal(conn, req, loc,
                             encode_path(req.uri + random.choice(names)) + _args_of(req))

    # --- a file ---------------------------------------------------------------------------

    def flv(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        """nginx's flv module, the location's content handler: its files, and with
        ``start=N`` (a byte offset within the file) the FLV header and the file from
        there. A directory's URI is left to the index modules, as nginx's handler
        declines it."""
        if req.method not in ("GET", "HEAD"):
            return self.fail(conn, req, loc, 405)
        if req.uri.endswith("/"):
            return self._directory(conn, req, loc)
        return self._open(conn, req, loc, file_path(req, loc.settings), flv=True)

    def mp4(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        """nginx's mp4 module, the location's content handler: its files, and with
        ``start=SECONDS`` and/or ``end=SECONDS`` the file cut to that time
        (``proxy.mp4``). A directory's URI is left to the index modules, as nginx's
        handler declines it."""
        if req.method not in ("GET", "HEAD"):
            return self.fail(conn, req, loc, 405)
        if req.uri.endswith("/"):
            return self._directory(conn, req, loc)
        return self._open(conn, req, loc, file_path(req, loc.settings), mp4=True)

    def _mp4(self, conn: ClientSide, req: Request, loc: Location, fd: int,
             st: os.stat_result, path: str) -> Outcome:
        start = -1
        length = 0
        if req.args:  # (a value that is not a number: -1, nginx's NGX_ERROR)
            value = _raw_arg(req.args, "start")
            if value is not None:
                start = _or_minus_one(mp4_cut.atofp(value))
            value = _raw_arg(req.args, "end")
            if value is not None:
                end = _or_minus_one(mp4_cut.atofp(value))
                if end > 0:
                    start = max(start, 0)
                    if end > start:
                        length = end - start
        if start < 0:
            return self._file(conn, req, loc, fd, st)
        s = loc.settings
        try:
            body = mp4_cut.cut(fd, path, st.st_size, start, length, s.mp4_buffer_size,
                               s.mp4_max_buffer_size, s.mp4_start_key_frame)
        except mp4_cut.Mp4Error as e:
            os.close(fd)
            self.w.log.error(str(e), conn, req)
            return self.fail(conn, req, loc, 500)
        return self._file(conn, req, loc, fd, st, body, single_range=True)

    def _file(self, conn: ClientSide, req: Request, loc: Location, fd: int,
              st: os.stat_result, body: list[Piece] | None = None,
              single_range: bool = False, encoded: bool = False) -> Outcome:
        """The file as the response's body, or ``body``, bytes and parts of the file
        (flv's header and the file from an offset, an mp4 cut): ETag, ranges and lengths
        count that body; ``single_range``: one range at most (nginx's for a cut);
        ``encoded``: gzip_static's ``.gz`` (no ranges, as nginx's)."""
        exchange = conn.exchange
        if req.head.expect_continue and exchange is not None:
            # (nginx's static handler drops the request's body first, and so tells a
            # client that waits to send it)
            exchange.write(exchange.expect_continue())
        s = loc.settings
        if body is None:
            body = [(0, st.st_size)]
        size = _length(body)
        mtime = int(st.st_mtime)
        etag = b'"%x-%x"' % (mtime, size) if s.etag else None
        last_modified = formatdate(mtime, usegmt=True).encode()
        # an X-Accel-Redirect's Content-Type names the file's (nginx keeps the one set)
        kind = next((v for n, v in req.carried if n.lower() == b"content-type"),
                    None) if req.carried is not None else None
        headers: list[tuple[bytes, bytes]] = [
            (b"Content-Type", kind or self.respond.content_type(req, s))]
        if final_status(req, 200) == 200:  # (nginx's header filter: not on an error's page)
            headers.append((b"Last-Modified", last_modified))
        if etag is not None:
            headers.append((b"ETag", etag))
        if encoded:
            headers.append((b"Content-Encoding", b"gzip"))
        if _VARY_PENDING in req.memo:
            headers = gzip.vary(req, headers)
        # an error_page's file keeps the error's status, and a subrequest's answer is
        # whole (nginx's filters leave subrequests alone): no 304, 412 or ranges for them
        own = final_status(req, 200) == 200 and not isinstance(conn, Capture)
        if own:
            verdict = not_modified(req, s.if_modified_since, mtime, etag)
            if verdict == 412:  # (nginx ends the request in error: the connection goes)
                os.close(fd)
                conn.close_after_response()
                return self.fail(conn, req, loc, 412)
            if verdict == 304:  # as nginx's: without a Content-Type or Content-Encoding
                os.close(fd)
                self._head(conn, req, loc, 304, [h for h in headers[1:]
                                                 if h[0] != b"Content-Encoding"], 0, True)
                return DONE
        head_only = req.method == "HEAD"
        out = None
        length = size
        if s.filters_output:
            out, headers, length = output.start(
                req, s, headers, size, final_status(req, 200), head_only, conn, self.fetch,
                self.w.config.variables, self.respond.client_error(req))
        wanted: list[tuple[int, int]] | None = None
        # a filter that keeps the length keeps ranges (nginx's range filter takes them
        # from the file before the charset filter recodes them)
        if length == size and own and not encoded:
            wanted = ranges(req, size, mtime, etag,
                            1 if single_range and s.max_ranges != 0 else s.max_ranges)
            if wanted is None:
                headers.append((b"Accept-Ranges", b"bytes"))
            elif not wanted:
                os.close(fd)
                # nginx's range filter refuses once its headers filter ran for the 200:
                # what add_header and expires gave it stay on the 416, which then gets
                # its own "always" ones (a Vary the gzip filters gave stays too: nginx's
                # r->gzip_vary)
                shown = list(headers)
                req.status = 200
                self.respond.add_headers(req, loc, 200, shown)
                headers = [*shown[len(headers):], (b"Content-Range", b"bytes */%d" % size),
                           *(h for h in headers if h[0] == b"Vary")]
                self.respond.send(conn, req, loc, 416, self.respond.error_page(req, loc, 416),
                                  b"text/html", headers)
                return DONE
        if wanted:
            return self._ranges(conn, req, loc, fd, size, headers, wanted, head_only,
                                body, out)
        if not self._head(conn, req, loc, 200, headers, length, head_only) or head_only:
            os.close(fd)
            return DONE
        return self._body(conn, req, loc, fd, body, out)

    def _ranges(self, conn: ClientSide, req: Request, loc: Location, fd: int, size: int,
                headers: list[tuple[bytes, bytes]], ranges: list[tuple[int, int]],
                head_only: bool, body: list[Piece],
                out: Output | None) -> Outcome:
        if len(ranges) == 1:
            start, end = ranges[0]
            headers.append((b"Content-Range", b"bytes %d-%d/%d" % (start, end - 1, size)))
            if not self._head(conn, req, loc, 206, headers, end - start, head_only) \
                    or head_only:
                os.close(fd)
                return DONE
            return self._body(conn, req, loc, fd, _cut(body, start, end), out)
        # several: multipart/byteranges, each part with the file's type and its range
        boundary = b"%020d" % next(self._boundaries)
        kind = b""
        rest = []
        for name, value in headers:
            if name == b"Content-Type":
                kind = value
            else:
                rest.append((name, value))
        if loc.settings.charset is not None:
            # each part's type is the one the client would get whole: charset's with it
            # (nginx's charset header filter runs before the range filter)
            kind = charset.decide([(b"Content-Type", kind)], 206, loc.settings, req)[0][0][1]
        pieces: list[Piece] = []
        for start, end in ranges:
            pieces.append(b"\r\n--" + boundary + b"\r\nContent-Type: " + kind
                          + b"\r\nContent-Range: bytes %d-%d/%d\r\n\r\n"
                          % (start, end - 1, size))
            pieces += _cut(body, start, end)
        pieces.append(b"\r\n--" + boundary + b"--\r\n")
        rest.insert(0, (b"Content-Type", b"multipart/byteranges; boundary=" + boundary))
        if not self._head(conn, req, loc, 206, rest, _length(pieces), head_only) \
                or head_only:
            os.close(fd)
            return DONE
        return self._body(conn, req, loc, fd, pieces, out)

    def _head(self, conn: ClientSide, req: Request, loc: Location, status: int,
              headers: list[tuple[bytes, bytes]], length: int,
              head_only: bool) -> bool:
        """The response head, written; False when it could not be (the connection is
        cut)."""
        exchange = conn.exchange
        assert exchange is not None
        req.status = status = final_status(req, status)
        head_only = head_only or status in (204, 304)
        rhead = ResponseHead(status, reason(status), b"HTTP/1.1", headers, length, False)
        try:
            out = response_head(exchange, self.respond, req, loc, rhead, self.w.http_date(),
                                RESPONSE_DROP, None, head_only)
        except ProtocolError:
            exchange.abort()
            return False
        if head_only:
            out += exchange.end(None)
        exchange.write(out)
        req.bytes_sent = len(out)
        return True

    def _body(self, conn: ClientSide, req: Request, loc: Location, fd: int,
              pieces: list[Piece], out: Output | None) -> Outcome:
        s = loc.settings
        paced = None
        if s.limit_rate is not None or req.in_task:  # (set $limit_rate sets in_task)
            paced = rate.pace(req, s, self.respond.client_error(req))
        if _length(pieces) <= _WHOLE and (out is None or out.immediate) and paced is None:
            try:
                data = _read_pieces(fd, pieces)
            except OSError as e:
                return self._read_failed(conn, req, e)
            finally:
                _close(fd)
            if data is None:
                return self._shrunk(conn, req)
            if out is not None:
                try:
                    data = out.now(data)
                except OutputFailed as e:  # (a .gz that does not inflate: gunzip)
                    self.w.log.error(str(e), conn, req)
                    conn.abort()  # (its head is out: the response must not look whole)
                    return DONE
            self._send_last(conn, req, loc, data)
            return DONE
        return self._stream(conn, req, loc, fd, pieces, out, paced)

    async def _stream(self, conn: ClientSide, req: Request, loc: Location, fd: int,
                      pieces: list[Piece], out: Output | None, paced: Pace | None) -> Step:
        exchange = conn.exchange
        assert exchange is not None
        try:
            if out is not None:
                before = await out.begin()
                if exchange.closed:
                    return DONE
                if before:
                    self._send(exchange, req, before)
            return await self._pieces(conn, req, loc, fd, pieces, out, paced)
        except OutputFailed as e:
            self.w.log.error(str(e), conn, req)
            exchange.abort()  # (its head is out: the response must not look whole)
            return DONE
        finally:
            _close(fd)

    async def _pieces(self, conn: ClientSide, req: Request, loc: Location, fd: int,
                      pieces: list[Piece], out: Output | None, paced: Pace | None) -> Step:
        exchange = conn.exchange
        assert exchange is not None
        s = loc.settings
        for piece in pieces:
            held: bytes | None
            if isinstance(piece, bytes):
                held, at, end = piece, 0, len(piece)
            else:
                held, (at, end) = None, piece
            while at < end:
                want = min(_CHUNK, end - at)
                if paced is not None:
                    want = await paced.take(want)
                    if exchange.closed:
                        return DONE
                if held is not None:
                    data = held[at:at + want]
                else:
                    try:
                        data = os.pread(fd, want, at)
                    except OSError as e:
                        return self._read_failed(conn, req, e)
                    if not data:
                        return self._shrunk(conn, req)
                at += len(data)
                if paced is not None:
                    paced.sent(len(data))
                if out is not None:
                    data = await out.feed(data)
                if exchange.closed:
                    return DONE
                if data:
                    self._send(exchange, req, data)
                if exchange.paused() and not await self.respond.client_took_it(
                        conn, req, exchange, s.send_timeout):
                    return DONE
        tail = b""
        if out is not None:
            tail = await out.end()
            if exchange.closed:
                return DONE
        self._send_last(conn, req, loc, tail)
        return DONE

    def _send(self, exchange: Exchange, req: Request, data: bytes) -> None:
        out = exchange.body(data)
        exchange.write(out)
        req.sent_body(len(out), len(data))

    def _send_last(self, conn: ClientSide, req: Request, loc: Location, data: bytes) -> None:
        exchange = conn.exchange
        assert exchange is not None
        out = exchange.body(data) if data else b""
        out += exchange.end(self.respond.trailers(req, loc) if req.expect_trailers else None)
        exchange.write(out)
        req.sent_body(len(out), len(data))

    def _read_failed(self, conn: ClientSide, req: Request, e: OSError) -> Step:
        self.w.log.error(f"pread() failed {_error_text(e)}", conn, req)
        if conn.exchange is not None:
            conn.exchange.abort()  # the head is out: the response must not look whole
        return DONE

    def _shrunk(self, conn: ClientSide, req: Request) -> Step:
        self.w.log.error("file was truncated while it was sent", conn, req)
        if conn.exchange is not None:
            conn.exchange.abort()
        return DONE

    # --- autoindex ------------------------------------------------------------------------

    def _listing(self, conn: ClientSide, req: Request, loc: Location,
                 directory: str) -> Outcome:
        s = loc.settings
        callback = None
        if s.autoindex_format == "jsonp":
            callback = _arg(req.args, "callback")
            if callback and not all(c.isalnum() or c in "_." for c in callback):
                self.w.log.info("client sent invalid callback", conn, req)
                return self.fail(conn, req, loc, 400)
        try:
            entries = []
            with os.scandir(directory) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    kind = ("directory" if stat.S_ISDIR(st.st_mode) else
                            "file" if stat.S_ISREG(st.st_mode) else "other")
                    entries.append(Entry(kind != "directory", entry.name, kind,
                                         int(st.st_mtime), st.st_size))
        except OSError as e:
            self.w.log.error(f'opendir() "{directory}" failed {_error_text(e)}', conn, req)
            return self.fail(conn, req, loc, 403 if e.errno == errno.EACCES else 500)
        entries.sort(key=lambda e: (e.is_file, os.fsencode(e.name)))
        fmt = s.autoindex_format
        if fmt == "html":
            utf8 = s.charset is not None and s.charset.render(req).lower() == "utf-8"
            body = autoindex_html(req.uri, entries, s.autoindex_exact_size,
                                  s.autoindex_localtime, utf8)
            ctype = b"text/html"
        elif fmt == "xml":
            body, ctype = autoindex_xml(entries), b"text/xml; charset=utf-8"
        elif callback:
            body = (b"/* callback */\r\n" + callback.encode() + b"("
                    + autoindex_json(entries) + b");")
            ctype = b"application/javascript"
        else:
            body, ctype = autoindex_json(entries), b"application/json"
        if final_status(req, 200) == 200:
            refused = self.respond.unmodified(conn, req, loc, None, [], self.fail)
            if refused is not None:
                return refused
        self.respond.send(conn, req, loc, 200, body, ctype)
        return DONE


class Entry(NamedTuple):
    """A directory entry as autoindex lists it."""

    is_file: bool  # (directories sort first)
    name: str
    kind: str  # directory, file, other
    mtime: int
    size: int


def _arg(args: str, name: str) -> str:
    for pair in args.split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return unquote(value)
    return ""


def _html(text: str) -> str:
    """nginx's ngx_escape_html: <, >, & and the double quote."""
    return escape(text, quote=False).replace('"', "&quot;")


def autoindex_json(entries: list[Entry]) -> bytes:
    items = []
    for e in entries:
        name = json.dumps(e.name, ensure_ascii=False)[1:-1]
        item = (f'{{ "name":"{name}", "type":"{e.kind}", "mtime":"'
                f'{formatdate(e.mtime, usegmt=True)}"')
        if e.kind == "file":
            item += f', "size":{e.size}'
        items.append(item + " }")
    return ("[\r\n" + ",\r\n".join(items) + ("\r\n" if items else "") + "]").encode(
        "utf-8", "surrogateescape")


def autoindex_xml(entries: list[Entry]) -> bytes:
    out = ['<?xml version="1.0"?>\r\n<list>\r\n']
    for e in entries:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e.mtime))
        size = f' size="{e.size}"' if e.kind == "file" else ""
        out.append(f'<{e.kind} mtime="{at}"{size}>{_html(e.name)}</{e.kind}>\r\n')
    out.append("</list>\r\n")
    return "".join(out).encode("utf-8", "surrogateescape")


def _back(text: str, utf8: bool) -> str:
    return text if utf8 else text.encode("latin-1").decode("utf-8", "surrogateescape")


def autoindex_html(uri: str, entries: list[Entry], exact: bool, localtime: bool,
                   utf8: bool = False) -> bytes:
    """nginx's listing, directories first and then by name."""
    title = _html(uri)
    out = [f"<html>\r\n<head><title>Index of {title}</title></head>\r\n<body>\r\n"
           f"<h1>Index of {title}</h1><hr><pre><a href=\"../\">../</a>\r\n"]
    for is_file, name, _, mtime, size in entries:
        is_dir = not is_file
        # ngx_escape_uri's URI component: all but letters, digits and -._~
        href = quote(name.encode("utf-8", "surrogateescape"), safe="") + (
            "" if is_file else "/")
        # names are measured in characters when the response's charset is UTF-8, else
        # in bytes (a character may then be cut, as nginx cuts it)
        shown = name if utf8 else name.encode("utf-8", "surrogateescape").decode(
            "latin-1")
        if len(shown) > 50:
            text = _html(_back(shown[:47], utf8)) + "..&gt;"
            pad = 0
        else:
            text = _html(_back(shown, utf8))
            n = len(shown)
            if is_dir and n < 50:
                text += "/"
                n += 1
            pad = 50 - n
        t = time.localtime(mtime) if localtime else time.gmtime(mtime)
        date = f"{t.tm_mday:02d}-{_MONTHS[t.tm_mon - 1]}-{t.tm_year} {t.tm_hour:02d}:" \
               f"{t.tm_min:02d} "
        if exact:
            sized = "                  -" if is_dir else f"{size:19d}"
        else:
            sized = "      -" if is_dir else _human(size)
        out.append(f'<a href="{href}">{text}</a>{" " * pad} {date}{sized}\r\n')
    out.append("</pre><hr></body>\r\n</html>\r\n")
    return "".join(out).encode("utf-8", "surrogateescape")


def _human(length: int) -> str:
    if length > 1024 ** 3 - 1:
        size, scale = length // 1024 ** 3, "G"
        size += length % 1024 ** 3 > 1024 ** 3 // 2 - 1
    elif length > 1024 ** 2 - 1:
        size, scale = length // 1024 ** 2, "M"
        size += length % 1024 ** 2 > 1024 ** 2 // 2 - 1
    elif length > 9999:
        size, scale = length // 1024, "K"
        size += length % 1024 > 511
    else:
        return f" {length:6d}"
    return f"{size:6d}{scale}"


# --- the range filter ---------------------------------------------------------------------

def _cut(body: list[Piece], first: int, end: int) -> list[Piece]:
    """Bytes [first, end) of a body of bytes and parts of the file."""
    out: list[Piece] = []
    at = 0
    for piece in body:
        n = len(piece) if isinstance(piece, bytes) else piece[1] - piece[0]
        lo, hi = max(first, at), min(end, at + n)
        if lo < hi:
            out.append(piece[lo - at:hi - at] if isinstance(piece, bytes)
                       else (piece[0] + lo - at, piece[0] + hi - at))
        at += n
    return out


def _length(pieces: list[Piece]) -> int:
    return sum(len(p) if isinstance(p, bytes) else p[1] - p[0] for p in pieces)


def _read_pieces(fd: int, pieces: list[Piece]) -> bytes | None:
    """The pieces' bytes, the file's read; None when the file is shorter than they say."""
    out = []
    for piece in pieces:
        if isinstance(piece, bytes):
            out.append(piece)
            continue
        start, end = piece
        data = os.pread(fd, end - start, start)
        if len(data) < end - start:
            return None
        out.append(data)
    return b"".join(out)


def _raw_arg(args: str, name: str) -> str | None:
    """An argument's value as it came (nginx's ngx_http_arg: the name in any case)."""
    for pair in args.split("&"):
        key, eq, value = pair.partition("=")
        if eq and key.lower() == name:
            return value
    return None


def _or_minus_one(value: int | None) -> int:
    return -1 if value is None else value


def _offset(value: str | None, size: int) -> int:
    """flv's ``start``: digits within the file, else 0 (nginx's ngx_atoof and its test)."""
    start = decimal(value) if value else None
    return start if start is not None and start < size else 0


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _args_of(req: Request) -> str:
    """The request's arguments as an index's internal redirect carries them on (nginx's
    index and random_index modules pass r->args with the new URI)."""
    return "?" + req.args if req.args else ""


__all__ = ["Entry", "StaticModule", "autoindex_html", "autoindex_json", "autoindex_xml",
           "escapes", "file_path"]
