"""One serving process: bind, serve, and obey signals.

SIGTERM/SIGINT stop at once; SIGQUIT lets in-flight requests finish; SIGHUP loads the
config again (a bad one is logged and the old one keeps serving; sockets whose address
did not change are kept, so no connection is refused during a reload); SIGUSR1 reopens
the log files.

``fastgate.ops.run`` chooses: with ``worker_processes 1`` one process runs ``serve``
for every listener; above 1, a master (``fastgate.ops.master``) binds and forks workers
that each run ``serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastgate import openssl
from fastgate.config import ConfigError, load_config
from fastgate.config.model import Config, Listen, MailServer
from fastgate.config.tls import TlsError, by_value, server_context
from fastgate.errors import StartError
from fastgate.http.proxy_protocol import TlsAfterHeader
from fastgate.http.server import ClientConnection
from fastgate.http.tcp import TcpEnd
from fastgate.http.tls_or_plain import TlsOrPlain
from fastgate.ops.certificates import CertificatesByValue
from fastgate.ops.dispatch import AddressHandler
from fastgate.ops.logs import LogOpenError, check_logs
from fastgate.ops.stats import SharedCounters, Stats
from fastgate.ops.worker import ServerTable, Worker, kinded_listens
from fastgate.ops.zones import Zones, ZoneTables


@dataclass(frozen=True)
class Source:
    """Where the configuration comes from, as the command line said (``-c``, ``-p``,
    ``-g``): read again, the same way, on every reload."""

    path: str
    prefix: str | None = None
    directives: str = ""

    def load(self) -> Config:
        """The configuration, its logs opened once to prove they can be: ConfigError or
        LogOpenError otherwise."""
        config = load_config(self.path, self.prefix, self.directives)
        check_logs(config)
        return config


# a listening socket's key: address, port, reuseport, UDP (Listen.socket_key)
SockKey = tuple[str, int, bool, bool]


def bind(listen: Listen) -> socket.socket:
    path = listen.unix
    family = (socket.AF_UNIX if path is not None else
              socket.AF_INET6 if ":" in listen.host else socket.AF_INET)
    sock = socket.socket(family, socket.SOCK_DGRAM if listen.udp else socket.SOCK_STREAM)
    try:
        if path is not None:
            # (as nginx's: a file left at the path is an error, "Address already in use";
            # the socket's file is removed when the gateway stops)
            sock.bind(path)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if listen.reuseport:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((listen.host, listen.port))
        if not listen.udp:
            sock.listen(listen.backlog)
    except OSError as e:
        sock.close()
        raise StartError(f"bind() to {listen.written} failed "
                         f"({e.errno}: {e.strerror})") from None
    sock.setblocking(False)
    return sock


def release(key: SockKey, sock: socket.socket) -> None:
    """A listening socket closed for good by the process that bound it: a unix socket's
    file goes with it, as nginx removes it (a worker, or a descriptor duplicated for a
    reload, just closes)."""
    sock.close()
    if key[0].startswith("unix:"):
        with contextlib.suppress(OSError):
            os.unlink(key[0][5:])


def tls_context(config: Config, listen: Listen) -> ssl.SSLContext:
    """The context an ssl address handshakes with: its default server's certificate,
    and by SNI the certificate of the server the name selects (chosen as the Host
    header chooses, as nginx does)."""
    servers = [s for s in config.servers
               if any(x.address == listen.address for x in s.listens)]
    table = ServerTable(servers, listen.port)
    contexts: dict[int, ssl.SSLContext] = {}
    rejecting = {id(s) for s in servers if s.settings.ssl_reject_handshake}
    for s in servers:
        if s.settings.ssl_reject_handshake and not s.settings.ssl_certificate:
            continue
        if s.settings.ssl_certificate or any(x.ssl for x in s.listens):
            try:
                contexts[id(s)] = server_context(s.settings)
            except TlsError as e:  # a file changed since the configuration loaded
                raise StartError(f"{e.message} (server in {s.where.file}:{s.where.line})"
                                 ) from None
    # every server here refuses handshakes: a context without a certificate, never used
    # past the name (the callback refuses first)
    default = (contexts.get(id(table.default)) or next(iter(contexts.values()), None)
               or ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    # nginx's ALPN protocols (NGX_HTTP_ALPN_PROTOS, h2 first on an http2 address), on
    # every context the name may switch to: OpenSSL asks the current one's ALPN
    # callback after the servername callback has run
    alpn = ["h2"] * listen.http2 + ["http/1.1", "http/1.0", "http/0.9"]
    for ctx in {id(c): c for c in (*contexts.values(), default)}.values():
        ctx.set_alpn_protocols(alpn)
    # servers whose certificates have variables: loaded at each handshake, once the
    # server is chosen (its own context has none)
    loaders = {id(s): CertificatesByValue(s.settings, alpn) for s in servers
               if id(s) in contexts and by_value(s.settings)}
    if len(contexts) > 1 or rejecting:  # (else each context's own callback accepts the name)
        def by_name(sslobj: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> int | None:
            # the server the name selects (no name: the default one), as nginx's
            # servername callback: ssl_reject_handshake there fails the handshake
            chosen = table.select(name.lower()) if name else table.default
            if id(chosen) in rejecting:
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            loader = loaders.get(id(chosen))
            if loader is not None:
                return loader.switch(sslobj)
            ctx = contexts.get(id(chosen))
            if ctx is not None and name:
                sslobj.context = ctx
            return None

        for ctx in {id(c): c for c in (*contexts.values(), default)}.values():
            ctx.sni_callback = by_name
    elif loaders:
        default.sni_callback = next(iter(loaders.values())).callback
    if isinstance(default, openssl.ServerContext):
        default.loaders = tuple(loaders.values())
    return default


class _Datagrams:
    """A ``listen ... udp`` socket being served: closed as a server is."""

    def __init__(self, endpoint: asyncio.BaseTransport) -> None:
        self.endpoint = endpoint

    def close(self) -> None:
        self.endpoint.close()


def stream_tls_context(config: Config, listen: Listen) -> ssl.SSLContext:
    """The context a stream server's ``listen ... ssl`` handshakes with."""
    assert config.stream is not None
    for s in config.stream.servers:
        if any(x.address == listen.address and not x.udp for x in s.listens):
            try:
                ctx = server_context(s.settings)
                if s.alpn:
                    ctx.set_alpn_protocols(list(s.alpn))
                return ctx
            except TlsError as e:  # a file changed since the configuration loaded
                raise StartError(f"{e.message} (server in {s.where.file}:{s.where.line})"
                                 ) from None
    raise StartError(f"no stream server listens on {listen.host}:{listen.port}")


