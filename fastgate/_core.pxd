# The verifier and the token it gives, declared here so that the request path's
# compiled check (proxy/jwt_phase.pyx) calls the verifier and reads its count in C.

cdef class Token:
    cdef readonly dict header
    cdef readonly bytes header_json
    cdef readonly bytes payload_json
    cdef dict _payload        # parsed on demand by ``payload``
    cdef str _name            # the first claim read, and its JSON text
    cdef str _text
    cdef dict _texts          # further claims read: name -> JSON text
    cdef double not_before    # first instant (seconds) the token is valid
    cdef double until         # first instant it is no longer valid
    cdef bint used            # read since the cache's clock hand last passed it

    cpdef str claim_text(self, str name)


# $jwt_claim_NAME's getter: the proxy's header plan reads a claim through text in C
cdef class ClaimGetter:
    cdef str name
    cdef object plus
    cdef str text(self, tok, bint plus)


cdef class _HeaderPlan:
    cdef dict header
    cdef bytes header_json
    cdef int alg
    cdef tuple keys
    cdef object error_type
    cdef str error_detail


cdef class Verifier:
    cdef tuple _keys
    cdef readonly str algorithm
    cdef frozenset _allowed
    cdef readonly double leeway
    cdef readonly Py_ssize_t cache_size
    cdef dict _cache          # SHA-256 of the token -> Token
    cdef list _ring           # the clock face: cache keys in the order they were stored
    cdef Py_ssize_t _hand     # the slot the clock hand points at
    cdef dict _plans
    cdef readonly unsigned long long hits
    cdef readonly unsigned long long misses
    cdef readonly frozenset issuers  # None: iss is not checked
    cdef readonly frozenset audiences  # None: aud is not checked

    cpdef check_now(self, token)
    cpdef Token verify(self, token, double now)
    cdef object _check(self, token, double now)
    cdef object _cold(self, bytes tok, double now)
    cdef void _store(self, bytes digest, Token token)
    cdef object _verify_cold(self, bytes tok, double now)
    cdef _HeaderPlan _plan(self, bytes segment)
    cdef _HeaderPlan _make_plan(self, bytes segment)
