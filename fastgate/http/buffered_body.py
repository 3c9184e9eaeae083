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
holder."""

from __future__ import annotations

import os
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
            self._file = tempfile.TemporaryFile(dir=self._directory)
            parts, self._parts = self._parts, []
            for part in parts:
                self._file.write(part)
        else:
            self._file.write(data)

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
