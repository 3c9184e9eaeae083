"""fastgate's errors: one tree under ``FastgateError``, at the bottom of the layers so
every package raises and catches the same classes.

``ConfigError`` carries FILE:LINE, ``ProtocolError`` and ``JWTError`` the HTTP status to
answer with, ``UpstreamError`` its kind. The JWT errors are a tree of their own under
``JWTError`` (as PyJWT's ``InvalidTokenError``), shared by the Cython core and the
Python side; each class carries the reason the error log prints, worded as the nginx JWT
module words it, and the status the access phase answers with.
"""

from __future__ import annotations

from collections.abc import Iterable


class FastgateError(Exception):
    """Every error fastgate raises on purpose."""


class ConfigError(FastgateError):
    """A configuration error, printed as nginx prints it: ``MESSAGE in FILE:LINE``."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        if self.file == "command line":  # -g
            return f"{self.message} in command line"
        if self.line is None:
            return f"{self.message} in {self.file}"
        return f"{self.message} in {self.file}:{self.line}"

class ProtocolError(FastgateError):
    """The peer broke HTTP/1.1. ``status`` is what a server answers (400, 413, 414...;
    494 for headers too large: a 400 with nginx's "Request Header Or Cookie Too Large").
    ``whole``: ``reason`` is already the error log's whole line in nginx's words
    ("client sent duplicate header line: host"), else it is what follows "client sent
    invalid request: " — said where the error is raised, never guessed from its text.
    ``reading``: what of the request nginx was reading when it refused it, "line" or
    "headers" (its log line then ends " while reading client request line"); None for
    a refusal once the head is read (its body's, say)."""

    def __init__(self, reason: str, status: int = 400, *, whole: bool = False,
                 reading: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.whole = whole
        self.reading = reading
        # the client closed its side before its request (head or body) was whole:
        # nothing is answered (nginx closes), the access log says ``status``
        # (http.engine's ``closed_mid_head``, ``closed_mid_body``)
        self.gone = False
        # what of a refused request was read before the error: its line (method,
        # target, version) and its Host header's value — nginx answers with the Host's
        # server's configuration once it has read one, and logs the line
        self.line: tuple[bytes, bytes, bytes] | None = None
        self.host: bytes | None = None
        # the header lines read before the error (the access log's $http_*, as nginx's)
        self.headers: list[tuple[bytes, bytes]] = []
        # a request line that could not be read as one: its bytes as they came (from its
        # first byte to a CR or LF, or a buffer's worth), which nginx logs as $request
        self.unread: bytes | None = None

    def having_read(self, line: tuple[bytes, bytes, bytes] | None,
                    headers: Iterable[tuple[bytes, bytes]]) -> ProtocolError:
        """This error, knowing the request's ``line`` and the ``headers`` read before
        it (their first Host, if any)."""
        self.line = line
        self.headers = list(headers) if line is not None else []
        if line is not None:
            for name, value in self.headers:
                if len(name) == 4 and name.lower() == b"host":
                    self.host = bytes(value).strip(b" \t")
                    break
        return self

    @property
    def log_line(self) -> str:
        line = self.reason if self.whole else f"client sent invalid request: {self.reason}"
        if self.reading is None:
            return line
        return f"{line} while reading client request {self.reading}"

    @property
    def upstream_line(self) -> str:
        """The error log's line for an upstream response refused for this reason:
        nginx's words where the reason is them ("upstream sent too big header...")."""
        reason = self.reason
        return reason if reason.startswith("upstream sent ") else \
            f"upstream sent an invalid response: {reason}"


class UpstreamError(FastgateError):
    """An upstream failed; ``kind`` is "connect", "timeout", "invalid" or "reset" and
    ``status`` what the client gets if no response has started. "local": our end of a
    new connection could not be set up (proxy_bind), which is a 500 as in nginx."""

    def __init__(self, kind: str, message: str, level: str = "error") -> None:
        super().__init__(message)
        self.kind = kind
        self.level = level  # the error log's (nginx's crit for some socket failures)
        self.status = 504 if kind == "timeout" else 500 if kind == "local" else 502


class OutputFailed(FastgateError):
    """A response whose head is out cannot be completed (a subrequest's part could not
    be had, a compressed body does not inflate): nginx ends it unfinished; the message
    is its error log line."""


class StartError(FastgateError):
    """The gateway cannot start (bind failed, certificate unreadable...): one line."""


class JWTError(FastgateError):
    """A token was refused. ``reason`` is the log line's text, ``status`` the answer."""

    reason = "JWT: invalid token"
    status = 401

    # made with the detail, if any, as its one argument — and no __init__ of its own:
    # one is made on every refusal, and BaseException's constructor is C (no frame)
    @property
    def detail(self) -> str:
        """What the reason alone does not say ("" when nothing)."""
        return str(self.args[0]) if self.args else ""

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


class TokenRevokedError(JWTError):
    """The token is valid but on the cluster's revocation list (by ``jti``, or by
    ``sub`` for tokens issued before the time the entry gives)."""

    reason = "JWT: token revoked"


class KeysUnavailableError(JWTError):
    """The location's keys come from a JWKS URL that has not been fetched yet."""

    reason = "JWT: keys not available yet"


class KeyLoadError(FastgateError, ValueError):
    """A key could not be built from configuration (bad encoding, not a key, wrong type)."""