def mail_server(config: Config, listen: Listen) -> MailServer:
    assert config.mail is not None
    for s in config.mail.servers:
        if any(x.address == listen.address for x in s.listens):
            return s
    raise StartError(f"no mail server listens on {listen.host}:{listen.port}")


def mail_tls_context(config: Config, listen: Listen) -> ssl.SSLContext:
    """The context a mail server's ``listen ... ssl`` or STARTTLS handshakes with."""
    s = mail_server(config, listen)
    try:
        return server_context(s.settings)
    except TlsError as e:  # a file changed since the configuration loaded
        raise StartError(f"{e.message} (server in {s.where.file}:{s.where.line})") from None


def tls_wanted(config: Config, listen: Listen, kind: str) -> bool:
    """Whether the address needs a TLS context: ``ssl``, or a mail server's STARTTLS."""
    return listen.ssl or kind == "mail" and mail_server(config, listen).starttls != "off"


def any_tls_context(config: Config, listen: Listen, kind: str) -> ssl.SSLContext:
    if kind == "stream":
        return stream_tls_context(config, listen)
    if kind == "mail":
        return mail_tls_context(config, listen)
    return tls_context(config, listen)


def _told(end: TcpEnd, ctx: ssl.SSLContext, handshake: float) -> TlsOrPlain:
    """A ``listen ... ssl`` stream or mail client: its session is told of it as it
    connects and of a handshake that fails (nginx logs both), the handshake bounded by
    ``handshake`` from the accept."""
    return TlsOrPlain(end, ctx, handshake, handshake, None, end.accepted, end.handshake_failed)


