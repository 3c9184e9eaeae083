# cython: language_level=3
# cython: embedsignature=True
"""The common exchange in callbacks: a request without a body, proxied over an idle
pooled upstream connection. No task, no coroutine: the upstream engine's callbacks write
straight to the client, with back-pressure by pausing the upstream's reads.

Anything unusual — a stale pooled connection, an upstream error or timeout before the
response head — is handed to the task path in ``proxy.exchange`` (retry, ``error_page``,
502/504). Both paths build the client's response head with ``_headers.response_head``
and decide what a failure means by one table (``proxy.failure``), so the rules live in
one place.
"""

from fastgate._wire cimport RequestHead, ResponseHead
from fastgate.http.clock cimport monotonic
from fastgate.http.events cimport ClientEvents
from fastgate.http.exchange cimport Exchange
from fastgate.proxy._headers cimport response_head, upstream_request_head
from fastgate.proxy.memo cimport IdentityMemo
from fastgate.proxy._walk cimport CompiledPhase
from fastgate.proxy.request cimport Request, RequestEnd
from fastgate.proxy.upstream cimport Peer, UpstreamConnection, UpstreamGroup

from fastgate.errors import UpstreamError
from fastgate.http.engine import ProtocolError
from fastgate.proxy.failure import DISABLED_READING, TIMED_OUT, Recovery
from fastgate.proxy.failure import intercepts as _intercepts
from fastgate.proxy.accel import target as _accel_target
from fastgate.proxy.failure import stale as _is_stale
from fastgate.proxy.steps import TAKEN, Step
from fastgate.proxy.upstream import CLIENT_GONE, NEXT_CONDITION, NEXT_STATUSES

cdef dict _CONDITION = NEXT_CONDITION
cdef frozenset _NEXT_STATUSES = NEXT_STATUSES
cdef object _CUT = Recovery.CUT
cdef str _DISABLED_READING = DISABLED_READING
cdef object _AGAIN = Recovery.AGAIN
cdef object _NEXT_SERVER = Recovery.NEXT
cdef object _TAKEN = TAKEN
cdef frozenset _NOT_TRIED = frozenset()


cdef enum:
    _REDIRECT = 1  # X-Accel-Redirect
    _RATE = 2  # X-Accel-Limit-Rate
    _CHARSET = 4  # X-Accel-Charset


cdef inline int _x_accel(list headers):
    """Which of X-Accel-Redirect, X-Accel-Limit-Rate and X-Accel-Charset are among the
    upstream's headers (lengths first: no lowering of the usual ones)."""
    cdef tuple pair
    cdef bytes name
    cdef int found = 0
    cdef Py_ssize_t n
    for pair in headers:
        name = <bytes>pair[0]
        n = len(name)
        if n == 16 and name.lower() == b"x-accel-redirect":
            found |= _REDIRECT
        elif n == 18 and name.lower() == b"x-accel-limit-rate":
            found |= _RATE
        elif n == 15 and name.lower() == b"x-accel-charset":
            found |= _CHARSET
    return found


cdef inline bint _may_gzip(object mode, list headers):
    """Whether a request may have its answer compressed (``ProxyPass.gzip``: 2, maybe
    only a Vary header added, the response decides), or its Accept-Encoding names gzip
    at all (the task path's filter decides the rest)."""
    cdef tuple pair
    cdef bytes name
    if mode == 2:
        return True
    for pair in headers:
        name = <bytes>pair[0]
        if len(name) == 15 and name.lower() == b"accept-encoding" \
                and b"gzip" in (<bytes>pair[1]).lower():
            return True
    return False


# $upstream_status of a status, made once (str() of an int costs ~500 instructions)
cdef list _STATUS_TEXT = [str(i) for i in range(1000)]


