"""The error log (nginx's line format and levels) and access logs (``log_format``).

Every log the configuration names is opened before the gateway starts (``check_logs``:
one that cannot be is an ``[emerg]`` with its FILE:LINE, as nginx), so no line is lost
without a word. Lines are gathered in memory and handed over in batches (every 0.1 s for
the error log, every second for access logs unless ``buffer=``/``flush=`` say otherwise,
a ``flush=`` under a second kept to; at once for ``error`` and above) to one writer
thread per file, so a request never waits on a slow disk; to syslog they go as RFC 3164
datagrams, one per line, as nginx sends them.

Lines are bytes: a value that arrived as bytes is written as those bytes (escaped as
nginx escapes them), never decoded and encoded again.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from fastgate.config.directives.log import LOG_LEVELS, SYSLOG_SEVERITIES
from fastgate.config.model import ErrorLogFile, LogFile, Syslog
from fastgate.errors import FastgateError
from fastgate.http.engine import UnreadLine
from fastgate.variables import request_line

if TYPE_CHECKING:
    from fastgate.config.model import AccessLog, Config, LogFormat

_RANK = {name: i for i, name in enumerate(LOG_LEVELS)}
_SEVERITY = {name: SYSLOG_SEVERITIES.index(name) for name in LOG_LEVELS}
_STREAMS = ("stderr", "stdout")


def upstream_url(req: Any) -> str:
    """The error log's ``upstream:`` field as nginx writes it: the scheme, the server
    (a unix socket's path followed by ":") and the URI the upstream request carries —
    ``http://127.0.0.1:8080/api/x``, ``fastcgi://unix:/run/php.sock:``."""
    addr: str = req.upstream_addr
    loc = req.location
    scheme = getattr(req, "upstream_scheme", None)
    if scheme is None and loc is not None:
        pp = loc.proxy_pass
        if pp is not None and pp.scheme:
            scheme = pp.scheme
        elif loc.app_pass is not None:
            scheme = loc.app_pass.kind
    target = getattr(req, "upstream_target", None) if scheme in ("http", "https") else None
    uri = target.decode("latin-1") if target else ""
    return (f"{scheme}://" if scheme else "") + addr + (":" if addr.startswith("unix:")
                                                         else "") + uri


class LogOpenError(FastgateError):
    """A log that cannot be opened, in nginx's words (``open() "PATH" failed (...)``)."""


def _failed(f: LogFile, e: OSError) -> LogOpenError:
    text = f'open() "{f.path}" failed ({e.errno}: {e.strerror})'
    if f.default:
        text += (' (the default access log: set "access_log" to a writable path or '
                 f'"off" in {f.where.file})')
    elif f.where.line:
        text += f" in {f.where.file}:{f.where.line}"
    return LogOpenError(text)


def open_file(f: LogFile) -> IO[bytes]:
    """The file for appending. nginx makes no directory; fastgate makes one only for its
    implicit ``logs/access.log``, so that a configuration without ``access_log`` runs
    wherever it is kept."""
    try:
        if f.default:
            os.makedirs(os.path.dirname(f.path), exist_ok=True)
        return open(f.path, "ab", buffering=0)
    except OSError as e:
        raise _failed(f, e) from None


def _syslog_address(f: LogFile, syslog: Syslog) -> tuple[int, Any]:
    if isinstance(syslog.server, str):
        return socket.AF_UNIX, syslog.server
    host, port = syslog.server
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError):
        raise LogOpenError(f'host not found in "{f.path}" in {f.where.file}:'
                           f"{f.where.line}") from None
    return info[0][0], info[0][4]


def check_logs(config: Config) -> None:
    """Open (creating, as nginx does) every log file the configuration names, and
    resolve every syslog server: LogOpenError for the first that fails. With ``user``
    the files become the workers' (as nginx's master hands them over), so that workers
    can write them and open them again after a rotation."""
    user = config.user
    for f in config.log_files:
        if f.syslog is not None:
            _syslog_address(f, f.syslog)
        elif f.path not in _STREAMS:
            open_file(f).close()
            if user is not None:
                try:
                    if f.default:
                        os.chown(os.path.dirname(f.path), user.uid, user.gid)
                    os.chown(f.path, user.uid, user.gid)
                except OSError as e:
                    raise LogOpenError(f'chown() "{f.path}" to user "{user.name}" failed '
                                       f"({e.errno}: {e.strerror})") from None