def _sessions(worker: Worker, listen: Listen, tls_after_header: ssl.SSLContext | None,
              timeout: float, handshake: float | None,
              tls: ssl.SSLContext | None = None) -> Callable[[], asyncio.BaseProtocol]:
    """The protocol factory of a stream server's listening socket (``tls``: an ``ssl``
    one's context, the handshake begun by ``TlsOrPlain``)."""
    if tls is not None:
        wait = handshake or 60.0
        return lambda: _told(worker.stream_session(listen), tls, wait)
    if tls_after_header is None:
        return lambda: worker.stream_session(listen)
    ctx = tls_after_header

    def made() -> asyncio.BaseProtocol:
        session = worker.stream_session(listen)
        return TlsAfterHeader(session, TlsOrPlain(session, ctx, handshake, timeout, None),
                              timeout)

    return made


def _mail_sessions(worker: Worker, listen: Listen, starttls: ssl.SSLContext | None,
                   tls_after_header: ssl.SSLContext | None, timeout: float,
                   tls: ssl.SSLContext | None = None) -> Callable[[], asyncio.BaseProtocol]:
    """The protocol factory of a mail server's listening socket (``starttls``: the
    context its clients' STARTTLS handshakes with; ``tls_after_header``: ``ssl`` with
    ``proxy_protocol``, the header read in clear first; ``tls``: ``ssl`` without it,
    the handshake begun by ``TlsOrPlain``)."""
    if tls is not None:
        return lambda: _told(worker.mail_session(listen, None), tls, timeout)
    if tls_after_header is None:
        return lambda: worker.mail_session(listen, starttls)
    ctx = tls_after_header

    def made() -> asyncio.BaseProtocol:
        session = worker.mail_session(listen, None)
        return TlsAfterHeader(session, TlsOrPlain(session, ctx, timeout, timeout, None),
                              timeout)

    return made


def _connections(worker: Worker, listen: Listen, tls: ssl.SSLContext | None,
                 ) -> Callable[[], asyncio.BaseProtocol]:
    """The protocol factory of a listening socket. Over TLS the socket serves plain
    bytes: the first byte says whether the client speaks TLS or sent plain HTTP to the
    HTTPS port (``TlsOrPlain``: then the address's requests are answered with 497);
    with ``proxy_protocol`` the PROXY protocol header comes first, in clear."""
    if tls is None:
        return lambda: worker.connection(listen)
    ctx = tls
    timeout = worker.default_settings(listen).client_header_timeout
    # (a client's plain HTTP on this TLS address: its requests are answered 497; not
    # a Worker attribute: one more would cost every Worker attribute read its fast
    # path, past CPython's 30 shared instance keys)
    plain_handler = AddressHandler(worker, worker.handlers[listen.address].vhosts, True)
    after_header = listen.proxy_protocol
    # (the handshake as before: bounded by client_header_timeout after a header, else
    # by the loop's default)
    handshake = timeout if after_header else None

    def made() -> asyncio.BaseProtocol:
        conn = worker.connection(listen)
        assert isinstance(conn, ClientConnection)  # (over TLS: no cleartext Preface)
        sniff = TlsOrPlain(conn, ctx, handshake, timeout,
                           lambda: conn.plain_on_tls(plain_handler))
        return TlsAfterHeader(conn, sniff, timeout) if after_header else sniff

    return made


