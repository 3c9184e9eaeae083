# cython: language_level=3, boundscheck=False, wraparound=False
# cython: embedsignature=True
"""``auth_jwt``'s access phase, compiled, for the usual location: a bearer token in
Authorization and nothing asked after the signature but what the verifier checks (no
``auth_jwt_require``, no revocation list, not NGINX Plus's form). It runs on every such
request, and in C it costs no Python frame. Where the location's 401 is nginx's plain
page (no ``error_page``, no header or filter of its own, no ``auth_delay``), a request
without a token and a token the verifier refuses are answered here too, as
``proxy.auth_jwt``'s Python path answers them; anything else goes to that path."""

from fastgate._core cimport Token, Verifier
from fastgate.proxy._headers cimport bearer_of
from fastgate.proxy.counts cimport JwtCounts
from fastgate.proxy.page cimport write_whole
from fastgate.proxy._walk cimport CompiledPhase
from fastgate.proxy.request cimport Request

from fastgate.errors import TokenMissingError
from fastgate.proxy.capture import Kept
from fastgate.proxy.status import MSIE_PADDING, error_body, pads
from fastgate.proxy.steps import DONE, NEXT

cdef object _NEXT = NEXT
cdef object _DONE = DONE
cdef object _KEPT = Kept
cdef bytes _PAGE = error_body(401)
cdef bytes _PADDED = _PAGE + MSIE_PADDING  # (msie_padding's, for MSIE and Chrome)
cdef str _MISSING = TokenMissingError.reason


cdef bint _padded(list headers):
    """msie_padding's test on the 401 page, without a Python call for the usual agent
    (none, or a client's that names no browser)."""
    cdef bytes name
    for pair in headers:
        name = <bytes>(<tuple>pair)[0]
        if len(name) == 10 and name.lower() == b"user-agent":
            return pads(401, (<tuple>pair)[1])
    return False


cdef class BearerCheck(CompiledPhase):
    cdef Verifier verifier
    cdef object stats  # (ops.stats.Stats)
    cdef JwtCounts counts  # the same, counting in C (None: stats is counted by name)
    cdef bint options  # auth_jwt_options: an OPTIONS request needs a token too
    cdef object missing  # AuthJwt.access: its refusal of a request without a token
    cdef object refused  # AuthJwt.refused(conn, req, loc, verifier, checked, hits)
    cdef object log  # the error log: a refusal it writes (info) takes the Python path
    cdef object http_date
    # the 401s answered here (None: none is): (the challenge without a token, with one)
    cdef tuple challenges
    cdef bint refusals  # a refused token's 401 too (no key set fetched from a URL)
    cdef bint padding  # msie_padding

    def __init__(self, verifier, runtime, bint options, missing, refused,
                 challenges=None, bint refusals=False, bint padding=True):
        self.verifier = verifier
        self.stats = runtime.stats
        self.counts = self.stats if isinstance(self.stats, JwtCounts) else None
        self.log = runtime.log
        self.http_date = runtime.http_date
        self.options = options
        self.missing = missing
        self.refused = refused
        self.challenges = challenges
        self.refusals = refusals and challenges is not None
        self.padding = padding

    cpdef object run(self, conn, Request req, loc):
        if not self.options and req.method == "OPTIONS":
            return _NEXT  # CORS preflights pass, as the module does
        token = bearer_of(req.head.headers)
        if not token:
            if self._plain(conn, req):
                return self._answer(conn, req, _MISSING, <bytes>self.challenges[0])
            return self.missing(conn, req, loc)
        cdef Verifier verifier = self.verifier
        cdef unsigned long long hits = verifier.hits
        checked = verifier.check_now(token)
        if type(checked) is not Token:
            if self.refusals and checked.status == 401 and self._plain(conn, req):
                if self.counts is not None:
                    self.counts.cache(verifier.hits != hits)
                else:
                    self.stats.cache(verifier.hits != hits)
                return self._answer(conn, req, checked.reason, <bytes>self.challenges[1])
            return self.refused(conn, req, loc, verifier, checked, hits)
        req.token = checked
        if self.counts is not None:
            self.counts.verified(verifier.hits != hits)
        else:
            self.stats.verified(verifier.hits != hits)
        return _NEXT

    cdef bint _plain(self, conn, Request req):
        """The 401 is the plain page, answered here: the location's is, the client's
        own connection answers (not a subrequest's or a held one's), no ``error_page``
        imposed a status or an X-Accel-Redirect carried headers, no info line is
        written."""
        return (self.challenges is not None and not isinstance(conn, _KEPT)
                and req.override is None and req.carried is None and not self.log.verbose)

    cdef object _answer(self, conn, Request req, str reason, bytes challenge):
        """The refusal as ``AuthJwt`` and ``Responder.send`` make it: counted, the
        challenge set, nginx's 401 page."""
        if self.counts is not None:
            self.counts.jwt(reason)
        else:
            self.stats.jwt(reason)
        req.challenge = challenge
        req.status = 401
        cdef bytes page = _PADDED if self.padding and _padded(req.head.headers) else _PAGE
        write_whole(conn.exchange, req, 401, b"Unauthorized",
                    [(b"Server", b"fastgate"), (b"Date", self.http_date()),
                     (b"Content-Type", b"text/html"), (b"WWW-Authenticate", challenge)],
                    len(page), page, req.method == "HEAD", None)
        return _DONE
