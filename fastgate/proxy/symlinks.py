"""nginx's ``disable_symlinks on|if_not_owner [from=PART]`` (ngx_open_file_wrapper): a
file is opened one path component at a time, each with ``openat`` from the one before,
so that no symbolic link on the way is followed (``on``), or only one whose owner owns
what it points to (``if_not_owner``); the part ``from=`` names (the document root, say)
is opened as it is. A link refused on the way is the error nginx's openat gives: ELOOP
for the last component, ENOTDIR for a directory (an ``O_PATH`` link opened as itself
is not one), ELOOP for an owner that differs. With ``off`` (the default), paths are
opened as the system resolves them."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastgate.config.model import Settings

# nginx's NGX_FILE_SEARCH: a descriptor to walk from, not to read (O_PATH on Linux)
_SEARCH = getattr(os, "O_PATH", os.O_RDONLY) | os.O_NONBLOCK | os.O_CLOEXEC
_TEST = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # (nginx's file-info open)
REFUSED = (errno.ELOOP, errno.EMLINK)  # what a refused link gives


def policy(s: Settings, r: object, path: str) -> tuple[str, int]:
    """The mode for ``path`` and where the checked part begins (nginx's
    ngx_http_set_disable_symlinks): after ``from=``'s value when the path starts with
    it at a component's end; the whole path when it is ``from=`` itself: not checked."""
    mode = s.disable_symlinks
    given = s.disable_symlinks_from
    if mode == "off" or given is None:
        return mode, 0
    start = given.render(r)
    if not start or len(start) > len(path) or not path.startswith(start):
        return mode, 0
    if len(start) == len(path):
        return "off", 0
    if path[len(start)] == "/":
        return mode, len(start)
    if start.endswith("/"):
        return mode, len(start) - 1
    return mode, 0


def open_file(path: str, flags: int, s: Settings, r: object) -> int:
    """``path`` opened with ``flags`` as the location's ``disable_symlinks`` allows;
    OSError as nginx's open would fail."""
    mode, start = policy(s, r, path)
    if mode == "off":
        return os.open(path, flags)
    return _walk(path, flags, mode, start)


def file_info(path: str, s: Settings, r: object) -> os.stat_result:
    """What ``stat`` says of ``path``, found as ``open_file`` finds it."""
    mode, start = policy(s, r, path)
    if mode == "off":
        return os.stat(path)
    fd = _walk(path, _TEST, mode, start)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def label(s: Settings, test: bool = False) -> str:
    """The call an error log line names, as nginx's ``of.failed`` (``test``: a file
    looked at, not opened — try_files, index, ``if -f``)."""
    if s.disable_symlinks == "off":
        return "stat()" if test else "open()"
    return "openat()"


def _walk(path: str, flags: int, mode: str, start: int) -> int:
    if start:
        at = os.open(path[:start], _SEARCH)
        rest = path[start + 1:]
    elif path.startswith("/"):
        at = os.open("/", _SEARCH)
        rest = path[1:]
    else:
        at = os.open(".", _SEARCH)
        rest = path
    try:
        *dirs, last = rest.split("/")
        for name in dirs:
            if not name:
                continue
            fd = (_owned(at, name, _SEARCH) if mode == "if_not_owner"
                  else os.open(name, _SEARCH | os.O_NOFOLLOW, dir_fd=at))
            os.close(at)
            at = fd
        if not last:  # (a path ending in "/": the directory itself)
            return os.open(".", flags, dir_fd=at)
        if mode == "if_not_owner":
            return _owned(at, last, flags)
        return os.open(last, flags | os.O_NOFOLLOW, dir_fd=at)
    finally:
        os.close(at)


def _owned(at: int, name: str, flags: int) -> int:
    """nginx's ngx_openat_file_owner: followed, but refused (ELOOP) when what was
    opened and the name's own entry have different owners."""
    fd = os.open(name, flags, dir_fd=at)
    try:
        link = os.stat(name, dir_fd=at, follow_symlinks=False)
        if os.fstat(fd).st_uid != link.st_uid:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
    except BaseException:
        os.close(fd)
        raise
    return fd


__all__ = ["REFUSED", "file_info", "label", "open_file", "policy"]
