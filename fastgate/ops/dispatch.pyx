# cython: language_level=3, boundscheck=False, wraparound=False
# cython: embedsignature=True
"""The dispatch of one listening address, compiled: the ``RequestHandler`` the HTTP
layer calls with every request head. It refuses what nginx refuses before any phase,
makes the request, chooses its server and enters the phases; ``Completion.complete``
(the worker's ``complete``) runs once the response is written, whichever path answered.
Both run on every request, and in C their attribute reads and the request's fields
cost no Python frame."""

from fastgate._wire cimport RequestHead, screen_headers, split_target
from fastgate.http.clock cimport monotonic
from fastgate.http.events cimport RequestHandlerBase
from fastgate.http.server cimport ClientConnection
from fastgate.ops.counters cimport SlotWriter
from fastgate.proxy._walk cimport Walker
from fastgate.proxy.memo cimport IdentityMemo
from fastgate.proxy.request cimport Request, RequestEnd, new_request

from fastgate._wire import normal_host
from fastgate.http.engine import ProtocolError, duplicate_header
from fastgate.http.uri import parse_target_fully
from fastgate.proxy.steps import DONE, TAKEN

cdef object _DONE = DONE
cdef object _TAKEN = TAKEN


cdef object _line_of(head):
    """``head`` as nginx had read it when it refused the request line: the line, no
    header (for the log's $http_* and $request_length as for the answer)."""
    return RequestHead(head.method, head.target, head.version, [], 0, False, False, None)


cdef inline bint _closed(conn):
    # (a client connection's field, read in C; a subrequest's or a held one's by name)
    if type(conn) is ClientConnection:
        return (<ClientConnection>conn).closed
    return conn.closed


cdef class Completion(RequestEnd)


