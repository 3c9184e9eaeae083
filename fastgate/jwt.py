"""Key loading: ``auth_jwt_key`` values (utf8, hex, base64, file) and JWKS documents into
the core's key objects, once, at configuration load. Re-exports the JWTError tree.

Nothing here runs per request.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from fastgate._core import (
    ALGORITHMS,
    ECKey,
    EdDSAKey,
    HMACKey,
    Key,
    RSAKey,
    Token,
    Verifier,
    b64url_decode,
    b64url_encode,
)
from fastgate.errors import (
    AlgorithmError,
    AudienceError,
    CriticalHeaderError,
    ExpiredError,
    IssuerError,
    JWTError,
    KeyLoadError,
    KeysUnavailableError,
    NotYetValidError,
    SignatureError,
    TokenMissingError,
    TokenParseError,
    UnknownKeyError,
)

# RSA moduli below this are refused at load (NIST SP 800-131A; RFC 7518 section 3.3
# requires 2048 bits for RS*/PS*)
MIN_RSA_BITS = 2048

__all__ = [
    "ALGORITHMS", "AlgorithmError", "AudienceError", "CriticalHeaderError", "IssuerError",
    "KeysUnavailableError", "ECKey", "EdDSAKey",
    "ExpiredError", "HMACKey", "JWTError", "Key", "KeyLoadError", "NotYetValidError",
    "RSAKey", "SignatureError", "Token", "TokenMissingError", "TokenParseError",
    "UnknownKeyError", "Verifier", "b64url_decode", "b64url_encode", "key_from_value",
    "keys_from_file", "keys_from_bytes", "keys_from_jwks", "public_key_to_key",
]

ENCODINGS = ("utf8", "hex", "base64", "file")


def key_from_value(value: str, encoding: str = "utf8") -> HMACKey:
    """An HMAC secret from an ``auth_jwt_key`` value in ``utf8``, ``hex`` or ``base64``."""
    if encoding == "utf8":
        secret = value.encode("utf-8")
    elif encoding == "hex":
        try:
            secret = bytes.fromhex(value)
        except ValueError:
            raise KeyLoadError(f'invalid hex value "{value}"') from None
    elif encoding == "base64":
        secret = _base64_any(value)
    else:
        raise KeyLoadError(f'invalid key encoding "{encoding}"')
    if not secret:
        raise KeyLoadError("JWT: key not set")
    return HMACKey(secret)


def _base64_any(value: str) -> bytes:
    """Standard base64 (RFC 4648 section 4), padded or not, and nothing else: a value
    in another alphabet ("t-e-s-t") is a mistake to report, not a secret to guess at."""
    text = value.strip()
    text += "=" * (-len(text) % 4)
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise KeyLoadError(f'invalid base64 value "{value}"') from None


def keys_from_file(path: str) -> tuple[Key, ...]:
    """The key(s) in a file: PEM public key or certificate, JWKS or single JWK (JSON),
    otherwise the file's bytes as an HMAC secret, as the nginx module does."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise KeyLoadError(f'JWT: cannot read key file "{path}": {e.strerror}') from None
    if not data.strip():
        raise KeyLoadError(f'JWT: key file "{path}" is empty')
    try:
        return keys_from_bytes(data)
    except KeyLoadError as e:
        raise KeyLoadError(f'JWT: key file "{path}": {e}') from None


def keys_from_bytes(data: bytes) -> tuple[Key, ...]:
    """Keys from a key file's bytes. Content that looks like a key format (JSON, PEM,
    DER) must load as one: falling back to an HMAC secret there would turn a public
    file into a secret anyone can sign with."""
    stripped = data.strip()
    if b"-----BEGIN" in stripped:
        return (_key_from_pem(stripped),)
    if stripped[:1] in (b"{", b"["):
        try:
            doc = json.loads(stripped)
        except (ValueError, RecursionError) as e:
            raise KeyLoadError(f"looks like JSON but does not parse ({e})") from None
        if isinstance(doc, list):
            raise KeyLoadError('is a JSON array; a key set is an object {"keys": [...]}')
        if not isinstance(doc, dict) or not ("keys" in doc or "kty" in doc):
            raise KeyLoadError('is JSON but neither a JWKS ("keys") nor a JWK ("kty")')
        return keys_from_jwks(doc if "keys" in doc else {"keys": [doc]})
    if _looks_like_der(data):
        raise KeyLoadError("holds DER (binary ASN.1); give the key or certificate as PEM")
    return (HMACKey(data),)


def _looks_like_der(data: bytes) -> bool:
    """An ASN.1 SEQUENCE whose length field spans exactly the data: how every DER key
    and certificate starts, and unlikely for a secret by chance."""
    if len(data) < 2 or data[0] != 0x30:
        return False
    first = data[1]
    if first < 0x80:
        return 2 + first == len(data)
    n = first & 0x7F
    if not 1 <= n <= 4 or len(data) < 2 + n:
        return False
    return 2 + n + int.from_bytes(data[2:2 + n], "big") == len(data)