# --- where lines go -------------------------------------------------------------------------

_CLOSE = object()


class StreamSink:
    """``stderr`` or ``stdout``: written at once."""

    def __init__(self, name: str) -> None:
        self._stream = sys.stderr if name == "stderr" else sys.stdout

    def write(self, data: bytes) -> None:
        try:
            self._stream.flush()
            self._stream.buffer.write(data)
            self._stream.buffer.flush()
        except (OSError, ValueError):
            pass  # a closed terminal must not stop the gateway

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        pass


class FileSink:
    """A file written by a thread of its own: ``write`` never blocks on the disk."""

    def __init__(self, f: LogFile) -> None:
        self.file = f
        self._f = open_file(f)
        # bytes to write, ("reopen", the new file), or _CLOSE
        self._q: queue.SimpleQueue[bytes | tuple[str, IO[bytes]] | object] = queue.SimpleQueue()
        self._t = threading.Thread(target=self._run, name=f"log {f.path}", daemon=True)
        self._t.start()

    def write(self, data: bytes) -> None:
        self._q.put(data)

    def reopen(self) -> None:
        """The file at the same path again (after rotation). Opened here, so that a
        failure (LogOpenError) keeps the old file and can be told to the caller."""
        self._q.put(("reopen", open_file(self.file)))

    def close(self) -> None:
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
                if isinstance(item, tuple):
                    f.close()
                    f = self._f = item[1]
                    continue
                if isinstance(item, bytes):
                    f.write(item)
            except (OSError, ValueError):
                continue  # a full or vanished disk must not kill the writer


class SyslogSink:
    """RFC 3164 datagrams, nginx's header: ``<PRI>Mmm dd hh:mm:ss HOST TAG: ``."""

    MAX = 2048  # nginx's NGX_SYSLOG_MAX_STR, roughly: longer lines are cut

    def __init__(self, f: LogFile) -> None:
        assert f.syslog is not None
        self.syslog = f.syslog
        family, address = _syslog_address(f, f.syslog)
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._address = address
        self._host = socket.gethostname().encode() + b" " if f.syslog.hostname else b""
        self._tag = f.syslog.tag.encode()

    def send(self, severity: int, line: bytes) -> None:
        s = self.syslog
        head = b"<%d>%s %s%s: " % (s.facility * 8 + severity,
                                   time.strftime("%b %e %H:%M:%S").encode(), self._host,
                                   self._tag)
        try:
            self._sock.sendto((head + line)[:self.MAX], self._address)
        except OSError:
            pass  # nobody listening, or the socket buffer full: as nginx, the line is gone

    def close(self) -> None:
        self._sock.close()


def _sink(f: LogFile) -> StreamSink | FileSink:
    return StreamSink(f.path) if f.path in _STREAMS else FileSink(f)


# --- the error log ----------------------------------------------------------------------------

class _Target:
    """One error log file (or syslog server) and the level it starts at."""

    __slots__ = ("path", "rank", "sink", "syslog", "lines")

    def __init__(self, spec: ErrorLogFile) -> None:
        f = spec.file
        self.path = f.path
        self.rank = _RANK.get(spec.level, _RANK["error"])
        self.syslog = SyslogSink(f) if f.syslog is not None else None
        self.sink = _sink(f) if f.syslog is None else None
        self.lines: list[tuple[int, bytes]] = []

    def flush(self) -> None:
        lines, self.lines = self.lines, []
        if not lines:
            return
        if self.syslog is not None:
            for severity, line in lines:
                self.syslog.send(severity, line)
        elif self.sink is not None:
            self.sink.write(b"".join(line + b"\n" for _, line in lines))


