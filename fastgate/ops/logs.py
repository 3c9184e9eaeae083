"""The error log (nginx's line format and levels) and access logs (``log_format``).

Lines are gathered in memory and handed over in batches (every 0.1 s for the error log,
every second for access logs, at once for ``error`` and above) to one writer thread per
file, so a request never waits on a slow disk.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sys
import threading
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


_REOPEN = object()
_CLOSE = object()


class FileSink:
    """A file written by a thread of its own: ``write`` never blocks on the disk."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._direct = path in ("stderr", "stdout")
        self._f = _open(path)
        if not self._direct:
            self._q: queue.SimpleQueue[object] = queue.SimpleQueue()
            self._t = threading.Thread(target=self._run, name=f"log {path}", daemon=True)
            self._t.start()

    def write(self, text: str) -> None:
        if self._direct:
            self._f.write(text)
            self._f.flush()
        else:
            self._q.put(text)

    def reopen(self) -> None:
        if not self._direct:
            self._q.put(_REOPEN)

    def close(self) -> None:
        if self._direct:
            self._f.flush()
            return
        self._q.put(_CLOSE)
        self._t.join(5)

    def _run(self) -> None:
        f = self._f
        while True:
            item = self._q.get()
            try:
                if item is _CLOSE:
                    f.close()
                    return
                if item is _REOPEN:
                    f.close()
                    f = self._f = _open(self.path)
                    continue
                f.write(item)  # type: ignore[arg-type]
                f.flush()
            except (OSError, ValueError):
                continue  # a full or vanished disk must not kill the writer


class ErrorLog:
    def __init__(self, path: str, level: str) -> None:
        self.path = path
        self.level = _RANK.get(level, _RANK["error"])
        self._sink = FileSink(path)
        self._lines: list[str] = []
        self._flusher: asyncio.TimerHandle | None = None

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
        self._lines.append(line + "\n")
        if _RANK[level] >= _RANK["error"]:
            self.flush()
        elif self._flusher is None:
            # a flood of 401s must not cost a write each: hand them over in one go
            try:
                self._flusher = asyncio.get_running_loop().call_later(0.1, self.flush)
            except RuntimeError:
                self.flush()

    def info(self, message: str, conn: Any = None, req: Any = None) -> None:
        self.write("info", message, conn, req)

    def notice(self, message: str, conn: Any = None, req: Any = None) -> None:
        self.write("notice", message, conn, req)

    def warn(self, message: str, conn: Any = None, req: Any = None) -> None:
        self.write("warn", message, conn, req)

    def error(self, message: str, conn: Any = None, req: Any = None) -> None:
        self.write("error", message, conn, req)

    def flush(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if self._lines:
            self._sink.write("".join(self._lines))
            self._lines.clear()

    def reopen(self) -> None:
        self.flush()
        self._sink.reopen()

    def close(self) -> None:
        self.flush()
        self._sink.close()


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
    """The access-log files of one configuration, by path."""

    def __init__(self, formats: dict[str, "LogFormat"]) -> None:
        self.formats = formats
        self._sinks: dict[str, FileSink] = {}
        self._lines: dict[str, list[str]] = {}
        self._flusher: asyncio.TimerHandle | None = None

    def write(self, entries: tuple["AccessLog", ...], req: Any) -> None:
        for entry in entries:
            line = self._render(self.formats[entry.format], req)
            self._lines.setdefault(entry.path, []).append(line + "\n")
        if self._flusher is None:
            try:
                self._flusher = asyncio.get_running_loop().call_later(1.0, self.flush)
            except RuntimeError:
                self.flush()

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

    def flush(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        for path, lines in self._lines.items():
            if not lines:
                continue
            sink = self._sinks.get(path)
            if sink is None:
                try:
                    sink = self._sinks[path] = FileSink(path)
                except OSError:
                    lines.clear()
                    continue
            sink.write("".join(lines))
            lines.clear()

    def reopen(self) -> None:
        self.flush()
        for sink in self._sinks.values():
            sink.reopen()

    def close(self) -> None:
        self.flush()
        for sink in self._sinks.values():
            sink.close()
        self._sinks.clear()
