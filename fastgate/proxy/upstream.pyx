# cython: language_level=3
# cython: embedsignature=True
"""Upstream groups for one worker: smooth weighted round robin (as nginx), passive
health (``max_fails``/``fail_timeout``), backup servers, and a keep-alive pool of idle
connections per server.

C classes: the callback exchange (``proxy.fast``) picks a server, takes an idle
connection and gives it back on every request without a Python frame. Their types for
mypy are in upstream.pyi."""

import asyncio
import socket
import ssl

from fastgate.config import addresses
from fastgate.config.tls import upstream_context
from fastgate.errors import UpstreamError
from fastgate.http.client cimport HttpClientConnection
from fastgate.http.clock cimport monotonic
from fastgate._wire cimport ResponseHead

from fastgate.proxy import balance
from fastgate.proxy.failure import unix_connect_failed

# proxy_bind's (address, port, transparent), a tuple; and the UpstreamError kind of a
# bind that failed (a 500, the server not blamed)
LOCAL = "local"
_IP_TRANSPARENT = getattr(socket, "IP_TRANSPARENT", 19)  # Linux's values
_IPV6_TRANSPARENT = getattr(socket, "IPV6_TRANSPARENT", 75)

# proxy_next_upstream's condition for each kind of UpstreamError, and the statuses it
# can send on to the next server (http_500 ... http_429)
NEXT_CONDITION = {"connect": "error", "reset": "error", "timeout": "timeout",
                  "invalid": "invalid_header"}
NEXT_STATUSES = frozenset({500, 502, 503, 504, 403, 404, 429})
# nginx's words (at info) when a client goes away while its request waits on an upstream
CLIENT_GONE = "client prematurely closed connection, so upstream connection is closed too"


cdef class UpstreamConnection(HttpClientConnection):
    """One connection to one upstream server, as its pool sees it: the server it goes
    to, how many more requests it may carry and until when, and whether it is busy."""

    def __init__(self, Peer peer):
        super().__init__(peer.group.engine_name)
        self.peer = peer
        # requests it may still carry (upstream keepalive_requests)
        self.exchanges_left = peer.group.upstream.keepalive_requests
        # after this (upstream keepalive_time) it goes back to no pool
        self.retire_at = monotonic() + peer.group.upstream.keepalive_time
        self.deadline = 0.0  # idle in the pool until then (the worker's clock checks)
        self.busy = False  # carrying an exchange: counted in its peer's ``busy``

    def connection_lost(self, exc):
        self.free()
        self.deadline = 0.0
        self.peer.discard(self)
        super().connection_lost(exc)

    def begin(self):
        self.deadline = 0.0
        return HttpClientConnection.begin(self)

    cpdef close(self):
        self.free()
        HttpClientConnection.close(self)

    cpdef abort(self):
        self.free()
        HttpClientConnection.abort(self)

    cpdef taken(self):
        """Given an exchange: one more in progress on its server (least_conn, random
        two)."""
        if not self.busy:
            self.busy = True
            self.peer.busy += 1

    cpdef free(self):
        if self.busy:
            self.busy = False
            self.peer.busy -= 1

    cpdef park(self, double timeout):
        """Idle in the pool (made ready for the next exchange): closed after ``timeout``
        seconds if nobody takes it (the worker's clock checks ``deadline``)."""
        self.free()
        self.deadline = monotonic() + timeout


