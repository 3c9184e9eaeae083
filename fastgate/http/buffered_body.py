"""A request body kept whole before it goes on (nginx's buffered request body): in
memory up to a size (``client_body_buffer_size``), and past it in a temporary file
that has no name (``O_TMPFILE`` where the filesystem has it, unlinked at once where
not), so that nothing is left behind whatever happens to the worker. A body in memory
is what ``$request_body`` gives; one in a file is read back in pieces each time it is
sent (a second server after the first failed reads it again from its start).

Whoever makes one holds it; ``hold`` adds a holder (a mirror's copy, which may outlive
its request), ``close`` lets go of one, and the file closes with the last.

``client_body_in_file_only`` (``keep`` "on" or "clean"): every byte goes to a file with
a name (``name``, nginx's ``$request_body_file``), made at once so that an empty body
has one too, as nginx's; "on" leaves it behind, "clean" removes it with the last
holder. A body that spilled past the buffer gets a name only when one is asked for
(``file_name``: ``$request_body_file`` read), linked into the directory then and
removed with the last holder, as nginx removes its temporary files."""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from fastgate.errors import FastgateError

PIECE = 64 * 1024  # read back from the file at once: one upstream write


class KeptBodyError(FastgateError):
    """The body's file could not be read back: the gateway's own failure (a 500, no
    server blamed), whoever was sending it."""


class BufferedBody:
    __slots__ = ("_parts", "_limit", "_directory", "_file", "size", "_holders", "name",
                 "_clean")

    def __init__(self, limit: int, directory: str | None, keep: str = "off") -> None:
        """OSError when ``keep`` asks for a named file that cannot be made."""
        self._parts: list[bytes] = []
        self._limit = limit
        self._directory = directory  # None: the system's temporary directory
        self._file: BinaryIO | None = None
        self.size = 0
        self._holders = 1
        self.name = ""  # the file's, when it has one
        self._clean = keep == "clean"
        if keep != "off":
            fd, self.name = tempfile.mkstemp(prefix="", dir=directory)
            self._file = os.fdopen(fd, "w+b")

    def write(self, data: bytes) -> None:
        """``data`` after what is kept; OSError when the file cannot be made or
        written (the body is then lost, and the request answered 500 by the caller)."""
        self.size += len(data)
        if self._file is None:
            self._parts.append(data)
            if self.size <= self._limit:
                return
            self._file = _nameless(self._directory or tempfile.gettempdir())
            parts, self._parts = self._parts, []
            for part in parts:
                self._file.write(part)
        else:
            self._file.write(data)

    def complete(self) -> None:
        """The body has all come: in the file for whoever reads it by its name (OSError
        when what was held back cannot be written)."""
        if self._file is not None:
            self._file.flush()

    def in_memory(self) -> bytes | None:
        """The whole body when it fits in the buffer; None when it went to a file."""
        if self._file is not None:
            return None
        if len(self._parts) != 1:
            self._parts = [b"".join(self._parts)]
        return self._parts[0]

    def pieces(self, size: int = PIECE) -> Iterator[bytes]:
        """The file's bytes from its start, ``size`` at a time (KeptBodyError when
        they cannot be read back)."""
        f = self._file
        assert f is not None
        offset = 0
        while offset < self.size:
            try:
                if offset == 0:
                    f.flush()
                piece = os.pread(f.fileno(), min(size, self.size - offset), offset)
            except OSError as e:
                raise KeptBodyError(f"the request body's temporary file could not be read "
                                    f"({e.errno}: {e.strerror})") from None
            if not piece:
                raise KeptBodyError(f"the request body's temporary file ended at {offset} "
                                    f"of {self.size} bytes")
            offset += len(piece)
            yield piece

    def file_name(self) -> str:
        """The file's name (``$request_body_file``), given it now if it has none: ""
        while the body is in memory, or when the file cannot be named (a filesystem
        without ``O_TMPFILE``, whose unlinked files cannot be linked again)."""
        if self.name or self._file is None:
            return self.name
        directory = self._directory or tempfile.gettempdir()
        source = f"/proc/self/fd/{self._file.fileno()}"
        try:
            where = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return ""
        try:
            for _ in range(8):  # (a name taken already: another)
                name = secrets.token_hex(8)
                try:
                    # open(2)'s way to give an O_TMPFILE file a name, with no privilege:
                    # linkat() following the /proc link (a directory fd makes Python
                    # call linkat, where a plain link() would not follow it)
                    os.link(source, name, dst_dir_fd=where, follow_symlinks=True)
                except FileExistsError:
                    continue
                except OSError:
                    return ""
                self.name, self._clean = os.path.join(directory, name), True
                return self.name
            return ""
        finally:
            os.close(where)

    def hold(self) -> None:
        self._holders += 1

    def close(self) -> None:
        """One holder done with it; the last closes the file."""
        self._holders -= 1
        if self._holders > 0:
            return
        if self._file is not None:
            self._file.close()
            if self._clean:
                try:
                    os.unlink(self.name)
                except OSError:  # (gone already: nothing to clean)
                    pass
        self._parts = []


def _nameless(directory: str) -> BinaryIO:
    """A file with no name in ``directory``: ``O_TMPFILE`` without ``O_EXCL`` (Python's
    TemporaryFile sets it), so that ``file_name`` can link it later; on a filesystem
    without ``O_TMPFILE``, one unlinked at once (never named then)."""
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR):
            raise
        return tempfile.TemporaryFile(dir=directory)
    return os.fdopen(fd, "w+b")
