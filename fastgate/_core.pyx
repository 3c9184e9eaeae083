# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""The hot path: base64url, JWT split/parse, signature dispatch, claim checks, keys,
and the verified-token cache.

Every request that carries a token pays for what is in this file, so it is written for
speed: HMAC runs on OpenSSL's SHA-2 primitives with the key's inner and outer pads
hashed once at load (RFC 2104 section 4), the parsed header and the key it selects are
cached per distinct header segment, and a verified token is cached until its ``exp``.
Asymmetric signatures go to ``cryptography`` with algorithm objects prepared at load.
"""

from libc.string cimport memcpy, memchr, memset
from posix.time cimport clock_gettime, timespec, CLOCK_REALTIME
from libc.math cimport ceil, floor, isfinite, INFINITY
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8

import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from fastgate.errors import (
    JWTError,
    AlgorithmError,
    AudienceError,
    IssuerError,
    CriticalHeaderError,
    ExpiredError,
    KeyLoadError,
    NotYetValidError,
    SignatureError,
    TokenParseError,
    UnknownKeyError,
)


cdef extern from "openssl/sha.h":
    ctypedef struct SHA256_CTX:
        pass
    ctypedef struct SHA512_CTX:
        pass
    int SHA256_Init(SHA256_CTX *c) nogil
    int SHA256_Update(SHA256_CTX *c, const void *data, size_t n) nogil
    int SHA256_Final(unsigned char *md, SHA256_CTX *c) nogil
    int SHA384_Init(SHA512_CTX *c) nogil
    int SHA384_Update(SHA512_CTX *c, const void *data, size_t n) nogil
    int SHA384_Final(unsigned char *md, SHA512_CTX *c) nogil
    int SHA512_Init(SHA512_CTX *c) nogil
    int SHA512_Update(SHA512_CTX *c, const void *data, size_t n) nogil
    int SHA512_Final(unsigned char *md, SHA512_CTX *c) nogil


# ---------------------------------------------------------------------------------------
# Algorithms (RFC 7518 section 3.1, RFC 8037 section 3.1)

cdef enum:
    ALG_HS256 = 0
    ALG_HS384 = 1
    ALG_HS512 = 2
    ALG_RS256 = 3
    ALG_RS384 = 4
    ALG_RS512 = 5
    ALG_PS256 = 6
    ALG_PS384 = 7
    ALG_PS512 = 8
    ALG_ES256 = 9
    ALG_ES384 = 10
    ALG_ES512 = 11
    ALG_EDDSA = 12

ALGORITHMS = (
    "HS256", "HS384", "HS512",
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512",
    "EdDSA",
)
_ALG_ID = {name: i for i, name in enumerate(ALGORITHMS)}

HMAC_ALGORITHMS = frozenset(ALGORITHMS[0:3])
RSA_ALGORITHMS = frozenset(ALGORITHMS[3:9])


# ---------------------------------------------------------------------------------------
# base64url (RFC 4648 section 5), strict: no padding, no foreign bytes, canonical tail

cdef signed char _B64[256]
cdef const unsigned char *_ALPHABET = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
memset(_B64, -1, 256)
for _i in range(64):
    _B64[_ALPHABET[_i]] = _i


cdef Py_ssize_t _b64_decoded_len(Py_ssize_t n) noexcept nogil:
    """Decoded length of an unpadded segment of ``n`` characters, or -1 if impossible."""
    cdef Py_ssize_t r = n & 3
    if r == 1:
        return -1
    return (n >> 2) * 3 + (r - 1 if r else 0)


cdef Py_ssize_t _b64_decode(const unsigned char *src, Py_ssize_t n,
                            unsigned char *dst) noexcept nogil:
    """Decode ``n`` base64url characters into ``dst``; the length, or -1 if invalid.

    Non-canonical encodings (set bits in the unused tail of the last character) are
    refused, so one byte string has exactly one encoding and a token cannot be altered
    without changing what was signed.
    """
    cdef Py_ssize_t i = 0, o = 0, full = n & ~3, r = n & 3
    cdef int a, b, c, d
    if r == 1:
        return -1
    while i < full:
        a = _B64[src[i]]
        b = _B64[src[i + 1]]
        c = _B64[src[i + 2]]
        d = _B64[src[i + 3]]
        if (a | b | c | d) < 0:
            return -1
        dst[o] = <unsigned char>((a << 2) | (b >> 4))
        dst[o + 1] = <unsigned char>(((b & 15) << 4) | (c >> 2))
        dst[o + 2] = <unsigned char>(((c & 3) << 6) | d)
        i += 4
        o += 3
    if r == 2:
        a = _B64[src[i]]
        b = _B64[src[i + 1]]
        if (a | b) < 0 or (b & 15):
            return -1
        dst[o] = <unsigned char>((a << 2) | (b >> 4))
        o += 1
    elif r == 3:
        a = _B64[src[i]]
        b = _B64[src[i + 1]]
        c = _B64[src[i + 2]]
        if (a | b | c) < 0 or (c & 3):
            return -1
        dst[o] = <unsigned char>((a << 2) | (b >> 4))
        dst[o + 1] = <unsigned char>(((b & 15) << 4) | (c >> 2))
        o += 2
    return o


cdef bytes _b64_segment(const unsigned char *src, Py_ssize_t n):
    """Decode one segment to a new bytes object, or return None if it is invalid."""
    cdef Py_ssize_t size = _b64_decoded_len(n)
    if size < 0:
        return None
    cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
    if _b64_decode(src, n, <unsigned char *>PyBytes_AS_STRING(out)) != size:
        return None
    return out


def b64url_decode(data):
    """Strict base64url decoding of ``data`` (bytes or ASCII str); ``ValueError`` if invalid."""
    if isinstance(data, str):
        data = (<str>data).encode("ascii")
    cdef bytes raw = bytes(data)
    cdef bytes out = _b64_segment(<const unsigned char *>PyBytes_AS_STRING(raw),
                                  PyBytes_GET_SIZE(raw))
    if out is None:
        raise ValueError("invalid base64url")
    return out


_B64_ENCODE_TABLE = bytes.maketrans(b"+/", b"-_")


def b64url_encode(data):
    """base64url without padding (used by the token tool and tests, not the hot path)."""
    import binascii
    return binascii.b2a_base64(bytes(data), newline=False).translate(_B64_ENCODE_TABLE).rstrip(b"=")


# ---------------------------------------------------------------------------------------
# Keys: built once from configuration, each knowing which algorithms it may verify

cdef bint _ct_equal(const unsigned char *a, const unsigned char *b, Py_ssize_t n) noexcept nogil:
    """Constant-time comparison: the time does not depend on where the bytes differ."""
    cdef unsigned char acc = 0
    cdef Py_ssize_t i
    for i in range(n):
        acc |= a[i] ^ b[i]
    return acc == 0


def _restrict(frozenset family, alg):
    """The algorithms a key may verify: its family's, or the one its JWK ``alg`` names."""
    if alg is None:
        return family
    if alg not in family:
        raise KeyLoadError(f"algorithm {alg} does not fit this key type")
    return frozenset((alg,))