cdef class ProxyPass(CompiledPhase):
    """``proxy_pass``'s content handler (a phase of ``proxy.phases``): in callbacks, an
    exchange of this module, when the request has no body, does not upgrade, answers
    with the upstream's own status (no ``error_page =code`` over it), cannot have its
    answer compressed (gzip), the location does not ignore client aborts, and a
    server of the group has an idle connection; anything else on the task path."""

    cdef object upstream  # proxy.exchange.UpstreamExchange
    cdef object w  # the worker (proxy.runtime.Runtime)
    cdef set exchanges  # its callback exchanges in flight (their deadlines)
    cdef dict groups  # the worker's upstream groups by name
    cdef IdentityMemo plans  # the upstream exchange's header_plans (both paths' table)
    # a location → what its proxy_pass and settings say of every request, read once:
    # (the location, its ProxyPass, whether callbacks may take it, its gzip, its pool's
    # name, proxy_read_timeout). The pool itself is looked up per request: a dynamic
    # proxy_pass's pools come and go (proxy.dynamic)
    cdef IdentityMemo facts
    cdef object http_date  # the worker's Date
    # the worker's complete, called in C (None: called by name); found on first use (the
    # worker makes its completion after its phases)
    cdef RequestEnd end
    cdef bint end_found

    def __init__(self, upstream, dict groups):
        self.upstream = upstream
        self.w = upstream.w
        self.exchanges = self.w.exchanges
        self.http_date = self.w.http_date
        self.groups = groups
        self.plans = upstream.header_plans
        self.facts = IdentityMemo()

    cdef complete(self, conn, Request req):
        if not self.end_found:
            end = getattr(self.w.complete, "__self__", None)
            self.end = end if isinstance(end, RequestEnd) else None
            self.end_found = True
        if self.end is not None:
            self.end.complete(conn, req, req.arrived)
        else:
            self.w.complete(conn, req, req.arrived)

    cdef tuple _facts(self, loc):
        cdef tuple f = self.facts.get(loc)
        if f is None:
            pp = loc.proxy_pass
            # (proxy_ignore_client_abort: the task path reads an answer to its end
            # whatever the client does)
            f = self.facts.put(loc, (loc, pp, pp.as_is and pp.tls_name is None
                                     and not loc.settings.proxy_ignore_client_abort,
                                     pp.gzip, pp.pool, loc.settings.proxy_read_timeout))
        return f

    cdef tuple _plan(self, loc):
        cdef tuple plan = self.plans.get(loc)
        if plan is None:
            plan = self.plans.put(loc, self.upstream.header_plan(loc))
        return plan

    cpdef object run(self, conn, Request req, loc):
        cdef RequestHead head = req.head
        cdef tuple f = self._facts(loc)
        gzip = f[3]
        if (req.in_task or head.content_length != 0 or head.upgrade is not None
                or head.expect_continue  # ("100 Continue" first: the task path says it)
                or req.override is not None or not f[2]
                or (gzip and _may_gzip(gzip, head.headers))):
            return self.upstream.proxy(conn, req, loc)
        cdef UpstreamGroup group = self.groups[f[4]]
        cdef Peer peer = group.pick(monotonic(), _NOT_TRIED, req)
        cdef UpstreamConnection uconn
        if peer is not None:
            uconn = peer.take_idle()
            if uconn is not None:
                try:
                    _exchange(self, conn, req, loc, peer, uconn, f[5])._send(
                        f[1], self._plan(loc))
                except UpstreamError:
                    # the engine will not send this request (h11: two Host headers):
                    # the task path says so and answers
                    uconn.detach()
                    uconn.abort()
                    req.in_task = True
                    return self.upstream.proxy(conn, req, loc)
                return _TAKEN
        return self.upstream.proxy(conn, req, loc, peer)


