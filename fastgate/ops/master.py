"""``worker_processes N``: a master that binds the listeners, forks N workers, replaces a
worker that dies, and never serves a request itself.

Signals, as nginx: SIGHUP re-reads the configuration (a bad one is logged and the
running workers go on), starts a new generation of workers on the same listening
sockets and lets the old generation finish in-flight requests; SIGQUIT drains and
stops; SIGTERM/SIGINT stop at once; SIGUSR1 reopens logs, in every process.

Listening sockets: one shared socket per address, or, with ``reuseport``, one socket
per worker bound with SO_REUSEPORT, so the kernel spreads connections.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import socket
import sys
import time
from typing import Any

from fastgate.config import ConfigError
from fastgate.config.model import Config, User
from fastgate.errors import StartError
from fastgate.ops.gateway import (
    SockKey,
    Source,
    _remove_pid,
    announce,
    any_tls_context,
    bind,
    release,
    serve,
    set_title,
    tls_wanted,
    write_pid,
)
from fastgate.ops.logs import ErrorLog, LogOpenError, check_logs
from fastgate.ops.stats import MASTER_SLOT, MAX_SLOTS, SharedCounters
from fastgate.ops.worker import kinded_listens
from fastgate.ops.zones import Zones, ZoneTables

HALF = MAX_SLOTS // 2  # generations alternate between the two halves of the slots
STOP_GRACE = 5.0  # seconds a fast stop waits before SIGKILL
SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1,
           signal.SIGCHLD)


class Master:
    def __init__(self, source: Source, config: Config, engine: str | None,
                 pid_path: str | None) -> None:
        self.source = source
        self.config = config
        self.engine_name = engine
        self.pid_path = pid_path
        self.log = ErrorLog(config.error_logs)
        self.region = SharedCounters(MAX_SLOTS + 1)
        self.stats = self.region.slot(MASTER_SLOT)  # the master counts its reloads
        self.sockets: dict[SockKey, list[socket.socket]] = {}
        self.workers: dict[int, tuple[int, int]] = {}  # pid -> (slot, generation)
        self.generation = 0
        self.pending: list[int] = []
        self.zone_set = Zones()
        self.zones = self.zone_set.for_config(config)
        self.stopping: str | None = None
        self._wake_r = self._wake_w = -1
        self.contexts: dict[SockKey, Any] = {}  # TLS, built here for the workers

    # --- sockets -------------------------------------------------------------------------------

    def bind_all(self, config: Config) -> dict[SockKey, list[socket.socket]]:
        n = config.worker_processes
        out: dict[SockKey, list[socket.socket]] = {}
        contexts = {}
        try:
            for listen, kind in kinded_listens(config):
                key = listen.socket_key
                have = self.sockets.get(key)
                want = n if listen.reuseport else 1
                if have is not None and len(have) == want:
                    out[key] = have
                elif listen.reuseport:
                    out[key] = [bind(listen) for _ in range(want)]
                else:
                    out[key] = have[:1] if have else [bind(listen)]
                if tls_wanted(config, listen, kind):
                    contexts[key] = any_tls_context(config, listen, kind)
        except Exception:
            for key, socks in out.items():
                if self.sockets.get(key) is not socks:
                    for s in socks:
                        release(key, s)
            raise
        self.contexts = contexts
        return out

    def slot_sockets(self, index: int) -> dict[SockKey, socket.socket]:
        return {key: socks[index % len(socks)] for key, socks in self.sockets.items()}

    # --- workers --------------------------------------------------------------------------------

    def spawn(self, index: int) -> None:
        slot = (self.generation % 2) * HALF + index
        # signals wait until the new worker has handlers of its own: a stop sent while it
        # starts must stop it, not run the master's handler in it or dump its core
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        pid = os.fork()
        if pid != 0:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if pid == 0:
            code = 1
            signal.set_wakeup_fd(-1)
            os.close(self._wake_r)
            os.close(self._wake_w)
            try:
                code = worker_main(self.source, self.config, self.engine_name,
                                   self.slot_sockets(index), self.region, slot, self.zones,
                                   self.contexts)
            except BaseException as e:  # never let a worker unwind into the master's code
                # the master's log writer thread does not exist in this process
                print(f"fastgate: [alert] worker process {os.getpid()} failed: "
                      f"{type(e).__name__}: {e}", file=sys.stderr, flush=True)
            finally:
                os._exit(code)
        self.workers[pid] = (index, self.generation)

    def signal_generation(self, generation: int, sig: int) -> None:
        for pid, (_, gen) in self.workers.items():
            if gen == generation:
                _kill(pid, sig)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            entry = self.workers.pop(pid, None)
            if entry is None:
                continue
            index, gen = entry
            if os.WIFSIGNALED(status):
                how = f"exited on signal {os.WTERMSIG(status)}"
            else:
                how = f"exited with code {os.WEXITSTATUS(status)}"
            if gen == self.generation and self.stopping is None:
                self.log.write("alert", f"worker process {pid} {how}; starting a new one")
                self.spawn(index)
            else:
                self.log.write("notice", f"worker process {pid} {how}")

    # --- the master's loop -------------------------------------------------------------------

    def run(self) -> int:
        # a signal (SIGCHLD above all) wakes the loop at once: a stop is over as soon as
        # the last worker is. The handlers come before the sockets: once the port
        # answers, a stop signal is a stop, never the default action (SIGQUIT's is a
        # core dump)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)
        for sig in SIGNALS:
            signal.signal(sig, self._on_signal)
        try:
            self.sockets = self.bind_all(self.config)
            if self.pid_path is not None:
                write_pid(self.pid_path)
        except (StartError, OSError) as e:
            if isinstance(e, StartError):
                print(f"fastgate: [emerg] {e}", file=sys.stderr)
            else:
                print(f'fastgate: [emerg] open() "{self.pid_path}" failed '
                      f"({e.errno}: {e.strerror})", file=sys.stderr)
            for key, socks in self.sockets.items():
                for sock in socks:
                    release(key, sock)
            signal.set_wakeup_fd(-1)
            os.close(self._wake_r)
            os.close(self._wake_w)
            return 1
        set_title(f"master process {' '.join(sys.argv[1:]) or self.source.path}")
        for i in range(self.config.worker_processes):
            self.spawn(i)
        announce(self.config, self.engine_name, self.log)
        try:
            while True:
                select.select([self._wake_r], [], [], 0.5)
                try:
                    while os.read(self._wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                pending, self.pending = self.pending, []
                for pending_sig in pending:
                    self._handle(pending_sig)
                self.reap()
                if self.stopping is not None and not self.workers:
                    break
                if self.stopping == "fast" and time.monotonic() > self._deadline:
                    for pid in list(self.workers):
                        _kill(pid, signal.SIGKILL)
        finally:
            for key, socks in self.sockets.items():
                for s in socks:
                    release(key, s)
            if self.pid_path is not None:
                _remove_pid(self.pid_path)
            signal.set_wakeup_fd(-1)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self.log.close()
        return 0

    def _on_signal(self, sig: int, frame: Any) -> None:
        self.pending.append(sig)

    def _handle(self, sig: int) -> None:
        if sig == signal.SIGCHLD:
            return  # reap() runs on every turn
        if sig == signal.SIGHUP and self.stopping is None:
            self.reload()
        elif sig in (signal.SIGTERM, signal.SIGINT):
            self.stopping = "fast"
            self._deadline = time.monotonic() + STOP_GRACE
            for pid in self.workers:
                _kill(pid, signal.SIGTERM)
        elif sig == signal.SIGQUIT and self.stopping is None:
            self.stopping = "graceful"
            for pid in self.workers:
                _kill(pid, signal.SIGQUIT)
        elif sig == signal.SIGUSR1:
            self.log.reopen()
            if self.config.user is not None:
                # the files again, as root and handed to the user, before the workers
                # (who may not create them in a root-owned directory) open them
                try:
                    check_logs(self.config)
                except LogOpenError as e:
                    self.log.write("alert", str(e))
            for pid in self.workers:
                _kill(pid, signal.SIGUSR1)

    def reload(self) -> None:

        try:
            config = self.source.load()
        except (ConfigError, LogOpenError) as e:
            self.log.write("emerg", f"{e}; the running configuration keeps serving")
            self.stats.reloaded(False)
            return
        try:
            sockets = self.bind_all(config)
        except StartError as e:
            self.log.write("emerg", f"{e}; the running configuration keeps serving")
            self.stats.reloaded(False)
            return
        self.stats.reloaded(True)
        old_sockets, old_generation = self.sockets, self.generation
        self.config = config
        self.zones = self.zone_set.for_config(config)
        self.sockets = sockets
        self.generation += 1
        for i in range(config.worker_processes):
            self.spawn(i)
        self.signal_generation(old_generation, signal.SIGQUIT)
        kept = {id(s) for socks in sockets.values() for s in socks}
        for key, socks in old_sockets.items():
            for s in socks:
                if id(s) not in kept:
                    # (the old workers hold their own descriptors until they exit)
                    release(key, s)
        self.log.write("notice", "reconfiguring: new worker processes started, "
                                 "old ones finish their requests")


def worker_main(source: Source, config: Config, engine: str | None,
                sockets: dict[SockKey, socket.socket], region: SharedCounters,
                slot: int, zones: ZoneTables, contexts: dict[SockKey, Any]) -> int:
    """A forked worker: serve on the inherited sockets until told to stop."""
    import asyncio

    import uvloop

    # until the loop has its handlers: a stop is remembered, a reopen has nothing to do
    early: list[int] = []
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, lambda s, _: early.append(s))
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the master reloads, not the worker
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # blocked by the master for the fork
    set_title("worker process")
    if config.user is not None:
        drop_to(config.user)
    _die_with_parent()  # after the drop: changing credentials clears it
    stats = region.slot(slot)
    stats.reset_gauges()
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(serve(source, config, engine, sockets, stats,
                                             reloadable=False, zones=zones,
                                             contexts=contexts, early_signals=early))
    finally:
        loop.close()


def drop_to(user: User) -> None:
    """``user``: the worker's groups, group and user, as nginx's worker sets them
    (initgroups, setgid, setuid); OSError ends the worker, and the master says so."""
    os.initgroups(user.name, user.gid)
    os.setgid(user.gid)
    os.setuid(user.uid)


def _die_with_parent() -> None:
    """A worker whose master is gone (killed) stops too: PR_SET_PDEATHSIG."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