class Gateway:
    """The serving process: its sockets, its current worker, and old workers draining."""

    def __init__(self, source: Source, config: Config, engine: str | None,
                 sockets: dict[SockKey, socket.socket] | None = None,
                 stats: Stats | None = None, zones: ZoneTables | None = None,
                 contexts: dict[SockKey, ssl.SSLContext] | None = None) -> None:
        self.source = source
        self.config = config
        self.engine_name = engine  # the command line's choice, kept across reloads
        self.stats = stats if stats is not None else SharedCounters(1).slot(0)
        # under a master the zones are the master's; alone, ours (kept across reloads)
        self.zone_set: Zones | None = None
        if zones is None:
            self.zone_set = Zones()
            zones = self.zone_set.for_config(config)
        self.worker = Worker(config, engine, self.stats, zones)
        # sockets a master bound for us, or ours once bound
        self.sockets: dict[SockKey, socket.socket] = dict(sockets or {})
        self._owns_sockets = sockets is None  # (alone: a socket's file is ours to remove)
        self.servers: list[asyncio.AbstractServer | _Datagrams] = []
        # TLS contexts a master built (it can read the keys; a worker that dropped to
        # "user" may not)
        self.contexts = contexts or {}
        self.stopped = asyncio.Event()
        self.old_workers: list[Worker] = []

    async def start(self) -> None:
        await self.worker.start()
        await self._serve(self.worker)

    async def _serve(self, worker: Worker) -> None:
        loop = asyncio.get_running_loop()
        servers: list[asyncio.AbstractServer | _Datagrams] = []
        keyed = [(listen.socket_key, listen, kind)
                 for listen, kind in kinded_listens(worker.config)]
        # every address bound before any serves, as nginx opens all its listening
        # sockets first: once one answers, all do
        bound: list[SockKey] = []
        try:
            for key, listen, _ in keyed:
                if key not in self.sockets:
                    self.sockets[key] = bind(listen)
                    bound.append(key)
        except StartError:  # (what this start bound goes, a unix socket's file with it)
            for key in bound:
                self._drop(key, self.sockets.pop(key), duplicated=False)
            raise
        for key, listen, kind in keyed:
            sock = self.sockets[key]
            if listen.udp:
                endpoint, _ = await loop.create_datagram_endpoint(
                    lambda listen=listen: worker.stream_port(listen), sock=sock)  # type: ignore[misc]
                servers.append(_Datagrams(endpoint))
                continue
            ctx = (self.contexts.get(key) or any_tls_context(worker.config, listen, kind)
                   if tls_wanted(worker.config, listen, kind) else None)
            if isinstance(ctx, openssl.ServerContext):
                for loader in ctx.loaders:  # (its handshakes' failures: this worker's log)
                    loader.report = worker.log.write
            # the socket serves plain bytes, TLS begun by the protocol: after a PROXY
            # protocol header, and on HTTP addresses after a look at the first byte
            plain_socket = ctx is not None and listen.proxy_protocol
            handshake: float | None = None
            if kind == "mail":
                mail = mail_server(worker.config, listen)
                # (a context here is STARTTLS's on a listen without ssl; with ssl the
                # socket is plain too, the handshake begun by TlsOrPlain)
                plain_socket = bool(ctx is not None)
                factory = _mail_sessions(
                    worker, listen, None if listen.ssl else ctx,
                    ctx if listen.ssl and listen.proxy_protocol else None, mail.timeout,
                    ctx if listen.ssl and not listen.proxy_protocol else None)
                ctx = ctx if listen.ssl else None
            elif kind == "stream":
                assert worker.streams is not None
                server = worker.streams.server_of(listen)
                handshake = server.ssl_handshake_timeout if ctx is not None else None
                factory = _sessions(worker, listen, ctx if plain_socket else None,
                                    server.proxy_protocol_timeout, handshake,
                                    ctx if ctx is not None and not plain_socket else None)
                plain_socket = ctx is not None
            else:
                factory = _connections(worker, listen, ctx)
                plain_socket = ctx is not None
            srv = await loop.create_server(
                factory, sock=sock, ssl=None if plain_socket else ctx, backlog=listen.backlog,
                ssl_handshake_timeout=None if plain_socket else handshake,
                start_serving=True,
            )
            servers.append(srv)
        self.servers = servers

    async def reload(self) -> None:
        log = self.worker.log
        try:
            config = self.source.load()
        except (ConfigError, LogOpenError) as e:
            log.write("emerg", f"{e}; the old configuration keeps serving")
            self.stats.reloaded(False)
            return
        new = Worker(config, self.engine_name, self.stats,
                     self.zone_set.for_config(config) if self.zone_set is not None else None)
        keep: dict[SockKey, socket.socket] = {}
        try:
            for listen, kind in kinded_listens(config):
                key = listen.socket_key
                if key not in keep:
                    # the same listening socket, under a descriptor of its own: closing
                    # the old server object closes only the old descriptor
                    old_sock = self.sockets.get(key)
                    keep[key] = _dup(old_sock) if old_sock is not None else bind(listen)
                if tls_wanted(config, listen, kind):
                    any_tls_context(config, listen, kind)
        except StartError as e:
            log.write("emerg", f"{e}; the old configuration keeps serving")
            self.stats.reloaded(False)
            for key, sock in keep.items():
                self._drop(key, sock, duplicated=key in self.sockets)
            return
        self.stats.reloaded(True)
        for srv in self.servers:
            srv.close()
        for key, sock in self.sockets.items():
            self._drop(key, sock, duplicated=key in keep)
        self.sockets = keep
        old = self.worker
        await new.start(old)
        self.worker = new
        self.config = config
        await self._serve(new)
        log.write("notice", "reconfiguring: new configuration loaded")
        self.old_workers.append(old)
        asyncio.get_running_loop().create_task(self._retire(old))

    def reopen_logs(self) -> None:
        """SIGUSR1. A file that cannot be opened again keeps the old one (logged by the
        logs themselves); nothing here may end the process."""
        log = self.worker.log
        try:
            log.reopen()
            self.worker.access.reopen()
            if self.worker.stream_access is not None:
                self.worker.stream_access.reopen()
        except Exception as e:  # a bug: logged, and the gateway serves on
            log.write("alert", f"reopening the logs failed: {type(e).__name__}: {e}")

    async def _retire(self, old: Worker) -> None:
        old.stopping = True
        await _drain(old, old.config.worker_shutdown_timeout)
        old.close()
        self.old_workers.remove(old)

    async def stop(self, graceful: bool) -> None:
        for srv in self.servers:
            srv.close()
        workers = [self.worker, *self.old_workers]
        for w in workers:
            w.stopping = True
        if graceful:
            await asyncio.gather(*(_drain(w, w.config.worker_shutdown_timeout)
                                   for w in workers))
        for w in workers:
            for conn in list(w.connections):
                conn.abort()
            for session in list(w.sessions):
                session.abort()
            w.close()
        for key, sock in self.sockets.items():
            self._drop(key, sock, duplicated=False)
        self.stopped.set()

    def _drop(self, key: SockKey, sock: socket.socket, duplicated: bool) -> None:
        """A listening descriptor closed; the socket itself released when it was ours
        and no duplicate of it serves on."""
        if self._owns_sockets and not duplicated:
            release(key, sock)
        else:
            sock.close()