cdef class FastExchange(ClientEvents):
    """One exchange; the engines call its methods for every event, so it is a C class
    (a method call without a Python frame, fields at fixed offsets)."""

    # proxy_pass's handler that made it: the upstream exchange (its task path), the
    # worker, the set of exchanges in flight, the Date
    cdef ProxyPass pp
    cdef readonly object conn  # ClientSide
    cdef Exchange client  # how the response goes to it (fastgate.http.exchange)
    cdef readonly Request req
    cdef readonly object loc  # Location
    cdef readonly Peer peer
    cdef readonly UpstreamConnection uconn
    cdef double t0
    cdef ResponseHead rhead  # once it has come
    cdef bint head_only
    # proxy_read_timeout, or send_timeout while the client reads nothing: the worker's
    # clock checks it
    cdef public double deadline
    cdef double timeout
    cdef bint client_stalled  # the client's buffer is full: the upstream is not read
    cdef public bint finished
    cdef list out  # response bytes of one upstream read, written at once
    cdef tuple drop  # the upstream response headers not passed to the client
    cdef tuple rules  # proxy_redirect's
    cdef bint sent  # some of the response has been written to the client
    cdef Py_ssize_t mark  # the upstream connection's byte counts when this exchange began
    cdef Py_ssize_t sent_mark
    cdef bint handed_over  # the upstream connection went to the task path mid-response

    @property
    def upstream(self):
        """proxy.exchange.UpstreamExchange: the task path this exchange hands over to."""
        return self.pp.upstream

    cdef _send(self, pp, tuple plan):
        """The request upstream: what ``UpstreamExchange.upstream_request`` makes of it,
        its common case here without a Python frame (``plan``: the location's
        ``header_plan``)."""
        cdef Request req = self.req
        cdef UpstreamConnection uconn = self.uconn
        headers, unsafe, target = upstream_request_head(req, pp, plan)
        if unsafe is not None:
            self.pp.upstream.unsafe_headers(self.conn, req, unsafe)
        if target is None:
            target = self.pp.upstream.upstream_target(req, self.loc, pp)
        req.upstream_target = target
        self.drop = plan[3]
        self.rules = plan[4]
        req.upstream_addr = self.peer.address
        uconn.attach(self)
        uconn.limit_head(plan[6])  # (proxy_buffer_size)
        # (an error page's URI made the request a GET: the method the phases left)
        uconn.send_request(req.method.encode("latin-1") if req.uri_changes
                           else req.head.method, target, headers, 0)
        self.deadline = monotonic() + self.timeout
        self.pp.exchanges.add(self)
        self.client.listener = self  # told if the client can take more, or goes away

    # --- the upstream connection's callbacks -----------------------------------------------

    cpdef on_response(self, ResponseHead head):
        # (the deadline moves when this read is flushed)
        req = self.req
        conn = self.conn
        upstream = self.pp.upstream
        status = head.status
        if status >= 403 and status in _NEXT_STATUSES and upstream.next_from_callback(
                self.loc, req, f"http_{status}", self.t0):
            # a status the configuration sends on to the next server: this answer is
            # dropped (a 5xx counted against the server)
            self.uconn.detach()
            self.uconn.abort()
            if status >= 500 and self.peer.failed(monotonic()):
                self.pp.w.log.warn(_DISABLED_READING, conn, req)
            upstream.record_try(req, str(status), self.t0)
            req.in_task = True
            self._handoff(upstream.proxy(conn, req, self.loc, failed=self.peer,
                                         since=self.t0))
            return
        self.peer.fails = 0  # Peer.succeeded
        req.upstream_status = (<str>_STATUS_TEXT[status] if 0 <= status < 1000
                               else str(status))
        req.upstream_time = monotonic() - self.t0
        if status >= 300 and _intercepts(self.loc, status):
            # proxy_intercept_errors: the error_page answers, this answer is dropped
            self.uconn.detach()
            self.uconn.abort()
            req.in_task = True
            self._handoff(upstream.fail(conn, req, self.loc, status))
            return
        cdef int named = _x_accel(head.headers)
        if named:
            ignored = self.loc.settings.proxy_ignore_headers
            to = _accel_target(head.headers, ignored) if named & _REDIRECT else None
            if to is not None:
                # X-Accel-Redirect: another location answers, this answer is dropped
                self.uconn.detach()
                self.uconn.abort()
                req.in_task = True
                self._handoff(upstream.accel(conn, req, self.loc, head.headers, to))
                return
            if ((named & _RATE and "x-accel-limit-rate" not in ignored)
                    or (named & _CHARSET and "x-accel-charset" not in ignored)):
                # paced, or filtered in the charset it names: the task path's relay
                self._relay_in_task(head)
                return
        self.rhead = head
        req.status = status
        self.head_only = req.method == "HEAD" or status in (204, 304)
        try:
            out = response_head(self.client, upstream.respond, req, self.loc, head,
                                self.pp.http_date(), self.drop, self.rules, self.head_only)
        except ProtocolError as e:
            self.rhead = None  # nothing of this response has gone to the client
            self._failed("invalid", f"upstream sent an invalid header: {e.reason}")
            return
        self.out.append(out)
        req.bytes_sent = len(out)

    def on_informational(self, ResponseHead head):
        # 100 and 103 are not forwarded; no request on this path asked to upgrade, so a
        # 101 is an invalid response (the bytes after it are not HTTP)
        if head.status == 101:
            self._failed("invalid", "upstream sent 101 to a request that did not upgrade")

    cpdef on_body(self, data):
        if self.head_only or self.rhead is None:
            if self.handed_over:  # (an engine may still hold this exchange for its read)
                self.uconn.on_body(data)
            return
        out = self.client.body(data)
        self.out.append(out)
        self.req.sent_body(len(out), len(data))

    cpdef flush(self):
        """The end of one upstream read: what it produced goes to the client in one
        write; if the client cannot take more, the upstream stops being read."""
        out = self.out
        if not out:
            return
        client = self.client
        self.sent = True
        client.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()
        self.deadline = monotonic() + self.timeout
        if client.paused():
            self.uconn.pause_reading()
            self.client_stalled = True
            self.deadline = monotonic() + self.loc.settings.send_timeout

    cpdef on_end(self):
        if self.rhead is None:
            if self.handed_over:
                self.uconn.on_end()
            return
        req = self.req
        end = self.client.end(
            self.pp.upstream.respond.trailers(req, self.loc) if req.expect_trailers else None)
        if end:
            self.out.append(end)
            req.sent_body(len(end), 0)
        self.req.release_conn_slots()  # before the client can have it all and ask again
        self.flush()
        cdef UpstreamConnection uconn = self.uconn
        if self.client_stalled:
            # the last write filled the client's buffer, and flush stopped reading the
            # upstream: nothing more of this response is to come, and a connection
            # parked unread would never hear its next exchange's answer
            self.client_stalled = False
            uconn.resume_reading()
        uconn.detach()
        self.peer.release(uconn, self.rhead)
        self._finish()

    cpdef on_whole(self, ResponseHead head, bytes body):
        """A whole response in one upstream read: head, body and end go to the client
        in one write, and the exchange ends."""
        self.on_response(head)
        if self.finished:
            if self.handed_over:
                self.on_body(body)
                self.on_end()
            return
        if body and not self.head_only:
            out = self.client.body(body)
            self.out.append(out)
            self.req.sent_body(len(out), len(body))
        self.on_end()

    def on_error(self, error):
        if self.handed_over:
            self.uconn.on_error(error)
            return
        self._failed("invalid", error.upstream_line)

    def upstream_lost(self):
        self._failed("reset", "upstream closed the connection")

    # --- the client connection's callbacks ---------------------------------------------------

    def client_writable(self):
        if not self.client_stalled:
            return
        self.client_stalled = False
        self.deadline = monotonic() + self.timeout
        self.uconn.resume_reading()

    def client_gone(self):
        """The client went away: the exchange ends now (its limit_conn count with it),
        as nginx ends a request whose client closed (499 when nothing was answered)."""
        if self.finished:
            return
        self.uconn.detach()
        self.uconn.abort()
        if self.rhead is None:
            self.req.status = 499
        self.pp.w.log.info(CLIENT_GONE, self.conn, self.req)
        self._finish()

    # --- endings -----------------------------------------------------------------------------

    def crashed(self, error):
        """An unexpected error in one of this exchange's callbacks (a bug): it costs
        this request — logged, a 500 if nothing has been written to the client yet, else
        a cut connection — and never reaches the event loop."""
        if self.finished:
            return
        uconn = self.uconn
        uconn.detach()
        uconn.abort()
        responded = self.sent
        self.out.clear()
        self._stop()
        self.pp.w.failed(self.conn, self.req, error, self.req.arrived, responded)

    def expire(self):
        """No upstream byte for proxy_read_timeout, or the client took nothing for
        send_timeout (the worker's clock says)."""
        self.deadline = 0.0
        if self.finished:
            return
        if self.client_stalled:
            uconn = self.uconn
            uconn.detach()
            uconn.abort()
            self.pp.w.log.info("client timed out (110: Connection timed out) while "
                                   "sending to client", self.conn, self.req)
            self.client.abort()
            self._finish()
            return
        self._failed("timeout", TIMED_OUT if self.rhead is not None else
                     f"{TIMED_OUT} while reading response header from upstream")

    cdef _failed(self, kind, message):
        """The upstream failed: what the failure table (``proxy.failure``) says, as
        the task path does it; anything but a cut goes on in a task."""
        if self.finished:
            return
        uconn = self.uconn
        uconn.detach()
        uconn.abort()
        upstream = self.pp.upstream
        conn, req, loc = self.conn, self.req, self.loc
        req.in_task = True  # whatever follows runs in a task
        responded = self.rhead is not None
        if responded:
            self.flush()
        # every request on this path has no body and a pooled connection
        is_stale = _is_stale(kind, True, False, uconn.received)
        may_next = (not responded and not is_stale
                    and upstream.next_from_callback(loc, req, _CONDITION[kind], self.t0))
        action = upstream.after_failure(conn, req, self.peer, kind, message, responded,
                                        is_stale, may_next)
        if action is _CUT:
            self._finish()
        elif action is _AGAIN:
            upstream.record_try(req, "502", self.t0)
            self._handoff(upstream.proxy(conn, req, loc, stale=self.peer))
        elif action is _NEXT_SERVER:
            upstream.record_try(req, req.upstream_status, self.t0)
            self._handoff(upstream.proxy(conn, req, loc, failed=self.peer, since=self.t0))
        else:
            self._handoff(upstream.fail(conn, req, loc, 504 if kind == "timeout" else 502))

    cdef _handoff(self, step):
        """The rest of the request: ``step`` is what the task path (or error_page)
        answered — a coroutine to run in a task, or the request already answered."""
        if isinstance(step, Step):
            self._finish()
            return
        self._stop()
        self.pp.w.spawn(self.conn, self.req, step, self.req.arrived)

    cdef _relay_in_task(self, ResponseHead head):
        """``X-Accel-Limit-Rate`` or ``X-Accel-Charset``: the answer is paced, or filtered
        in another charset, which is the task path's relay; the upstream connection goes
        over to it with the response begun (its events to the connection's own body
        buffer from here on)."""
        uconn = self.uconn
        uconn.detach()
        uconn.on_response(head)
        self.handed_over = True
        req = self.req
        req.in_task = True
        self._handoff(self.pp.upstream.relay_taken(self.conn, req, self.loc, self.peer,
                                                   uconn, head, self.drop, self.rules,
                                                   self.mark))

    cdef _stop(self):
        self.req.upstream_bytes_received = self.uconn.received - self.mark
        self.req.upstream_bytes_sent = self.uconn.sent - self.sent_mark
        self.req.upstream_response_time = monotonic() - self.t0  # (to the response's end)
        self.finished = True
        self.deadline = 0.0
        self.pp.exchanges.discard(self)
        if self.client.listener is self:
            self.client.listener = None

    cdef _finish(self):
        if self.finished:
            return
        self._stop()
        self.pp.complete(self.conn, self.req)


cdef FastExchange _exchange(ProxyPass pp, conn, Request req, loc, Peer peer,
                            UpstreamConnection uconn, double timeout):
    """A callback exchange over ``uconn``, made without a Python call (its fields not
    set here are None, 0 or False)."""
    cdef FastExchange x = FastExchange.__new__(FastExchange)
    x.pp = pp
    x.conn = conn
    x.client = conn.exchange
    x.req = req
    x.loc = loc
    x.peer = peer
    x.uconn = uconn
    x.mark = uconn.received
    x.sent_mark = uconn.sent
    req.upstream_connect_time = 0.0  # a pooled connection: nothing to connect
    x.t0 = monotonic()
    x.timeout = timeout
    x.out = []
    return x
