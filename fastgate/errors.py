"""fastgate's errors: the gateway's start failure, and the JWT error tree shared by the
Cython core and the Python side.

The JWT errors are one tree under ``JWTError`` (as PyJWT's ``InvalidTokenError``); each
class carries the reason the error log prints, worded as the nginx JWT module words it,
and the HTTP
status the access phase answers with.
"""

from __future__ import annotations


class StartError(Exception):
    """The gateway cannot start (bind failed, certificate unreadable...): one line."""


class JWTError(Exception):
    """A token was refused. ``reason`` is the log line's text, ``status`` the answer."""

    reason = "JWT: invalid token"
    status = 401

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.reason)
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


class TokenMissingError(JWTError):
    reason = "JWT: failed to find a jwt"


class AmbiguousTokenError(JWTError):
    """The header, cookie or argument the token comes from is there more than once:
    which one the backend reads is its own choice, so none is verified."""

    reason = "JWT: the token is given more than once"


class TokenParseError(JWTError):
    reason = "JWT: failed to parse jwt"


class AlgorithmError(JWTError):
    reason = "JWT: invalid algorithm"


class CriticalHeaderError(JWTError):
    reason = "JWT: unsupported critical header"


class UnknownKeyError(JWTError):
    """The token names a ``kid`` that no configured key has."""

    reason = "JWT: no key matches the token's kid"


class SignatureError(JWTError):
    reason = "JWT: invalid signature"


class ExpiredError(JWTError):
    reason = "JWT: the jwt has expired"


class NotYetValidError(JWTError):
    reason = "JWT: the jwt is not yet valid"


class IssuerError(JWTError):
    reason = "JWT: invalid issuer"


class AudienceError(JWTError):
    reason = "JWT: invalid audience"


class KeysUnavailableError(JWTError):
    """The location's keys come from a JWKS URL that has not been fetched yet."""

    reason = "JWT: keys not available yet"


class KeyLoadError(ValueError):
    """A key could not be built from configuration (bad encoding, not a key, wrong type)."""