cdef class Key:
    """A verification key. ``algorithms`` is what it may verify; ``kid`` selects it in a set."""

    cdef readonly str kid
    cdef readonly str kty
    cdef readonly frozenset algorithms

    def __repr__(self):
        return f"<{type(self).__name__} kty={self.kty!r} kid={self.kid!r}>"

    cdef bint verify(self, int alg, bytes token, Py_ssize_t msg_len, bytes sig) except -1:
        # The base class belongs to no key family and so verifies nothing; each family
        # below overrides this.
        return False


cdef class HMACKey(Key):
    """A shared secret. The inner and outer pad states are hashed once here, so a
    verification hashes only the message and one digest (RFC 2104)."""

    cdef SHA256_CTX _in256, _out256
    cdef SHA512_CTX _in384, _out384, _in512, _out512
    cdef readonly bytes secret

    def __init__(self, secret, kid=None, alg=None):
        secret = bytes(secret)
        if not secret:
            raise KeyLoadError("HMAC secret is empty")
        self.secret = secret
        self.kid = kid
        self.kty = "oct"
        self.algorithms = _restrict(HMAC_ALGORITHMS, alg)
        self._prepare256(secret)
        self._prepare512(secret, 0)
        self._prepare512(secret, 1)

    cdef void _pads(self, bytes key, Py_ssize_t block, unsigned char *ipad, unsigned char *opad):
        cdef const unsigned char *k = <const unsigned char *>PyBytes_AS_STRING(key)
        cdef Py_ssize_t i, n = PyBytes_GET_SIZE(key)
        memset(ipad, 0x36, block)
        memset(opad, 0x5c, block)
        for i in range(n):
            ipad[i] ^= k[i]
            opad[i] ^= k[i]

    cdef void _prepare256(self, bytes secret):
        cdef unsigned char ipad[64]
        cdef unsigned char opad[64]
        if len(secret) > 64:
            secret = _sha(secret, "sha256")
        self._pads(secret, 64, ipad, opad)
        SHA256_Init(&self._in256)
        SHA256_Update(&self._in256, ipad, 64)
        SHA256_Init(&self._out256)
        SHA256_Update(&self._out256, opad, 64)

    cdef void _prepare512(self, bytes secret, int is512):
        cdef unsigned char ipad[128]
        cdef unsigned char opad[128]
        if len(secret) > 128:
            secret = _sha(secret, "sha512" if is512 else "sha384")
        self._pads(secret, 128, ipad, opad)
        if is512:
            SHA512_Init(&self._in512)
            SHA512_Update(&self._in512, ipad, 128)
            SHA512_Init(&self._out512)
            SHA512_Update(&self._out512, opad, 128)
        else:
            SHA384_Init(&self._in384)
            SHA384_Update(&self._in384, ipad, 128)
            SHA384_Init(&self._out384)
            SHA384_Update(&self._out384, opad, 128)

    cdef Py_ssize_t _mac(self, int alg, const unsigned char *msg, Py_ssize_t n,
                         unsigned char *out) noexcept nogil:
        cdef SHA256_CTX c256
        cdef SHA512_CTX c512
        cdef unsigned char inner[64]
        if alg == ALG_HS256:
            memcpy(&c256, &self._in256, sizeof(SHA256_CTX))
            SHA256_Update(&c256, msg, n)
            SHA256_Final(inner, &c256)
            memcpy(&c256, &self._out256, sizeof(SHA256_CTX))
            SHA256_Update(&c256, inner, 32)
            SHA256_Final(out, &c256)
            return 32
        if alg == ALG_HS384:
            memcpy(&c512, &self._in384, sizeof(SHA512_CTX))
            SHA384_Update(&c512, msg, n)
            SHA384_Final(inner, &c512)
            memcpy(&c512, &self._out384, sizeof(SHA512_CTX))
            SHA384_Update(&c512, inner, 48)
            SHA384_Final(out, &c512)
            return 48
        memcpy(&c512, &self._in512, sizeof(SHA512_CTX))
        SHA512_Update(&c512, msg, n)
        SHA512_Final(inner, &c512)
        memcpy(&c512, &self._out512, sizeof(SHA512_CTX))
        SHA512_Update(&c512, inner, 64)
        SHA512_Final(out, &c512)
        return 64

    def sign(self, alg, message):
        """HMAC of ``message`` (bytes) with this secret, for the token tool and tests."""
        cdef int a = _ALG_ID[alg]
        if a > ALG_HS512:
            raise ValueError(f"{alg} is not an HMAC algorithm")
        cdef bytes msg = bytes(message)
        cdef unsigned char out[64]
        cdef Py_ssize_t n = self._mac(a, <const unsigned char *>PyBytes_AS_STRING(msg),
                                      PyBytes_GET_SIZE(msg), out)
        return PyBytes_FromStringAndSize(<char *>out, n)

    cdef bint verify(self, int alg, bytes token, Py_ssize_t msg_len, bytes sig) except -1:
        cdef unsigned char out[64]
        cdef Py_ssize_t n = self._mac(alg, <const unsigned char *>PyBytes_AS_STRING(token),
                                      msg_len, out)
        if PyBytes_GET_SIZE(sig) != n:
            return False
        return _ct_equal(out, <const unsigned char *>PyBytes_AS_STRING(sig), n)


