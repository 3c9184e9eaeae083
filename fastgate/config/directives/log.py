"""Logging: ``error_log`` (files and syslog) and the log module's ``log_format`` and
``access_log``."""

from __future__ import annotations

import re

from fastgate.config.context import (
    ANY_HTTP,
    HSL,
    HTTP,
    LIF,
    LMT,
    MAIN,
    Context,
    Level,
    Spec,
)
from fastgate.config.model import (
    AccessLog,
    ErrorLogFile,
    LogFile,
    Syslog,
    Where,
)
from fastgate.config.parser import Directive
from fastgate.config.values import (
    parse_host_port,
    parse_size,
    parse_time,
)

LOG_LEVELS = ("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg")


SYSLOG_FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "intern", "lpr", "news", "uucp", "clock",
    "authpriv", "ftp", "ntp", "audit", "alert", "cron", "local0", "local1", "local2",
    "local3", "local4", "local5", "local6", "local7")


# syslog's order (0 is emerg), nginx's names
SYSLOG_SEVERITIES = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")


_TAG = re.compile(r"[A-Za-z0-9_]{1,32}")


def parse_syslog(d: Directive, text: str) -> Syslog:
    """``ngx_syslog_parse_args``: the part after ``syslog:``."""
    server: tuple[str, int] | str | None = None
    facility, severity, tag, hostname = 23, 6, "fastgate", True
    for item in text.split(",") if text else ():
        if item.startswith("server="):
            addr = item[7:]
            if addr.startswith("unix:"):
                server = addr[5:]
                if not server:
                    raise d.error(f'no path in "{item}"')
            else:
                server = parse_host_port(d, addr, 514)
        elif item.startswith("facility="):
            if item[9:] not in SYSLOG_FACILITIES:
                raise d.error(f'unknown syslog facility "{item[9:]}"')
            facility = SYSLOG_FACILITIES.index(item[9:])
        elif item.startswith("severity="):
            if item[9:] not in SYSLOG_SEVERITIES:
                raise d.error(f'unknown syslog severity "{item[9:]}"')
            severity = SYSLOG_SEVERITIES.index(item[9:])
        elif item.startswith("tag="):
            if not _TAG.fullmatch(item[4:]):
                raise d.error('syslog "tag" only allows alphanumeric characters and '
                              'underscore, 32 at most')
            tag = item[4:]
        elif item == "nohostname":
            hostname = False
        else:
            raise d.error(f'unknown syslog parameter "{item}"')
    if server is None:
        raise d.error("no syslog server specified")
    return Syslog(server, facility, severity, tag, hostname)


def log_file(ld: Context, d: Directive, text: str) -> LogFile:
    """The first argument of ``error_log``/``access_log``, recorded so that every log
    is opened (and any that cannot be is refused) before the gateway starts."""
    where = Where(d.file, d.line)
    if text.startswith("syslog:"):
        f = LogFile(text, where, parse_syslog(d, text[7:]))
    else:
        f = LogFile(ld.path_of(text, prefix=True), where)
    ld.log_files.append(f)
    return f


def set_error_log(ld: Context, lvl: Level, d: Directive) -> None:
    level = d.args[1] if len(d.args) > 1 else "error"
    if level not in LOG_LEVELS:
        raise d.error(f'invalid log level "{level}"')
    if lvl.ctx == MAIN:
        # several may be given (nginx 1.5.2+): each file gets the lines of its level up
        lvl.local.setdefault("error_log", []).append(
            ErrorLogFile(log_file(ld, d, d.args[0]), level))
    else:
        ld.warn('"error_log" below the main level is ignored: fastgate keeps one error '
                "log per process", d)


def log_format(ld: Context, lvl: Level, d: Directive) -> None:
    name = d.args[0]
    args = list(d.args[1:])
    escape = "default"
    if args and args[0].startswith("escape="):
        escape = args.pop(0)[7:]
        if escape not in ("default", "json", "none"):
            raise d.error(f'unknown log format escaping "{escape}"')
    if not args:
        raise d.error('invalid number of arguments in "log_format" directive')
    if name in ld.log_formats:
        raise d.error(f'duplicate "log_format" name "{name}"')
    ld.log_formats[name] = ld.log_format(name, _joined(args), escape, d)


_TAIL_VARIABLE = re.compile(r"\$([A-Za-z0-9_]+)$")
_NAME_CHAR = re.compile(r"[A-Za-z0-9_]")


def _joined(pieces: list[str]) -> str:
    """A format's pieces as one text, each read on its own as nginx compiles them:
    ``'$status' 'x'`` is $status then "x", not a variable "statusx"."""
    out = []
    for i, piece in enumerate(pieces):
        if i + 1 < len(pieces) and _NAME_CHAR.match(pieces[i + 1]):
            piece = _TAIL_VARIABLE.sub(r"${\1}", piece)
        out.append(piece)
    return "".join(out)


def access_log(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.origins.setdefault(d.name, d)
    if d.args[0] == "off":
        if len(d.args) > 1:
            raise d.error('invalid number of arguments in "access_log" directive')
        lvl.fields["access_log"] = ()
        return
    fmt = d.args[1] if len(d.args) > 1 else "combined"
    buffer, flush, condition = 0, 0.0, None
    for extra in d.args[2:]:
        if extra.startswith("buffer="):
            buffer = parse_size(d, extra[7:])
            if buffer == 0:
                raise d.error(f'invalid buffer size "{extra[7:]}"')
        elif extra.startswith("flush="):
            flush = parse_time(d, extra[6:])
            if flush == 0:
                raise d.error(f'invalid flush time "{extra[6:]}"')
        elif extra == "gzip" or extra.startswith("gzip="):
            ld.warn('"gzip" of "access_log" is ignored: lines are written uncompressed', d)
        elif extra.startswith("if="):
            condition = ld.compile(extra[3:], d)
        else:
            raise d.error(f'invalid parameter "{extra}"')
    f = log_file(ld, d, d.args[0])
    if f.syslog is not None and (buffer or flush):
        raise d.error("logs to syslog cannot be buffered")
    if flush and not buffer:
        buffer = 64 * 1024  # as nginx: flush= alone buffers 64k
    ld.require_log_format(fmt, d)
    entry = AccessLog(f, fmt, condition, buffer, flush)
    lvl.fields["access_log"] = lvl.fields.get("access_log") or ()
    lvl.fields["access_log"] = lvl.fields["access_log"] + (entry,)


SPECS = [
    Spec("error_log", ANY_HTTP, 1, 2, set_error_log),
    Spec("log_format", frozenset({HTTP}), 2, None, log_format),
    Spec("access_log", HSL | {LIF, LMT}, 1, None, access_log),
]
