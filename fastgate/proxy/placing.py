"""Files put in place whole, as nginx's ngx_ext_rename_file and ngx_copy_file put
them: a body is written to a hidden file beside its place (the nearest directory that
exists, so that the rename stays on one file system) and renamed in when it is whole,
so a reader never sees half of one and a body cut short leaves nothing. Used by
WebDAV's PUT, COPY and MOVE (``proxy.dav``) and by ``proxy_store`` and its FastCGI,
uwsgi and SCGI kin (``proxy.store``)."""

from __future__ import annotations

import errno
import os
import secrets
import stat
import tempfile

from fastgate.errors import FastgateError


class PlaceError(FastgateError):
    """A file that could not be put in place; the message is the error log's line."""


def dir_access(access: int) -> int:
    """nginx's ngx_dir_access: who may read may also enter."""
    return access | (access & 0o444) >> 2


def nearest_dir(path: str) -> str:
    """The directory a file at ``path`` would be in, or the nearest one above it that
    exists."""
    parent = os.path.dirname(path) or "."
    while not os.path.isdir(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    return parent


def make_path(path: str, access: int) -> None:
    """The directories above ``path`` that are missing, each with ``access`` (nginx's
    ngx_create_full_path; os.makedirs would give the upper ones the default mode)."""
    parent = os.path.dirname(path)
    missing = []
    while parent and not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, access)
        except FileExistsError:
            pass
        except OSError as e:
            raise PlaceError(f'mkdir() "{directory}" failed ({e.errno}: {e.strerror})') \
                from None


def rename_into(src: str, dst: str, create_path: bool, path_access: int) -> None:
    """``src`` renamed to ``dst``, the directories above it made when they are missing
    and ``create_path`` says so; across file systems a copy, then ``src`` removed."""
    try:
        os.rename(src, dst)
        return
    except OSError as e:
        err = e
    if err.errno == errno.ENOENT and create_path:
        make_path(dst, path_access)
        try:
            os.rename(src, dst)
            return
        except OSError as e:
            err = e
    if err.errno == errno.EXDEV:
        copy_file(src, dst, os.stat(src))
        unlink_quietly(src)
        return
    raise PlaceError(f'rename() "{src}" to "{dst}" failed ({err.errno}: {err.strerror})')


def copy_file(src: str, dst: str, st: os.stat_result) -> None:
    """``src`` to ``dst`` with its mode (less the umask, as the file is created with
    it) and time, as nginx's ngx_copy_file; under a temporary name, then renamed."""
    temp = None
    try:
        with open(src, "rb") as f:
            head, base = os.path.split(dst)
            name = os.path.join(head, f".{base}.{secrets.token_hex(5)}")
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                         stat.S_IMODE(st.st_mode))
            temp = name  # (ours to remove from here on)
            with os.fdopen(fd, "wb") as out:
                while data := f.read(65536):
                    out.write(data)
        os.utime(temp, (st.st_atime, st.st_mtime))
        os.rename(temp, dst)
        temp = None
    except OSError as e:
        raise PlaceError(f'copy "{src}" to "{dst}" failed ({e.errno}: {e.strerror})') \
            from None
    finally:
        if temp is not None:
            unlink_quietly(temp)


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class Spool:
    """A body on its way to ``path``: ``write`` as it comes, then ``place`` it (the
    whole has come) or ``discard`` it. Either closes it; a Spool neither placed nor
    discarded leaves a hidden file behind, so every path must end in one."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd, self.temp = tempfile.mkstemp(prefix=".", suffix=".part",
                                              dir=nearest_dir(path))
        self.written = 0
        self.open = True

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
            self.written += n

    def place(self, access: int, mtime: int | None, create_path: bool) -> None:
        """Renamed to its path with mode ``access`` (and the time ``mtime``); a
        PlaceError says why it could not be (and it is gone)."""
        try:
            try:
                os.fchmod(self.fd, access)
                if mtime is not None:
                    os.utime(self.fd, (mtime, mtime))
            except OSError as e:
                raise PlaceError(f'chmod() "{self.temp}" failed ({e.errno}: '
                                 f"{e.strerror})") from None
            rename_into(self.temp, self.path, create_path, dir_access(access))
            self.temp = ""
        finally:
            self.discard()

    def discard(self) -> None:
        if not self.open:
            return
        self.open = False
        os.close(self.fd)
        if self.temp:
            unlink_quietly(self.temp)


__all__ = ["PlaceError", "Spool", "copy_file", "dir_access", "make_path", "nearest_dir",
           "rename_into", "unlink_quietly"]