def _sha(data, name):
    import hashlib
    return hashlib.new(name, data).digest()


_HASHES = {
    ALG_RS256: hashes.SHA256(), ALG_RS384: hashes.SHA384(), ALG_RS512: hashes.SHA512(),
    ALG_PS256: hashes.SHA256(), ALG_PS384: hashes.SHA384(), ALG_PS512: hashes.SHA512(),
}
_PKCS1 = padding.PKCS1v15()
# RFC 7518 section 3.5: MGF1 with the same hash, salt as long as the hash output.
_PSS = {
    alg: padding.PSS(mgf=padding.MGF1(_HASHES[alg]), salt_length=_HASHES[alg].digest_size)
    for alg in (ALG_PS256, ALG_PS384, ALG_PS512)
}


cdef class RSAKey(Key):
    """An RSA public key: RS256/384/512 (PKCS#1 v1.5) and PS256/384/512 (PSS)."""

    cdef readonly object public_key
    cdef list _hash
    cdef list _pad
    cdef Py_ssize_t _size

    def __init__(self, public_key, kid=None, alg=None):
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise KeyLoadError("not an RSA public key")
        self.public_key = public_key
        self.kid = kid
        self.kty = "RSA"
        self.algorithms = _restrict(RSA_ALGORITHMS, alg)
        self._size = (public_key.key_size + 7) // 8
        self._hash = [_HASHES.get(i) for i in range(ALG_EDDSA + 1)]
        self._pad = [_PSS.get(i, _PKCS1) for i in range(ALG_EDDSA + 1)]

    cdef bint verify(self, int alg, bytes token, Py_ssize_t msg_len, bytes sig) except -1:
        # RFC 8017 section 8.2.2: the signature is exactly k octets long.
        if PyBytes_GET_SIZE(sig) != self._size:
            return False
        try:
            self.public_key.verify(sig, token[:msg_len], self._pad[alg], self._hash[alg])
        except (InvalidSignature, ValueError):
            return False
        return True