def set_title(text: str) -> None:
    """``ps`` shows ``fastgate: master process ...`` / ``fastgate: worker process``, as
    nginx's processes are told apart (setproctitle, when installed)."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(f"fastgate: {text}")


def announce(config: Config, engine: str | None, log: Any) -> None:
    """One line per listening address, as uvicorn prints them: in the error log at
    ``notice``, and on the terminal unless that line already goes there."""
    from fastgate.http.engines import resolve

    n = config.worker_processes
    workers = f"{n} worker{'s' if n > 1 else ''}"
    what = f"{workers}, {resolve(engine or config.http_engine)}"
    shown = log.reaches("stderr", "notice")
    for listen, kind in kinded_listens(config):
        ssl_ = ", ssl" if listen.ssl else ""
        if kind == "http":
            scheme = "https" if listen.ssl else "http"
            where, what_ = f"{scheme}://", (f"{scheme}, {what}" if listen.unix else what)
        elif kind == "stream":
            where, what_ = f"{'udp' if listen.udp else 'tcp'}://", f"stream{ssl_}, {workers}"
        else:
            protocol = mail_server(config, listen).protocol
            where, what_ = "tcp://", f"mail, {protocol}{ssl_}, {workers}"
        address = (listen.host if listen.unix is not None else
                   f"{where}[{listen.host}]:{listen.port}" if ":" in listen.host else
                   f"{where}{listen.host}:{listen.port}")
        line = f"listening on {address} ({what_})"
        log.write("notice", line)
        if not shown:
            print(f"fastgate: {line}", file=sys.stderr, flush=True)
    log.flush()


def _dup(sock: socket.socket) -> socket.socket:
    """asyncio closes the socket of a closed server; serving the same address again
    needs a socket object of its own on the same listening descriptor."""
    new = socket.socket(fileno=os.dup(sock.fileno()))
    new.setblocking(False)
    return new


async def _drain(worker: Worker, limit: float) -> None:
    """Wait for in-flight requests; keep-alive connections between requests are closed
    at once. A connection accepted but not yet sent its first request is given that
    request (closing it would reset a client that did nothing wrong). An HTTP/2
    connection is told at once (GOAWAY): its streams in progress finish, and no new
    one is taken."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while (worker.connections or worker.sessions) and loop.time() < deadline:
        for conn in list(worker.connections):
            if (conn.idle and conn.requests) or conn.speaks_http2:
                conn.close()
        await asyncio.sleep(0.05)