cdef class Peer:
    """One server of a group, as this worker sees it."""

    def __init__(self, server, UpstreamGroup group):
        self.server = server
        self.address = server.address  # $upstream_addr
        self.group = group
        self.current = 0
        self.fails = 0
        self.first_fail = 0.0
        self.down_until = 0.0
        self.busy = 0  # exchanges in progress (nginx's peer->conns)
        self.max_conns = server.max_conns
        self.idle = []  # of UpstreamConnection (the last parked is taken first)

    cpdef bint available(self, double now):
        # (max_conns: nginx skips a server with that many in progress, in every method)
        return (not self.server.down and now >= self.down_until
                and (self.max_conns == 0 or self.busy < self.max_conns))

    cpdef bint failed(self, double now):
        """One failure more; True when it takes the server out for ``fail_timeout``
        (nginx then warns "upstream server temporarily disabled")."""
        s = self.server
        # nginx: the only server of a group is never considered unavailable
        if s.max_fails == 0 or len(self.group.peers) == 1:
            return False
        if now - self.first_fail > s.fail_timeout:
            self.fails = 0
            self.first_fail = now
        self.fails += 1
        if self.fails >= s.max_fails:
            self.down_until = now + s.fail_timeout
            self.fails = 0
            return True
        return False

    def succeeded(self):
        self.fails = 0

    cpdef UpstreamConnection take_idle(self):
        """An idle pooled connection, made ready for an exchange, or None."""
        cdef UpstreamConnection conn
        cdef list idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.deadline = 0.0  # no longer idle: the clock leaves it alone
                conn.taken()
                return conn
        return None

    async def connect(self, timeout, local=None, keepalive=False):
        """An idle pooled connection (reused=True) or a new one, from ``local`` when
        given (proxy_bind), with TCP keep-alive probes when ``keepalive``
        (proxy_socket_keepalive). A pooled connection is reused whatever address it left
        from and whatever its probes, as nginx's keepalive cache does."""
        pooled = self.take_idle()
        if pooled is not None:
            return pooled, True
        # a connection being made counts as in progress (nginx's peer->conns counts from
        # the pick): max_conns holds while many connect at once
        self.busy += 1
        try:
            return await self._connect_new(timeout, local, keepalive), False
        finally:
            self.busy -= 1

    async def _connect_new(self, timeout, local, keepalive):
        loop = asyncio.get_running_loop()
        tls = self.group.tls
        hostname = self.group.tls_name if tls is not None else None
        try:
            # with TLS the handshake is part of connecting, and of its timeout (as nginx)
            if self.server.unix is not None:  # (proxy_bind has nothing to bind there)
                made = loop.create_unix_connection(lambda: UpstreamConnection(self),
                                                   self.server.unix, ssl=tls,
                                                   server_hostname=hostname)
            elif local is None:
                made = loop.create_connection(lambda: UpstreamConnection(self),
                                              self.server.host, self.server.port, ssl=tls,
                                              server_hostname=hostname)
            else:
                made = self._connect_from(loop, local, tls, hostname)
            _, conn = await asyncio.wait_for(made, timeout)
        except TimeoutError:
            raise UpstreamError("timeout", "upstream timed out (110: Connection timed out) "
                                "while connecting to upstream") from None
        except ssl.SSLCertVerificationError as e:
            raise UpstreamError("connect", f"upstream SSL certificate verify error: "
                                f"({e.verify_code}:{e.verify_message}) while SSL "
                                "handshaking to upstream") from None
        except ssl.SSLError as e:
            raise UpstreamError("connect", f"SSL_do_handshake() failed ({e.reason or e}) "
                                "while SSL handshaking to upstream") from None
        except OSError as e:
            if e.errno is None and tls is not None:
                # the peer reset the connection before the handshake ended (it refused
                # the protocol or the cipher, or does not speak TLS)
                raise UpstreamError("connect", "SSL_do_handshake() failed (peer closed "
                                    "connection in SSL handshake) while SSL handshaking "
                                    "to upstream") from None
            if self.server.unix is not None:
                raise UpstreamError("connect", *unix_connect_failed(self.server.address, e)
                                    ) from None
            raise UpstreamError("connect", f"connect() failed ({e.errno}: {e.strerror}) "
                                "while connecting to upstream") from None
        if keepalive:
            conn.probe_when_idle()
        conn.taken()
        return conn

    async def _connect_from(self, loop, local, tls, hostname):
        host, port, transparent = local
        family = socket.AF_INET6 if ":" in self.server.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            try:
                if transparent and family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_TRANSPARENT, 1)
                elif transparent:
                    sock.setsockopt(socket.IPPROTO_IP, _IP_TRANSPARENT, 1)
                sock.bind((host, port))
            except OSError as e:
                raise UpstreamError(LOCAL, f"bind({host}:{port}) failed ({e.errno}: "
                                    f"{e.strerror}) while connecting to upstream") from None
            await loop.sock_connect(sock, (self.server.host, self.server.port))
            return await loop.create_connection(lambda: UpstreamConnection(self), sock=sock,
                                                ssl=tls, server_hostname=hostname)
        except BaseException:
            sock.close()
            raise


    cpdef release(self, UpstreamConnection conn, ResponseHead head):
        """After an exchange: back to the pool if it can carry another, else closed."""
        up = self.group.upstream
        conn.exchanges_left -= 1
        if (conn.exchanges_left and not conn.closed and head.keep_alive
                and len(self.idle) < up.keepalive and monotonic() < conn.retire_at
                and conn.ready_for_next()):
            conn.park(up.keepalive_timeout)
            self.idle.append(conn)
        else:
            conn.close()

    def discard(self, conn):
        try:
            self.idle.remove(conn)
        except ValueError:
            pass

    def expire_idle(self, now):
        for conn in [c for c in self.idle if 0.0 < c.deadline <= now]:
            conn.close()

    def close_idle(self):
        while self.idle:
            self.idle.pop().close()


