"""The access phase of the JWT module: ``auth_jwt`` takes the token the location names,
the worker's verifier for the location's ``JwtCheck`` verifies it, ``auth_jwt_require``
reads the variables it lists."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from fastgate._wire import field_value
from fastgate.cookie_header import cookie_count
from fastgate.errors import (
    AmbiguousTokenError,
    JWTError,
    KeysUnavailableError,
    TokenMissingError,
    TokenRevokedError,
    UnknownKeyError,
)
from fastgate.jwt import Token, Verifier
from fastgate.proxy._headers import bearer_of
from fastgate.proxy.jwt_phase import BearerCheck
from fastgate.proxy.steps import NEXT

if TYPE_CHECKING:
    from fastgate.config.model import JwtCheck, Location, Settings
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request
    from fastgate.proxy.runtime import Runtime
    from fastgate.proxy.steps import Fail, Outcome, Phase

# RFC 6750 section 3: the challenge of a 401, and its form when a token was presented
CHALLENGE = b'Bearer realm="fastgate"'
CHALLENGE_INVALID = b'Bearer realm="fastgate", error="invalid_token"'


def build_verifiers(checks: Iterable[JwtCheck]) -> dict[JwtCheck, Verifier]:
    """A worker's verifiers, one per ``JwtCheck`` of its configuration (each with its
    own token cache; a remote key set adds its keys when fetched)."""
    return {c: Verifier(c.keys, c.algorithm, c.leeway, c.cache_size, c.issuers or None,
                        c.audiences or None) for c in checks}


class AuthJwt:
    def __init__(self, worker: Runtime, fail: Fail) -> None:
        self.w = worker
        self.fail = fail
        self.verifiers = worker.verifiers

    def handler(self, loc: Location) -> Phase | None:
        """The location's token check: where it is the usual one (a bearer token in
        Authorization, nothing asked after the signature but what the verifier checks),
        its compiled form, which takes the Python path for anything but a token that
        passes; else the Python path itself."""
        if loc.jwt is None:
            return None
        s = loc.settings
        if (s.auth_jwt == "on" and not s.auth_jwt_revocation and s.auth_jwt_realm is None
                and s.auth_jwt_require is None):
            verifier = self.verifiers[loc.jwt]
            plain = _plain_401(s)
            return BearerCheck(verifier, self.w, s.auth_jwt_options, self.access, self.refused,
                               (CHALLENGE, CHALLENGE_INVALID) if plain else None,
                               not self.w.remote_of or verifier not in self.w.remote_of,
                               s.msie_padding)
        return self.access

    def access(self, conn: ClientSide, req: Request, loc: Location) -> Outcome:
        """NEXT when the request may go on; else the refusal (its reason logged and
        counted, the challenge of a 401 set) through ``error_page``."""
        s = loc.settings
        if req.method == "OPTIONS" and not s.auth_jwt_options:
            return NEXT  # CORS preflights pass, as the module does
        stats = self.w.stats
        try:
            # the usual source first, without a call
            token = (bearer_of(req.head.headers) if s.auth_jwt == "on"
                     else self.token_of(req, loc))
        except AmbiguousTokenError as e:
            self.w.log.info(e.reason, conn, req)
            stats.jwt(e.reason)
            req.challenge = (CHALLENGE_INVALID if s.auth_jwt_realm is None
                             else _challenge(req, s, True))
            return self.fail(conn, req, loc, e.status)
        if not token:
            err: JWTError = TokenMissingError()
            self.w.log.info(err.reason, conn, req)
            stats.jwt(err.reason)
            req.challenge = (CHALLENGE if s.auth_jwt_realm is None
                             else _challenge(req, s, False))
            return self.fail(conn, req, loc, 401)
        verifier = self.verifiers[loc.jwt]  # type: ignore[index]  # (handler: not None)
        hits = verifier.hits
        checked = verifier.check_now(token)  # (a refusal returned, not raised: cheaper)
        if type(checked) is not Token:
            return self.refused(conn, req, loc, verifier, checked, hits)
        req.token = checked
        hit = verifier.hits != hits
        if s.auth_jwt_revocation:
            denylist = self.w.denylist
            now = time.time()
            if not hit:  # once per token: how long the fleet's tokens live
                denylist.learn(req.token.payload, now, verifier.leeway)
            # after the signature: a forged token never gets this far
            if denylist and denylist.revoked(req.token.payload, now):
                revoked = TokenRevokedError()
                self.w.log.info(revoked.reason, conn, req)
                stats.cache(hit)
                stats.jwt(revoked.reason)
                req.challenge = (CHALLENGE_INVALID if s.auth_jwt_realm is None
                                 else _challenge(req, s, True))
                return self.fail(conn, req, loc, revoked.status)
        if s.auth_jwt_realm is not None:
            req.jwt_plus = True  # $jwt_* in NGINX Plus's encoding from now on
        req_ = s.auth_jwt_require
        if req_ is not None:
            for t in req_.values:
                v = t.render(req)
                if not v or v == "0":
                    self.w.log.info(f'JWT: requirement "{t.source}" not met', conn, req)
                    stats.cache(hit)
                    stats.jwt("JWT: requirement not met")
                    req.challenge = (CHALLENGE_INVALID if s.auth_jwt_realm is None
                             else _challenge(req, s, True))
                    return self.fail(conn, req, loc, req_.status)
        stats.verified(hit)
        return NEXT

    def refused(self, conn: ClientSide, req: Request, loc: Location, verifier: Verifier,
                checked: object, hits: int) -> Outcome:
        """The verifier refused the token (``checked``, its JWTError; ``hits``: its
        cache hits before): logged and counted, the challenge set, the refusal answered
        through ``error_page``. A key set fetched from a URL that does not know the
        token's key (or has none yet) is asked again early."""
        s = loc.settings
        refused: JWTError = checked  # type: ignore[assignment]
        remote = self.w.remote_of.get(verifier) if self.w.remote_of else None
        if remote is not None:
            if not remote.fetched and not verifier.keys:
                refused = KeysUnavailableError(remote.url)
            if isinstance(refused, (UnknownKeyError, KeysUnavailableError)):
                remote.early_refresh()
        req.challenge = (CHALLENGE_INVALID if s.auth_jwt_realm is None
                         else _challenge(req, s, True))
        log = self.w.log
        if log.verbose:  # (the line is not even made where nobody reads it)
            log.info(f"{refused.reason} ({refused.detail})" if refused.detail
                     else refused.reason, conn, req)
        stats = self.w.stats
        stats.jwt(refused.reason)
        stats.cache(verifier.hits != hits)
        return self.fail(conn, req, loc, refused.status)

    def token_of(self, req: Request, loc: Location) -> bytes | None:
        """The token the request presents, or None. AmbiguousTokenError when its header,
        cookie or argument is there twice (a second Authorization header never gets
        here: the HTTP layer answers 400)."""
        s = loc.settings
        if s.auth_jwt == "on":
            return bearer_of(req.head.headers)
        if s.auth_jwt_source is not None:
            if s.auth_jwt_source_var is not None and _given_twice(req, *s.auth_jwt_source_var):
                raise AmbiguousTokenError()
            value = s.auth_jwt_source.render(req)
            return value.encode("utf-8", "surrogateescape") if value else None
        return None

    def verify_early(self, req: Request, loc: Location) -> None:
        """Verify the token now, for a limit key that reads ``$jwt_*`` before the access
        phase; a refusal is left to the access phase, which logs it once."""
        if req.token is not None or loc.jwt is None:
            return
        try:
            token = self.token_of(req, loc)
            if token:
                verifier = self.verifiers[loc.jwt]
                hits = verifier.hits
                now = time.time()
                req.token = verifier.verify(token, now)
                req.jwt_plus = loc.settings.auth_jwt_realm is not None
                if verifier.hits == hits and loc.settings.auth_jwt_revocation:
                    # the first sight of this token (the access phase's is a cache hit)
                    self.w.denylist.learn(req.token.payload, now, verifier.leeway)
        except JWTError:
            pass