def write_pid(path: str) -> None:
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        f.write(f"{os.getpid()}\n")


async def serve(source: Source, config: Config, engine: str | None,
                sockets: dict[SockKey, socket.socket] | None,
                stats: Stats | None, reloadable: bool, pid_path: str | None = None,
                zones: ZoneTables | None = None,
                contexts: dict[SockKey, ssl.SSLContext] | None = None,
                early_signals: list[int] | None = None) -> int:
    """Serve until a stop signal. A worker under a master is not ``reloadable`` (the
    master reloads by starting new workers) and writes no pid file."""
    gw = Gateway(source, config, engine, sockets, stats, zones, contexts)
    loop = asyncio.get_running_loop()
    # from the moment the port answers a stop signal is a stop, not its default action
    # (SIGQUIT's is a core dump): while starting it is remembered, and obeyed below
    early = early_signals if early_signals is not None else []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        loop.add_signal_handler(sig, early.append, sig)
    await gw.start()
    # what exists now (modules, the configuration, the worker) lives as long as the
    # process: out of the collector's sight, a full collection under load does not walk
    # it (tens of thousands of objects; it showed as stalls of several milliseconds)
    gc.freeze()
    if pid_path is not None:
        try:
            write_pid(pid_path)
        except OSError as e:
            raise StartError(f'open() "{pid_path}" failed ({e.errno}: {e.strerror})') from None
    tasks: set[asyncio.Task[Any]] = set()

    def spawn(coro: Any) -> None:
        t = loop.create_task(coro)
        tasks.add(t)
        t.add_done_callback(tasks.discard)

    stopping = False

    def on_stop(graceful: bool) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        spawn(gw.stop(graceful))

    loop.add_signal_handler(signal.SIGTERM, on_stop, False)
    loop.add_signal_handler(signal.SIGINT, on_stop, False)
    loop.add_signal_handler(signal.SIGQUIT, on_stop, True)
    if reloadable:
        loop.add_signal_handler(signal.SIGHUP, lambda: spawn(gw.reload()))
    loop.add_signal_handler(signal.SIGUSR1, gw.reopen_logs)
    for early_sig in early:  # a stop that came while the worker was starting
        on_stop(early_sig == signal.SIGQUIT)
    if reloadable:  # one process serving alone
        set_title(f"single process {' '.join(sys.argv[1:])}".rstrip())
        announce(config, engine, gw.worker.log)
    else:
        gw.worker.log.notice(f"worker process {os.getpid()} started")
    try:
        await gw.stopped.wait()
    finally:
        if pid_path is not None:
            _remove_pid(pid_path)
    sys.stderr.flush()
    return 0


def _remove_pid(path: str) -> None:
    try:
        with open(path) as f:
            if f.read().strip() == str(os.getpid()):
                os.unlink(path)
    except OSError:
        pass
