"""Running the gateway in the foreground: one serving process, or a master and its
workers.

SIGTERM/SIGINT stop at once; SIGQUIT lets in-flight requests finish; SIGHUP loads the
config again (a bad one is logged and the old one keeps serving; sockets whose address
did not change are kept, so no connection is refused during a reload); SIGUSR1 reopens
the log files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastgate.config import ConfigError
from fastgate.errors import StartError
from fastgate.ops.gateway import Source, serve
from fastgate.ops.logs import LogOpenError
from fastgate.ops.master import Master


def run(path: str, report: Callable[[str], None], http_engine: str | None = None,
        prefix: str | None = None, directives: str = "") -> int:
    """``fastgate -c FILE``: one serving process, or a master and its workers. What
    stops it before the error log is open goes to ``report`` (the command line's)."""
    source = Source(path, prefix, directives)
    try:
        config = source.load()
    except (ConfigError, LogOpenError) as e:
        report(f"[emerg] {e}")
        return 1
    for w in config.warnings:
        report(w)
    pid_path = config.pid
    # with "user" a root master keeps the sockets and files, and workers drop to the user
    # (a single process could never bind again or reopen what root opened)
    if config.worker_processes > 1 or config.user is not None:
        return Master(source, config, http_engine, pid_path).run()
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(serve(source, config, http_engine, None, None,
                                             reloadable=True, pid_path=pid_path))
    except StartError as e:
        report(f"[emerg] {e}")
        return 1
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        except RuntimeError:
            pass
        loop.close()
