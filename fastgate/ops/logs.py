"""The error log (nginx's line format and levels) and access logs (``log_format``).

Writes go to a buffered file object flushed once a second (and at exit), so a request
never waits on the disk; the error log is flushed at once for ``error`` and above.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from fastgate.config.directives import LOG_LEVELS

if TYPE_CHECKING:
    from fastgate.config.model import AccessLog, LogFormat

_RANK = {name: i for i, name in enumerate(LOG_LEVELS)}


def _open(path: str) -> IO[str]:
    if path == "stderr":
        return sys.stderr
    if path == "stdout":
        return sys.stdout
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    return open(path, "a", buffering=64 * 1024, encoding="utf-8", errors="backslashreplace")


class ErrorLog:
    def __init__(self, path: str, level: str) -> None:
        self.path = path
        self.level = _RANK.get(level, _RANK["error"])
        self._f = _open(path)
        self._flusher: asyncio.TimerHandle | None = None

    def enabled(self, level: str) -> bool:
        return _RANK[level] >= self.level

    def write(self, level: str, message: str, conn: Any = None, req: Any = None) -> None:
        if _RANK[level] < self.level:
            return
        stamp = time.strftime("%Y/%m/%d %H:%M:%S")
        line = f"{stamp} [{level}] {os.getpid()}#0: "
        if conn is not None:
            line += f"*{conn.connection_id} "
        line += message
        if conn is not None:
            line += f", client: {conn.remote_addr}"
        if req is not None:
            line += f', server: {req.server_name}, request: "{req.method} {req.target} ' \
                    f'HTTP/{req.version}"'
            if req.upstream_addr:
                line += f', upstream: "{req.upstream_addr}"'
            host = req.header(b"host")
            if host is not None:
                line += f', host: "{host.decode("latin-1")}"'
        self._f.write(line + "\n")
        if _RANK[level] >= _RANK["error"] or self._f in (sys.stderr, sys.stdout):
            self._f.flush()
        elif self._flusher is None:
            # a flood of 401s must not cost a write() each: flush soon, in one go
            try:
                self._flusher = asyncio.get_running_loop().call_later(0.1, self.flush)
            except RuntimeError:
                self._f.flush()

    def info(self, message: str, conn: Any = None, req: Any = None) -> None:
        self.write("info", message, conn, req)

    def notice(self, message: str, conn: Any = None, req: Any = None) -> None:
        self.write("notice", message, conn, req)

    def warn(self, message: str, conn: Any = None, req: Any = None) -> None:
        self.write("warn", message, conn, req)

    def error(self, message: str, conn: Any = None, req: Any = None) -> None:
        self.write("error", message, conn, req)

    def flush(self) -> None:
        self._flusher = None
        try:
            self._f.flush()
        except (OSError, ValueError):
            pass

    def reopen(self) -> None:
        if self._f not in (sys.stderr, sys.stdout):
            self._f.close()
            self._f = _open(self.path)

    def close(self) -> None:
        if self._f not in (sys.stderr, sys.stdout):
            self._f.close()
        else:
            self._f.flush()


def _escape_default(value: str) -> str:
    # nginx escape=default: ", \ and bytes < 0x20 or >= 0x7f as \xXX
    out = []
    for ch in value:
        o = ord(ch)
        if ch in '"\\' or o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02X}")
        else:
            out.append(ch)
    return "".join(out)


def _escape_json(value: str) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)[1:-1]


class AccessLogs:
    """The open access-log files of one configuration, by path."""

    def __init__(self, formats: dict[str, "LogFormat"]) -> None:
        self.formats = formats
        self._files: dict[str, IO[str]] = {}
        self._flusher: asyncio.TimerHandle | None = None

    def write(self, entries: tuple["AccessLog", ...], req: Any) -> None:
        for entry in entries:
            fmt = self.formats[entry.format]
            line = self._render(fmt, req)
            f = self._files.get(entry.path)
            if f is None:
                try:
                    f = self._files[entry.path] = _open(entry.path)
                except OSError:
                    continue
            f.write(line + "\n")
        self._schedule_flush()

    @staticmethod
    def _render(fmt: "LogFormat", req: Any) -> str:
        escape = {"default": _escape_default, "json": _escape_json}.get(fmt.escape)
        parts = []
        for p in fmt.template.parts:
            if isinstance(p, str):
                parts.append(p)
            else:
                v = p(req)
                if escape is not None:
                    v = escape(v)
                parts.append(v if v else ("-" if fmt.escape == "default" else ""))
        return "".join(parts)

    def _schedule_flush(self) -> None:
        if self._flusher is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._flusher = loop.call_later(1.0, self.flush)

    def flush(self) -> None:
        self._flusher = None
        for f in self._files.values():
            try:
                f.flush()
            except OSError:
                pass

    def reopen(self) -> None:
        self.close()

    def close(self) -> None:
        self.flush()
        for f in self._files.values():
            if f not in (sys.stderr, sys.stdout):
                f.close()
        self._files.clear()