class ErrorLog:
    """The error log: every ``error_log`` of the configuration, each written with the
    lines of its level and above (nginx's several error logs)."""

    RANKS = _RANK

    def __init__(self, files: tuple[ErrorLogFile, ...]) -> None:
        self._targets = [_Target(f) for f in files]
        # the lowest level any of them writes: below it a line is not even formatted
        self.level = min(t.rank for t in self._targets)
        # info lines go somewhere: a caller formats one only then (a refused token's)
        self.verbose = self.level <= _RANK["info"]
        self._flusher: asyncio.TimerHandle | None = None

    def reaches(self, path: str, level: str) -> bool:
        """Whether lines of ``level`` go to the log at ``path`` ("stderr")."""
        return any(t.path == path and t.rank <= _RANK[level] for t in self._targets)

    def write(self, level: str, message: str, conn: Any = None, req: Any = None) -> None:
        rank = _RANK[level]
        if rank < self.level:
            return
        stamp = time.strftime("%Y/%m/%d %H:%M:%S")
        # (pid#tid, as nginx's ngx_log_tid: the thread that writes, the main one's id
        # being the pid)
        line = f"{stamp} [{level}] {os.getpid()}#{threading.get_native_id()}: "
        if conn is not None:
            line += f"*{conn.connection_id} "
        line += message
        if conn is not None:
            line += f", client: {conn.remote_addr}"
        if req is not None:
            head = getattr(req, "head", None)
            if head is not None and (head.method or isinstance(head, UnreadLine)):
                request = request_line(req)  # the line as it came, as $request
            else:
                info = getattr(req, "connection", None)
                protocol = "2.0" if info is not None and info.http2 else req.version
                request = f"{req.method} {req.target} HTTP/{protocol}"
            line += f", server: {req.server_name}"
            if request:  # (none of a line not begun)
                line += f', request: "{request}"'
            if req.upstream_addr:
                line += f', upstream: "{upstream_url(req)}"'
            host = req.header(b"host")
            if host is not None:
                line += f', host: "{host.decode("latin-1")}"'
            referrer = req.header(b"referer")
            if referrer is not None:  # (nginx's last word on a request's line)
                line += f', referrer: "{referrer.decode("latin-1")}"'
        entry = (_SEVERITY[level], _bytes(line))
        for t in self._targets:
            if rank >= t.rank:
                t.lines.append(entry)
        if rank >= _RANK["error"]:
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
        for t in self._targets:
            t.flush()

    def reopen(self) -> None:
        """SIGUSR1: the files again; one that cannot be opened keeps the old one, and
        says so in the log."""
        self.flush()
        for t in self._targets:
            if t.sink is None:
                continue
            try:
                t.sink.reopen()
            except LogOpenError as e:
                self.write("alert", f"{e}; the old file is kept")

    def close(self) -> None:
        self.flush()
        for t in self._targets:
            if t.sink is not None:
                t.sink.close()
            if t.syslog is not None:
                t.syslog.close()


# --- access logs -------------------------------------------------------------------------------

_DEFAULT_UNSAFE = re.compile(rb'[\x00-\x1f"\\\x7f-\xff]')
_JSON_UNSAFE = re.compile(rb'[\x00-\x1f"\\]')
_JSON_SHORT = {0x22: b'\\"', 0x5C: b"\\\\", 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t",
               0x08: b"\\b", 0x0C: b"\\f"}


def _hex(m: re.Match[bytes]) -> bytes:
    return b"\\x%02X" % m.group()[0]


def _json(m: re.Match[bytes]) -> bytes:
    c = m.group()[0]
    return _JSON_SHORT.get(c) or b"\\u%04x" % c


def escape_default(raw: bytes) -> bytes:
    """nginx's ``escape=default``: ``"``, ``\\``, control bytes and bytes from 0x7F as
    ``\\xXX`` (so ``é`` is ``\\xC3\\xA9``)."""
    return _DEFAULT_UNSAFE.sub(_hex, raw)


def escape_json(raw: bytes) -> bytes:
    """nginx's ``escape=json``: JSON string escapes; UTF-8 stays as it is."""
    return _JSON_UNSAFE.sub(_json, raw)


_ESCAPES: dict[str, Callable[[bytes], bytes] | None] = {
    "default": escape_default, "json": escape_json, "none": None}


class _Pending:
    __slots__ = ("lines", "size", "since", "entry")

    def __init__(self, entry: AccessLog) -> None:
        self.lines: list[bytes] = []
        self.size = 0
        self.since = 0.0
        self.entry = entry