_CURVES = {
    "secp256r1": (ALG_ES256, "ES256", 32, hashes.SHA256()),
    "secp384r1": (ALG_ES384, "ES384", 48, hashes.SHA384()),
    "secp521r1": (ALG_ES512, "ES512", 66, hashes.SHA512()),
}


cdef class ECKey(Key):
    """An EC public key on P-256, P-384 or P-521; verifies the one ES* algorithm of its
    curve (RFC 7518 section 3.4)."""

    cdef readonly object public_key
    cdef int _alg
    cdef Py_ssize_t _coord
    cdef object _ecdsa
    cdef object _order

    def __init__(self, public_key, kid=None, alg=None):
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise KeyLoadError("not an EC public key")
        spec = _CURVES.get(public_key.curve.name)
        if spec is None:
            raise KeyLoadError(f"unsupported EC curve {public_key.curve.name}")
        self.public_key = public_key
        self.kid = kid
        self.kty = "EC"
        self._alg, name, self._coord, digest = spec
        self.algorithms = _restrict(frozenset((name,)), alg)
        self._ecdsa = ec.ECDSA(digest)

    cdef bint verify(self, int alg, bytes token, Py_ssize_t msg_len, bytes sig) except -1:
        # JWS signatures are R || S, each exactly the curve's coordinate length
        # (RFC 7518 section 3.4); DER and any other length is refused.
        if alg != self._alg or PyBytes_GET_SIZE(sig) != 2 * self._coord:
            return False
        r = int.from_bytes(sig[:self._coord], "big")
        s = int.from_bytes(sig[self._coord:], "big")
        if r == 0 or s == 0:  # "psychic signatures": never valid, refused before OpenSSL
            return False
        try:
            self.public_key.verify(encode_dss_signature(r, s), token[:msg_len], self._ecdsa)
        except (InvalidSignature, ValueError):
            return False
        return True