def _plain_401(s: Settings) -> bool:
    """The location's 401 is nginx's page as it is: no ``error_page`` (for any status:
    one may send a 401 elsewhere), no header, cookie, charset, trailer or filter of its
    own, no ``auth_delay`` before it. The compiled check answers such a 401 itself."""
    return (not s.error_page and not s.add_header and s.expires is None
            and not s.sets_userid and s.charset is None and not s.add_trailer
            and not s.filters_output and not s.auth_delay)


def _challenge(req: Request, s: Settings, invalid: bool) -> bytes:
    """The 401's challenge: fastgate's realm, or the realm NGINX Plus's form names."""
    if s.auth_jwt_realm is None:
        return CHALLENGE_INVALID if invalid else CHALLENGE
    realm = s.auth_jwt_realm.render(req).replace("\\", "\\\\").replace('"', '\\"')
    challenge = f'Bearer realm="{realm}"'
    if invalid:
        challenge += ', error="invalid_token"'
    # a realm from a variable never carries a control byte into the header
    raw = field_value(challenge)
    return raw if raw is not None else (CHALLENGE_INVALID if invalid else CHALLENGE)


def _given_twice(req: Request, kind: str, name: str) -> bool:
    """Whether the header, cookie or query argument ``name`` occurs more than once."""
    seen = 0
    if kind == "http":
        wanted = name.replace("_", "-")
        for n, _ in req.headers:
            if n == wanted:
                seen += 1
    elif kind == "cookie":
        seen = cookie_count(req.headers, name)
    elif req.args:
        for part in req.args.split("&"):
            if part.partition("=")[0].lower() == name:
                seen += 1
    return seen > 1