cdef class AddressHandler(RequestHandlerBase):
    """The worker (``ops.worker.Worker``), with the servers the address selects from
    (``ServerTable``)."""

    cdef readonly object worker
    cdef readonly object vhosts
    # the address is a ``listen ... ssl`` one and its client sent plain HTTP
    # (``http.tls_or_plain``): every request is answered with nginx's 497
    cdef readonly bint plain_on_tls
    # the worker's phase loop and its completion, called in C on every request
    cdef Walker _walker
    cdef Completion _completion
    cdef object _only  # the address's one server (vhosts.only), or None
    # a server → what its settings say of every request, read once: (the server, its
    # conn_policy, underscores_in_headers, ignore_invalid_headers)
    cdef IdentityMemo _servers

    def __init__(self, worker, vhosts, plain_on_tls=False):
        self.worker = worker
        self.vhosts = vhosts
        self.plain_on_tls = plain_on_tls
        self._walker = worker.phases.walker
        self._completion = worker.complete.__self__  # (the worker keeps the bound method)
        self._only = vhosts.only
        self._servers = IdentityMemo()

    cdef tuple _facts(self, server):
        cdef tuple f = self._servers.get(server)
        if f is None:
            s = server.settings
            f = self._servers.put(server, (server, s.conn_policy, s.underscores_in_headers,
                                           s.ignore_invalid_headers))
        return f

    cpdef on_request(self, conn, RequestHead head):
        """A request head has arrived: answer it in callbacks when the phases can, else
        in a task."""
        cdef double started = monotonic()
        w = self.worker
        vhosts = self.vhosts
        cdef bytes method = head.method
        # (http.uri.parse_target, inline: the usual target is split in C without a call)
        target = split_target(head.target)
        if target is None:
            try:
                target = parse_target_fully(head.target, vhosts.merge_slashes)
            except ProtocolError:
                # (nginx refuses the target as its line is read: no header has been,
                # for the log's $http_* and $request_length as for the answer)
                w._refuse(conn, ProtocolError("client sent invalid request", 400, whole=True,
                                              reading="line"), vhosts, None, _line_of(head),
                          started)
                return
        cdef Request req
        cdef ClientConnection client
        if type(conn) is ClientConnection and type(target) is tuple:  # (in C)
            client = <ClientConnection>conn
            req = new_request(head, <tuple>target, client.info, client.requests,
                              client.pipelined)
        else:
            req = Request(head, target, conn)
        if req.host is None:
            if target[2] is not None and normal_host(target[2].encode("latin-1")) is None:
                # (refused in the line: no header read yet)
                w._refuse(conn, ProtocolError("client sent invalid host in request line",
                                              400, whole=True, reading="line"), vhosts,
                          None, _line_of(head), started)
            else:
                w._refuse(conn, ProtocolError("client sent invalid host header", 400,
                                              whole=True, reading="headers"), vhosts, None,
                          head, started)
            return
        only = self._only  # (one server on the address: no call)
        if only is not None:
            server = only
        elif vhosts.named:  # (a regex name with named captures: they are set)
            server = vhosts.select_named(req)
        else:
            server = vhosts.select(req.host)
        cdef tuple facts = self._facts(server)
        policy = ((<ClientConnection>conn).policy if type(conn) is ClientConnection
                  else conn.policy)
        if facts[1] is not policy:  # (until a location's says otherwise)
            conn.located(facts[1])
        screened = screen_headers(head.headers, facts[2], facts[3])
        if screened is not None:
            if screened[0]:  # (nginx has read the Host by then, as a rule: its server's)
                w._refuse(conn, duplicate_header(head.headers, screened[1]), vhosts,
                          server, head, started)
                return
            req.head = w._without(conn, head, screened[1], screened[2], vhosts, server)
        if method == b"TRACE" or method == b"CONNECT":
            # nginx refuses both before any phase, once the headers are read (the page
            # is the Host's server's): TRACE echoes headers back (cookies, tokens),
            # CONNECT would turn the connection into a tunnel
            w._refuse(conn, ProtocolError(f"client sent {method.decode()} method", 405,
                                          whole=True, reading="headers"),
                      vhosts, server, head, started)
            return
        req.server = server
        if not req.host:
            req.host = server.name
        req.arrived = started
        try:
            if self.plain_on_tls:  # (nginx checks it once the head is read, as here)
                step = w.plain_on_tls(conn, req, server)
            else:
                step = self._walker.enter(conn, req, server)
            if step is _DONE:
                self._completion.complete(conn, req, started)
                return
        except Exception as e:  # a bug costs this request, never the event loop
            w.failed(conn, req, e, started, req.bytes_sent != 0)
            return
        if step is not _TAKEN:
            w.spawn(conn, req, step, started)

    def on_refused(self, conn, error):
        self.worker.refused(conn, error, self.vhosts, monotonic())

    def on_header_timeout(self, conn):
        w = self.worker
        w.log.info("client timed out (110: Connection timed out) while reading client "
                   "request headers", conn)
        w.log_refused(conn, 408, 0, 0, self.vhosts)  # in the access log, as nginx

    def on_broken_header(self, conn, message):
        self.worker.log.error(f"{message} while reading PROXY protocol", conn)

    def on_crash(self, conn, error):
        self.worker.log.write("alert", f"unexpected error: {type(error).__name__}: {error}",
                              conn)


cdef class Completion(RequestEnd):
    """``Worker.complete``, compiled: it runs once for every request, whichever path
    answered it (the dispatch, the callback exchange, a task's end)."""

    cdef SlotWriter stats  # ops.stats.Stats (its counters are C methods)
    cdef object access  # ops.logs.AccessLogs
    cdef object post_action  # post_action(conn, req, uri): mirror's, called where set

    def __init__(self, stats, access, post_action):
        self.stats = stats
        self.access = access
        self.post_action = post_action

    cpdef complete(self, conn, Request req, double started):
        """The response is written (or abandoned): count it, log it, free the
        connection."""
        req.completed = not _closed(conn)
        self.stats.request(req.status, monotonic() - started)
        if req.conn_slots is not None:
            req.release_conn_slots()
        loc = req.location
        server = req.server
        if loc is not None:
            s = loc.settings
        elif server is not None:
            s = server.settings
        else:
            s = None
        if s is not None:
            entries = s.access_log
            if entries:
                self.access.write(entries, req)
            if loc is not None and server is not None and s.post_action is not None:
                self.post_action(conn, req, s.post_action)
        kept = req.body_buffer
        if kept is not None and not isinstance(kept, bytes):
            # a body in a file that a mirror read: this request is done with it (its
            # copies may still hold it)
            req.body_buffer = None
            kept.close()
        if _closed(conn):
            return
        if type(conn) is ClientConnection:
            (<ClientConnection>conn).request_done()
        else:
            conn.request_done()