cdef class UpstreamGroup:
    """One pool of an upstream block: its servers as this worker sees them. An
    ``https://`` proxy_pass has a pool of its own per distinct TLS setting, so a
    plain and a TLS connection are never mixed."""

    def __init__(self, upstream, str engine_name, tls=None):
        self.upstream = upstream
        self.engine_name = engine_name
        self.tls = upstream_context(tls) if tls is not None else None
        # what the handshake sends as SNI and checks the certificate against ("": no
        # SNI; Python's ssl checks the name it sends, so verify sends it too)
        self.tls_name = (tls.name if tls is not None and (tls.server_name or tls.verify)
                         else "")
        self.primary = [Peer(s, self) for s in upstream.servers if not s.backup]
        self.backup = [Peer(s, self) for s in upstream.servers if s.backup]
        # a group of one server (the common case): every method picks it
        self._only = self.primary[0] if len(self.primary) == 1 and not self.backup else None
        b = upstream.balance
        self._least_conn = b is not None and b.method == "least_conn"
        # hash, ip_hash, random: a pick of their own (they have no backup servers)
        self._method = (balance.method(b, self.primary)
                        if b is not None and not self._least_conn else None)

    cpdef Peer pick(self, double now, exclude, req=None):
        """A live server not in ``exclude``, by the block's balancing method (smooth
        weighted round robin unless it names one): a primary one, else a backup."""
        cdef Peer only = self._only
        if only is not None:
            return only if only not in exclude and only.available(now) else None
        if self._method is not None:
            return self._method(now, exclude, req)
        pick = balance.least_conn if self._least_conn else balance.round_robin
        return pick(self.primary, now, exclude) or pick(self.backup, now, exclude)

    @property
    def peers(self):
        return self.primary + self.backup

    def close(self):
        for p in self.peers:
            p.close_idle()


def build_groups(upstreams, engine, tls_pools=None):
    """Every pool by name (``ProxyPass.pool``): each upstream block's, and one per
    https:// setting."""
    groups = {name: UpstreamGroup(u, engine) for name, u in upstreams.items()}
    for pool, (name, tls) in (tls_pools or {}).items():
        groups[pool] = UpstreamGroup(upstreams[name], engine, tls)
    return groups


def local_address(bind, req, log, conn):
    """proxy_bind's address for this request: None when unset, empty, or (logged) not an
    address, as nginx's ngx_http_upstream_set_local."""
    if bind is None:
        return None
    text = bind.value.render(req)
    if not text:
        return None
    found = addresses.address_port(text)
    if found is None:
        log.error(f'invalid local address "{text}"', conn, req)
        return None
    addr, port = found
    return str(addr), port, bind.transparent