def _key_from_pem(pem: bytes) -> Key:
    if b"PRIVATE KEY-----" in pem:
        raise KeyLoadError("holds a private key; give the gateway the public key only")
    public: PublicKeyTypes
    try:
        if b"-----BEGIN CERTIFICATE-----" in pem:
            public = x509.load_pem_x509_certificate(pem).public_key()
        else:
            public = load_pem_public_key(pem)
    except (ValueError, TypeError) as e:
        raise KeyLoadError(f"not a PEM public key or certificate ({e})") from None
    return public_key_to_key(public)


def public_key_to_key(public: Any, kid: str | None = None, alg: str | None = None) -> Key:
    """The core key for a ``cryptography`` public key object."""
    if isinstance(public, rsa.RSAPublicKey):
        return RSAKey(_strong_rsa(public), kid, alg)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ECKey(public, kid, alg)
    if isinstance(public, ed25519.Ed25519PublicKey):
        return EdDSAKey(public, kid, alg)
    raise KeyLoadError(f"unsupported public key type {type(public).__name__}")


def keys_from_jwks(doc: Any) -> tuple[Key, ...]:
    """Keys from a JWKS document (RFC 7517 section 5). Keys meant for encryption
    (``use: enc``) and key types the gateway cannot verify with are skipped; a set
    with no usable key is an error."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise KeyLoadError('JWKS has no "keys" array')
    keys = []
    skipped = []
    for i, jwk in enumerate(doc["keys"]):
        if not isinstance(jwk, dict):
            raise KeyLoadError(f"JWKS key #{i} is not an object")
        if jwk.get("use", "sig") != "sig":
            continue
        try:
            key = _key_from_jwk(jwk)
        except _Unsupported as e:
            skipped.append(str(e))
            continue
        except KeyLoadError as e:
            raise KeyLoadError(f"JWKS key #{i}: {e}") from None
        keys.append(key)
    if not keys:
        why = f" (skipped: {', '.join(skipped)})" if skipped else ""
        raise KeyLoadError(f"JWKS has no usable signing key{why}")
    return tuple(keys)


def _strong_rsa(public: rsa.RSAPublicKey) -> rsa.RSAPublicKey:
    if public.key_size < MIN_RSA_BITS:
        raise KeyLoadError(f"RSA key of {public.key_size} bits; at least {MIN_RSA_BITS} "
                           "are required")
    return public


class _Unsupported(KeyLoadError):
    pass


_CURVES = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
_COORD = {"P-256": 32, "P-384": 48, "P-521": 66}


def _key_from_jwk(jwk: dict[str, Any]) -> Key:
    kty = jwk.get("kty")
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise KeyLoadError('"kid" is not a string')
    alg = jwk.get("alg")
    if alg is not None and alg not in ALGORITHMS:
        raise _Unsupported(f"alg {alg!r}")
    if kty == "RSA":
        n = _jwk_int(jwk, "n")
        e = _jwk_int(jwk, "e")
        try:
            public = rsa.RSAPublicNumbers(e, n).public_key()
        except ValueError as err:
            raise KeyLoadError(f"invalid RSA key: {err}") from None
        return RSAKey(_strong_rsa(public), kid, alg)
    if kty == "EC":
        crv = jwk.get("crv")
        if crv not in _CURVES:
            raise _Unsupported(f"EC curve {crv!r}")
        x, y = _jwk_bytes(jwk, "x"), _jwk_bytes(jwk, "y")
        if len(x) != _COORD[crv] or len(y) != _COORD[crv]:
            raise KeyLoadError(f"EC coordinates have the wrong length for {crv}")
        try:
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), _CURVES[crv]
            )
            ec_public = numbers.public_key()
        except ValueError as err:
            raise KeyLoadError(f"invalid EC key: {err}") from None
        return ECKey(ec_public, kid, alg)
    if kty == "OKP":
        if jwk.get("crv") != "Ed25519":
            raise _Unsupported(f"OKP curve {jwk.get('crv')!r}")
        try:
            ed_public = ed25519.Ed25519PublicKey.from_public_bytes(_jwk_bytes(jwk, "x"))
        except ValueError as err:
            raise KeyLoadError(f"invalid Ed25519 key: {err}") from None
        return EdDSAKey(ed_public, kid, alg)
    if kty == "oct":
        return HMACKey(_jwk_bytes(jwk, "k"), kid, alg)
    raise _Unsupported(f"kty {kty!r}")


def _jwk_bytes(jwk: dict[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise KeyLoadError(f'missing "{name}"')
    try:
        return b64url_decode(value.rstrip("="))
    except (ValueError, UnicodeEncodeError):
        raise KeyLoadError(f'"{name}" is not base64url') from None


def _jwk_int(jwk: dict[str, Any], name: str) -> int:
    return int.from_bytes(_jwk_bytes(jwk, name), "big")
