# cython: language_level=3, boundscheck=False, wraparound=False
# cython: embedsignature=True
"""``auth_jwt``'s access phase, compiled, for the usual location: a bearer token in
Authorization and nothing asked after the signature but what the verifier checks (no
``auth_jwt_require``, no revocation list, not NGINX Plus's form). It runs on every such
request, and in C it costs no Python frame; a request without a token and a token the
verifier refuses go to ``proxy.auth_jwt``'s Python path, which answers them."""

from fastgate.proxy.request cimport Request

from fastgate.jwt import Token
from fastgate.proxy._headers import bearer_of
from fastgate.proxy.steps import NEXT

cdef object _NEXT = NEXT
cdef object _TOKEN = Token


cdef class BearerCheck:
    cdef object verifier  # (fastgate._core.Verifier)
    cdef object stats
    cdef bint options  # auth_jwt_options: an OPTIONS request needs a token too
    cdef object missing  # AuthJwt.access: its refusal of a request without a token
    cdef object refused  # AuthJwt.refused(conn, req, loc, verifier, checked, hits)

    def __init__(self, verifier, stats, bint options, missing, refused):
        self.verifier = verifier
        self.stats = stats
        self.options = options
        self.missing = missing
        self.refused = refused

    def __call__(self, conn, Request req, loc):
        if not self.options and req.method == "OPTIONS":
            return _NEXT  # CORS preflights pass, as the module does
        token = bearer_of(req.head.headers)
        if not token:
            return self.missing(conn, req, loc)
        verifier = self.verifier
        hits = verifier.hits
        checked = verifier.check_now(token)
        if type(checked) is not _TOKEN:
            return self.refused(conn, req, loc, verifier, checked, hits)
        req.token = checked
        self.stats.verified(verifier.hits != hits)
        return _NEXT