class AccessLogs:
    """The access logs of one configuration, by path."""

    TICK = 1.0  # an unbuffered log is written at least this often

    def __init__(self, formats: dict[str, LogFormat], errors: ErrorLog) -> None:
        self.formats = formats
        self.errors = errors
        self._sinks: dict[str, StreamSink | FileSink | SyslogSink] = {}
        self._pending: dict[str, _Pending] = {}
        self._flusher: asyncio.TimerHandle | None = None

    def write(self, entries: tuple[AccessLog, ...], req: Any) -> None:
        for entry in entries:
            cond = entry.condition
            if cond is not None:
                v = cond.render(req)
                if not v or v == "0":
                    continue
            line = self.render(self.formats[entry.format], req)
            f = entry.file
            if f.syslog is not None:
                sink = self._sink(f)
                if sink is not None:
                    sink.send(f.syslog.severity, line)  # type: ignore[union-attr]
                continue
            p = self._pending.get(f.path)
            if p is None:
                p = self._pending[f.path] = _Pending(entry)
            if not p.lines:
                p.since = time.monotonic()
            p.lines.append(line + b"\n")
            p.size += len(line) + 1
            if entry.buffer and p.size >= entry.buffer:
                self._write(f.path, p)
        if self._flusher is None and any(p.lines for p in self._pending.values()):
            try:
                self._flusher = asyncio.get_running_loop().call_later(self._delay(),
                                                                      self._tick)
            except RuntimeError:
                self.flush()

    def _delay(self) -> float:
        """How long until the pending lines are looked at again: a buffered log's
        ``flush=`` when it comes sooner (nginx's timer), else the tick."""
        delay = self.TICK
        now = time.monotonic()
        for p in self._pending.values():
            e = p.entry
            if p.lines and e.buffer and e.flush:
                delay = min(delay, max(e.flush - (now - p.since), 0.001))
        return delay

    @staticmethod
    def render(fmt: LogFormat, req: Any) -> bytes:
        escape = _ESCAPES.get(fmt.escape)
        blanks = iter(fmt.blanks)  # (escape=default's; the others write nothing)
        parts = []
        for p in fmt.template.parts:
            if isinstance(p, str):
                parts.append(p.encode("utf-8", "surrogateescape"))
            else:
                v = p(req)
                blank = next(blanks, b"")
                if not v:
                    parts.append(blank if isinstance(blank, bytes) else blank(req))
                    continue
                try:
                    raw = v.encode("utf-8", "surrogateescape")  # the bytes that came
                except UnicodeEncodeError:  # a code point no byte stands for: shown
                    raw = v.encode("utf-8", "backslashreplace")
                parts.append(escape(raw) if escape is not None else raw)
        return b"".join(parts)

    def _tick(self) -> None:
        self._flusher = None
        now = time.monotonic()
        for path, p in self._pending.items():
            e = p.entry
            if p.lines and (not e.buffer or (e.flush and now - p.since >= e.flush)):
                self._write(path, p)
        if any(p.lines for p in self._pending.values()):
            self._flusher = asyncio.get_running_loop().call_later(self._delay(), self._tick)

    def _sink(self, f: LogFile) -> StreamSink | FileSink | SyslogSink | None:
        sink = self._sinks.get(f.path)
        if sink is None:
            try:
                sink = self._sinks[f.path] = SyslogSink(f) if f.syslog else _sink(f)
            except LogOpenError as e:
                # opened at start: only a file removed since gets here
                self.errors.write("alert", f"{e}; access log lines for it are lost")
                return None
        return sink

    def _write(self, path: str, p: _Pending) -> None:
        lines, p.lines, p.size = p.lines, [], 0
        sink = self._sink(p.entry.file)
        if sink is not None:
            sink.write(b"".join(lines))  # type: ignore[union-attr]

    def flush(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        for path, p in self._pending.items():
            if p.lines:
                self._write(path, p)

    def reopen(self) -> None:
        self.flush()
        for sink in self._sinks.values():
            if isinstance(sink, FileSink):
                try:
                    sink.reopen()
                except LogOpenError as e:
                    self.errors.write("alert", f"{e}; the old file is kept")

    def close(self) -> None:
        self.flush()
        for sink in self._sinks.values():
            sink.close()
        self._sinks.clear()


def _bytes(line: str) -> bytes:
    """An error log line's bytes: those a client sent come back as they came (a
    request line's, decoded with surrogateescape), as nginx writes them; any other
    character that UTF-8 cannot carry as it is, escaped."""
    try:
        return line.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return line.encode("utf-8", "backslashreplace")