cdef class EdDSAKey(Key):
    """An Ed25519 public key (RFC 8037): algorithm ``EdDSA``."""

    cdef readonly object public_key

    def __init__(self, public_key, kid=None, alg=None):
        if not isinstance(public_key, ed25519.Ed25519PublicKey):
            raise KeyLoadError("not an Ed25519 public key")
        self.public_key = public_key
        self.kid = kid
        self.kty = "OKP"
        self.algorithms = _restrict(frozenset(("EdDSA",)), alg)

    cdef bint verify(self, int alg, bytes token, Py_ssize_t msg_len, bytes sig) except -1:
        if PyBytes_GET_SIZE(sig) != 64:
            return False
        try:
            self.public_key.verify(sig, token[:msg_len])
        except (InvalidSignature, ValueError):
            return False
        return True


# ---------------------------------------------------------------------------------------
# Tokens

def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


# RFC 8259 has no NaN or Infinity; Python's decoder accepts them unless told not to.
_decode_json = json.JSONDecoder(parse_constant=_refuse_constant).decode


cdef object _json_object(bytes raw):
    """Parse UTF-8 JSON that must be an object; None when it is not."""
    try:
        value = _decode_json(PyUnicode_DecodeUTF8(PyBytes_AS_STRING(raw),
                                                  PyBytes_GET_SIZE(raw), "strict"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        return None
    except RecursionError:
        return None
    if type(value) is not dict:
        return None
    if b"\\ud" in raw or b"\\uD" in raw:
        # "\ud800" is valid JSON text but no character: a lone surrogate could not be
        # written to a header, a log line or a limit key. Refused as a token that does
        # not parse, as jansson (the module's JSON library) refuses it
        try:
            _json_value(value).encode("utf-8")
        except (UnicodeEncodeError, RecursionError):
            return None
    return value


_json_value = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


cdef class Token:
    """A verified token: decoded header and its raw JSON, the payload's raw JSON, and
    when the token is valid.

    A cached token is shared by every request that presents it, so it is read-only to
    them. It is kept small, because the cache holds up to ``auth_jwt_cache`` of them per
    verifier: the payload is kept as its JSON text and parsed again only when a claim is
    read for the first time (``payload`` parses it once and keeps it, for the rare
    configuration that walks it on every request); the JSON text of the first claim read
    is memoised in two fields and any further ones in a dict made on demand, which makes
    ``$jwt_claim_*`` free on a cache hit.
    """

    # (its fields: _core.pxd)

    @property
    def payload(self):
        """The payload as a dict (parsed once, on first use)."""
        if self._payload is None:
            self._payload = _json_object(self.payload_json)
        return self._payload

    cpdef str claim_text(self, str name):
        """The claim as ``$jwt_claim_NAME`` reads it: JSON text, empty when absent."""
        if name is self._name or (self._name is not None and name == self._name):
            return self._text
        if self._texts is not None:
            text = self._texts.get(name)
            if text is not None:
                return text
        payload = self._payload if self._payload is not None else _json_object(self.payload_json)
        value = payload.get(name, _MISSING)
        text = "" if value is _MISSING else _json_value(value)
        if self._name is None:
            self._name = name
            self._text = text
        else:
            if self._texts is None:
                self._texts = {}
            self._texts[name] = text
        return text

    def header_text(self, str name):
        """The header parameter as ``$jwt_header_NAME`` reads it."""
        value = self.header.get(name, _MISSING)
        return "" if value is _MISSING else _json_value(value)

    def __repr__(self):
        return f"<Token header={self.header!r} payload={self.payload!r}>"


cdef object _MISSING = object()


cdef class ClaimGetter:
    """``$jwt_claim_NAME``'s getter (``fastgate.variables``), compiled: a request's
    verified token's claim as JSON text, or NGINX Plus's encoding (``plus``) where the
    token was checked in Plus's form; empty without a token. A location that forwards a
    claim upstream reads it on every request, and here that costs no Python frame."""

    # (its fields and C method: _core.pxd)

    def __init__(self, str name, plus):
        self.name = name
        self.plus = plus

    def __call__(self, r):
        tok = r.token
        if tok is None:
            return ""
        return self.text(tok, r.jwt_plus)

    cdef str text(self, tok, bint plus):
        """The claim of ``tok`` (a request's verified token; None: "") as the request
        reads it (``plus``: checked in NGINX Plus's form)."""
        if tok is None:
            return ""
        if plus:
            return self.plus((<Token?>tok).payload.get(self.name))
        return (<Token?>tok).claim_text(self.name)


cdef bytes _sha256(bytes data):
    cdef SHA256_CTX c
    cdef unsigned char md[32]
    SHA256_Init(&c)
    SHA256_Update(&c, PyBytes_AS_STRING(data), <size_t>PyBytes_GET_SIZE(data))
    SHA256_Final(md, &c)
    return PyBytes_FromStringAndSize(<char *>md, 32)


cdef class _HeaderPlan:
    """What a header segment decides, computed once per distinct segment: the parsed
    header, the algorithm, and the keys that may verify it — or the error to raise."""

    # (its fields: _core.pxd)


cdef double _numeric_date(object value, str name) except? -1.0:
    """A NumericDate (RFC 7519 section 2) as seconds. A bool is not a number, nor is a
    non-finite float; an integer beyond a double's range is clamped, which keeps its
    meaning (far future or far past)."""
    cdef double v
    if type(value) is float:
        v = <double>value
        if not isfinite(v):
            raise TokenParseError(f'"{name}" is not a finite number')
        return v
    if type(value) is int:
        try:
            return <double>value
        except OverflowError:
            return INFINITY if value > 0 else -INFINITY
    raise TokenParseError(f'"{name}" is not a number')


cdef enum:
    HEADER_CACHE_SIZE = 256


cdef class Verifier:
    """Verifies tokens against a key set under an algorithm policy.

    ``algorithm`` is ``"any"`` or one name from ``ALGORITHMS``; ``any`` still accepts
    only algorithms the keys themselves can verify, so a public key never verifies an
    HS* token and ``none`` is never accepted. ``cache_size`` bounds the cache of
    verified tokens (0 turns it off); an entry is never served outside the token's
    validity.

    The cache is keyed by the token's SHA-256, not by the token: an entry then costs the
    same whatever the token's size (an RS256 token is three times an HS256 one), and no
    bearer token outlives its request in memory. Two tokens with one SHA-256 would be a
    collision in the hash RS256 and HS256 themselves rest on. Eviction is the CLOCK
    approximation of LRU: a hit only sets the entry's ``used`` bit, and the hand that
    looks for a victim gives a used entry a second chance — no list to relink per hit,
    and one pointer of bookkeeping per entry.
    """

    # (its fields and C methods: _core.pxd)

    def __init__(self, keys, algorithm="any", leeway=0, cache_size=10000, issuers=None,
                 audiences=None):
        keys = tuple(keys)
        for k in keys:
            if not isinstance(k, Key):
                raise TypeError(f"not a Key: {k!r}")
        if algorithm == "any":
            self._allowed = frozenset(ALGORITHMS)
        elif algorithm in _ALG_ID:
            self._allowed = frozenset((algorithm,))
        else:
            raise ValueError(f"unknown algorithm {algorithm!r}")
        if leeway < 0:
            raise ValueError("leeway must not be negative")
        if cache_size < 0:
            raise ValueError("cache size must not be negative")
        self.algorithm = algorithm
        self.leeway = leeway
        self.cache_size = cache_size
        self.issuers = frozenset(issuers) if issuers else None
        self.audiences = frozenset(audiences) if audiences else None
        self._cache = {}
        self._ring = []
        self._hand = 0
        self._plans = {}
        self._keys = keys

    @property
    def keys(self):
        return self._keys

    def set_keys(self, keys):
        """Replace the key set (JWKS rotation). Cached decisions made with the old keys
        are dropped, so a removed key stops verifying at once."""
        keys = tuple(keys)
        for k in keys:
            if not isinstance(k, Key):
                raise TypeError(f"not a Key: {k!r}")
        self._keys = keys
        self._plans = {}
        self._cache = {}
        self._ring = []
        self._hand = 0

    def __len__(self):
        return len(self._cache)

    def verify_now(self, token):
        """``verify`` at the current time (the clock read here, in C)."""
        cdef timespec t
        clock_gettime(CLOCK_REALTIME, &t)
        return self.verify(token, t.tv_sec + t.tv_nsec * 1e-9)

    cpdef check_now(self, token):
        """``verify_now`` that gives the refusal rather than raising it: a
        :class:`Token`, or the :class:`fastgate.errors.JWTError` that says why. (The
        request path's: an error raised through these C functions and caught in Python
        makes a frame object per level and a traceback, more than the check itself.)"""
        cdef timespec t
        clock_gettime(CLOCK_REALTIME, &t)
        return self._check(token, t.tv_sec + t.tv_nsec * 1e-9)

    def check(self, token, double now):
        """``verify`` that gives the refusal rather than raising it (``check_now``)."""
        return self._check(token, now)

    cpdef Token verify(self, token, double now):
        """Verify ``token`` (bytes) at time ``now`` (seconds since the epoch).

        Returns a :class:`Token`, or raises a :class:`fastgate.errors.JWTError`
        subclass naming the reason.
        """
        result = self._check(token, now)
        if type(result) is Token:
            return <Token>result
        raise result

    cdef object _check(self, token, double now):
        """A Token, or the JWTError that refuses ``token`` (not raised)."""
        cdef bytes tok
        cdef bytes digest
        cdef Token entry
        if type(token) is bytes:
            tok = <bytes>token
        elif isinstance(token, str):
            try:
                tok = (<str>token).encode("ascii")
            except UnicodeEncodeError:
                return TokenParseError("token is not ASCII")
        else:
            tok = bytes(token)

        if not self.cache_size:
            return self._cold(tok, now)
        digest = _sha256(tok)
        entry = self._cache.get(digest)
        if entry is not None:
            if entry.not_before <= now < entry.until:
                entry.used = True
                self.hits += 1
                return entry
            del self._cache[digest]  # outside its validity: verify again, and fail
        self.misses += 1
        result = self._cold(tok, now)
        if type(result) is Token:
            self._store(digest, <Token>result)
        return result

    cdef object _cold(self, bytes tok, double now):
        try:
            return self._verify_cold(tok, now)
        except JWTError as e:  # (what its helpers raise: a claim that is no number...)
            return e.with_traceback(None)  # (holding no frames alive)

    cdef void _store(self, bytes digest, Token token):
        cdef list ring = self._ring
        cdef Py_ssize_t size = self.cache_size
        cdef Token victim
        if len(ring) < size:
            ring.append(digest)
        else:
            while True:
                old = ring[self._hand]
                victim = self._cache.get(old)
                if victim is None:
                    break  # a slot whose entry was dropped for its validity: reuse it
                if victim.used:
                    victim.used = False  # a second chance
                    self._hand = (self._hand + 1) % size
                    continue
                del self._cache[old]
                break
            ring[self._hand] = digest
            self._hand = (self._hand + 1) % size
        self._cache[digest] = token

    cdef object _verify_cold(self, bytes tok, double now):
        """A Token, or the JWTError that refuses the token (returned, not raised)."""
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(tok)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(tok)
        cdef const unsigned char *d1
        cdef const unsigned char *d2
        cdef Py_ssize_t i1, i2
        d1 = <const unsigned char *>memchr(p, 46, n)  # '.'
        if d1 == NULL:
            return TokenParseError("token does not have three segments")
        i1 = d1 - p
        d2 = <const unsigned char *>memchr(d1 + 1, 46, n - i1 - 1)
        if d2 == NULL:
            return TokenParseError("token does not have three segments")
        i2 = d2 - p
        if memchr(d2 + 1, 46, n - i2 - 1) != NULL:
            return TokenParseError("token has more than three segments")
        if i1 == 0 or i2 == i1 + 1:
            return TokenParseError("empty header or payload segment")

        cdef _HeaderPlan plan = self._plan(PyBytes_FromStringAndSize(<const char *>p, i1))
        if plan.error_type is not None:
            return plan.error_type(plan.error_detail)

        cdef bytes payload_raw = _b64_segment(d1 + 1, i2 - i1 - 1)
        if payload_raw is None:
            return TokenParseError("payload is not base64url")
        cdef bytes sig = _b64_segment(d2 + 1, n - i2 - 1)
        if sig is None:
            return TokenParseError("signature is not base64url")

        cdef Key key
        cdef bint ok = False
        for key in plan.keys:
            if key.verify(plan.alg, tok, i2, sig):
                ok = True
                break
        if not ok:
            return SignatureError()

        payload = _json_object(payload_raw)
        if payload is None:
            return TokenParseError("payload is not a JSON object")

        # RFC 7519 sections 4.1.4 and 4.1.5, compared in whole seconds as the module
        # does: exp equal to the current second is still valid.
        cdef double sec = floor(now)
        cdef double exp_s, nbf_s
        cdef double until = INFINITY, not_before = -INFINITY
        exp = payload.get("exp", _MISSING)
        if exp is not _MISSING:
            exp_s = _numeric_date(exp, "exp")
            if exp_s + self.leeway < sec:
                return ExpiredError()
            until = floor(exp_s + self.leeway) + 1.0
        nbf = payload.get("nbf", _MISSING)
        if nbf is not _MISSING:
            nbf_s = _numeric_date(nbf, "nbf")
            if nbf_s > sec + self.leeway:
                return NotYetValidError()
            not_before = ceil(nbf_s - self.leeway)

        # RFC 7519 sections 4.1.1 and 4.1.3, when the configuration asks for them
        if self.issuers is not None:
            iss = payload.get("iss")
            if type(iss) is not str or iss not in self.issuers:
                return IssuerError(f"iss {iss!r}")
        if self.audiences is not None:
            aud = payload.get("aud")
            if type(aud) is str:
                ok = aud in self.audiences
            elif type(aud) is list:
                ok = any(type(a) is str and a in self.audiences for a in aud)
            else:
                ok = False
            if not ok:
                return AudienceError(f"aud {aud!r}")

        cdef Token result = Token.__new__(Token)
        result.header = plan.header
        result.header_json = plan.header_json
        result.payload_json = payload_raw
        result.not_before = not_before
        result.until = until
        return result

    cdef _HeaderPlan _plan(self, bytes segment):
        cdef _HeaderPlan plan = self._plans.get(segment)
        if plan is not None:
            return plan
        plan = self._make_plan(segment)
        if len(self._plans) >= HEADER_CACHE_SIZE:
            self._plans.clear()  # a flood of distinct headers: start over, stay bounded
        self._plans[segment] = plan
        return plan

    cdef _HeaderPlan _make_plan(self, bytes segment):
        cdef _HeaderPlan plan = _HeaderPlan.__new__(_HeaderPlan)
        plan.keys = ()
        raw = _b64_segment(<const unsigned char *>PyBytes_AS_STRING(segment),
                           PyBytes_GET_SIZE(segment))
        if raw is None:
            return _fail(plan, TokenParseError, "header is not base64url")
        header = _json_object(raw)
        if header is None:
            return _fail(plan, TokenParseError, "header is not a JSON object")
        plan.header = header
        plan.header_json = raw
        alg = header.get("alg")
        if type(alg) is not str:
            return _fail(plan, TokenParseError, 'header has no string "alg"')
        if alg not in _ALG_ID:
            return _fail(plan, AlgorithmError, f"unsupported algorithm {alg!r}")
        if alg not in self._allowed:
            return _fail(plan, AlgorithmError, f"{alg} is not allowed here")
        # RFC 7515 section 4.1.11: a critical extension we do not implement must fail.
        if "crit" in header:
            return _fail(plan, CriticalHeaderError, f"crit {header['crit']!r}")
        kid = header.get("kid")
        if kid is not None and type(kid) is not str:
            return _fail(plan, TokenParseError, '"kid" is not a string')
        fits = [k for k in self._keys if alg in (<Key>k).algorithms]
        if not fits:
            return _fail(plan, AlgorithmError, f"no configured key verifies {alg}")
        if kid is not None:
            named = [k for k in fits if (<Key>k).kid == kid]
            if not named:
                named = [k for k in fits if (<Key>k).kid is None]
            if not named:
                return _fail(plan, UnknownKeyError, f"kid {kid!r}")
            fits = named
        plan.alg = _ALG_ID[alg]
        plan.keys = tuple(fits)
        plan.error_type = None
        return plan


cdef _HeaderPlan _fail(_HeaderPlan plan, object error_type, str detail):
    plan.error_type = error_type
    plan.error_detail = detail
    return plan
