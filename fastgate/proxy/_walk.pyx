# cython: language_level=3, boundscheck=False, wraparound=False
# cython: embedsignature=True
"""The loop that walks a location's phases (``proxy.phases``), compiled: it runs for
every request, and in C its bookkeeping (the entry, the location's lookup, the plan
lookup, the walk, the step checks) costs no Python frame. The phases themselves, and
what the loop hands over to (what comes before the location's lookup where a server
has any, the plan builder, nginx's find-config checks, the task that resumes a walk),
are Python."""

from fastgate.proxy.request cimport Request

from fastgate.browsers import KEEPALIVE_MSIE6, keepalive_refused
from fastgate.config.model import AUTO_REDIRECT
from fastgate.proxy.steps import DONE, NEXT, TAKEN

cdef long _MSIE6 = KEEPALIVE_MSIE6

cdef object _NEXT = NEXT
cdef object _DONE = DONE
cdef object _TAKEN = TAKEN
cdef object _AUTO_REDIRECT = AUTO_REDIRECT


cdef class CompiledPhase:
    """The base of a phase written in C: called as any phase is, and by the walk in C."""

    cpdef object run(self, conn, Request req, loc):
        raise NotImplementedError

    def __call__(self, conn, Request req, loc):
        return self.run(conn, req, loc)


cdef class Walker:
    # (its fields: _walk.pxd)

    def __init__(self, locator, before, plan_of, find_config, resume):
        """``locator``: a ``proxy.locate.Locator``, whose answers are read here first.
        ``before(conn, req, server)``: what comes before the location's lookup (a
        request with a body into a task, the client certificate's check, realip, the
        server's rewrite phase), called only for a request or server that has any.
        ``plan_of(loc)``: the handlers the location runs, in phase order.
        ``find_config(conn, req, loc)``: nginx's find-config checks (the body limit, the
        auto-redirect), called only when one can apply; None, or the request's outcome.
        ``resume(conn, req, loc, waiting, at)``: the coroutine that awaits ``waiting``
        and walks on from ``at``."""
        self._plans = IdentityMemo()
        self._memos = locator.memos
        self._find = locator.find
        self._before = before
        self._plan_of = plan_of
        self._find_config = find_config
        self._resume = resume

    cpdef object enter(self, conn, Request req, server):
        """The request's phases, from server rewrite on, as far as callbacks take them:
        DONE (answered; the caller completes the request), TAKEN (a callback exchange
        completes it), or the coroutine that finishes it, for a task."""
        if ((req.head.content_length != 0 and not req.in_task) or server.checks_first
                or server.rewrites):
            return self._before(conn, req, server)
        return self.walk(conn, req, self.locate(req, server), 0)

    cpdef object find(self, conn, Request req, server):
        """nginx's find-config phase on: the location of the request's URI, walked."""
        return self.walk(conn, req, self.locate(req, server), 0)

    cpdef object locate(self, Request req, server):
        """The location of the request's URI in ``server`` (a regex location's captures
        set, named ones as variables: a prefix location leaves $1... as they were, a
        server_name's or an earlier location's, as nginx's), else the server's
        fallback."""
        cdef dict memo = self._memos.get(server.locations)
        found = memo.get(req.uri) if memo is not None else None
        if found is None:
            found = self._find(server.locations, req.uri)
        loc, captures = <tuple>found
        if captures:  # (a regex location's; a prefix one leaves $1... as they were)
            req.captures = captures
        elif req.captures is _AUTO_REDIRECT:
            req.captures = ()
        if loc is None:
            return server.fallback
        if captures and loc.named_captures:
            # nginx's ngx_http_regex_exec: the (memoised) match's named captures
            v = req.variables
            for name, i in loc.named_captures:
                v[name] = (captures[i] or "") if i < len(captures) else ""
        return loc

    cpdef object walk(self, conn, Request req, loc, Py_ssize_t at):
        """The location's phases from ``at``: DONE or TAKEN when one answered in
        callbacks, else the coroutine that waits and then walks on. From the start
        (``at`` 0), the find-config checks first — and a method limit_except does not
        name takes the block's configuration (nginx switches it in find-config too)."""
        cdef tuple entry = self._entry(loc)
        cdef long disabled
        if at == 0:
            limit = entry[2]
            if limit is not None and req.method not in <frozenset>(<tuple>limit)[0]:
                loc = (<tuple>limit)[1]
                entry = self._entry(loc)
            req.location = loc
            # its keepalive_* and lingering_* (shared objects: an identity test, and a
            # call only where a location's differ from the server's, or after an
            # internal redirect)
            policy = loc.settings.conn_policy
            if req.uri_changes:
                conn.located(policy, True)
            elif policy is not conn.policy:
                conn.located(policy)
            # keepalive_disable (msie6 by default, which concerns a POST only)
            disabled = entry[3]
            if disabled and (disabled != _MSIE6 or req.method == "POST") and \
                    keepalive_refused(req, disabled):
                conn.close_after_response()
            if ((req.head.content_length > 0 and req.uri_changes == 0)
                    or req.captures is _AUTO_REDIRECT):
                step = self._find_config(conn, req, loc)
                if step is not None:
                    return step
        return self._walk(conn, req, loc, <tuple>entry[1], at)

    cpdef object walk_nested(self, conn, Request req, loc):
        """An ``if``'s configuration, taken in the rewrite phase: its phases after
        rewrite (it has no rewrite phase of its own), without find-config."""
        req.location = loc
        return self._walk(conn, req, loc, <tuple>self._entry(loc)[1], 0)

    cdef tuple _entry(self, loc):
        """(location, its handlers, its limit_except, its keepalive_disable bits), made
        on its first request."""
        cdef tuple entry = self._plans.get(loc)
        if entry is None:
            entry = self._plans.put(loc, (loc, tuple(self._plan_of(loc)), loc.limit_except,
                                          loc.settings.conn_policy.keepalive_disable))
        return entry

    cdef object _walk(self, conn, Request req, loc, tuple plan, Py_ssize_t at):
        cdef Py_ssize_t n = len(plan)
        while at < n:
            phase = plan[at]
            if isinstance(phase, CompiledPhase):  # (a C call)
                step = (<CompiledPhase>phase).run(conn, req, loc)
            else:
                step = phase(conn, req, loc)
            at += 1
            if step is _NEXT:
                continue
            if step is _DONE or step is _TAKEN:
                return step
            return self._resume(conn, req, loc, step, at)
        raise AssertionError(f"location {loc.name!r}: no phase answered")
