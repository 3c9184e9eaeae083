"""The revocation list a worker checks verified tokens against (``auth_jwt_revocation``):
its own copy of the one in the cluster store, which ``fastgate.ops.cluster`` keeps
current. Reading it never waits on the store.

A token is revoked when its ``jti`` is listed, or its ``sub`` is listed with a time
and the token was issued before it (``iat`` earlier; a token without a numeric ``iat``
cannot show it was issued after, so it is refused too). ``iat`` counts whole seconds:
a token issued in the second of the revocation is refused as well.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, TypeGuard

from fastgate.errors import FastgateError

JTI, SUB = "jti", "sub"
# what a token without exp lives, for the fleet's longest lifetime: a revocation that
# can match one never expires by default (a hundred years is "never" in JSON)
FOREVER = 100 * 365 * 86400.0


class EntryError(FastgateError, ValueError):
    """An entry from the store that is not one (it is skipped and counted)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One revocation: a ``jti``, or a ``sub`` with the time before which its tokens
    were issued; kept until ``until`` (seconds since the epoch)."""

    kind: str
    id: str
    until: float
    before: float = 0.0  # sub only

    def encode(self) -> str:
        fields: dict[str, Any] = {"kind": self.kind, "id": self.id, "until": self.until}
        if self.kind == SUB:
            fields["before"] = self.before
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | bytes) -> Entry:
        try:
            fields = json.loads(raw)
        except ValueError as e:
            raise EntryError(f"not JSON: {e}") from None
        if not isinstance(fields, dict):
            raise EntryError("not an object")
        kind, ident, until = fields.get("kind"), fields.get("id"), fields.get("until")
        before = fields.get("before", 0.0)
        if kind not in (JTI, SUB) or not isinstance(ident, str) or not ident:
            raise EntryError("no kind or id")
        if not _finite(until) or not _finite(before) or (kind == SUB and "before" not in fields):
            raise EntryError("bad times")
        return cls(kind, ident, float(until), float(before))


def _finite(value: object) -> TypeGuard[float]:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _text(value: object) -> str | None:
    """A claim as the store names it: a string as it is, a number as JSON writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json.dumps(value)
    return None


class Denylist:
    """jti -> until, and sub -> (before, until). Empty, it costs a request one test."""

    __slots__ = ("jti", "sub", "longest")

    def __init__(self) -> None:
        self.jti: dict[str, float] = {}
        self.sub: dict[str, tuple[float, float]] = {}
        # the longest a token this worker accepted stays valid, from its issue (or from
        # when it was seen, without iat): how long a revocation must last by default
        self.longest = 0.0

    def __bool__(self) -> bool:
        return bool(self.jti) or bool(self.sub)

    def revoked(self, payload: dict[str, Any], now: float) -> bool:
        if self.jti:
            jti = _text(payload.get("jti"))
            if jti is not None and self.jti.get(jti, 0.0) > now:
                return True
        if self.sub:
            sub = _text(payload.get("sub"))
            entry = self.sub.get(sub) if sub is not None else None
            if entry is not None and entry[1] > now:
                iat = payload.get("iat")
                return not _finite(iat) or iat < entry[0]
        return False

    def learn(self, payload: dict[str, Any], now: float, leeway: float) -> None:
        """A token accepted: how long tokens of this fleet live, as far as this one
        tells (its ``exp`` and leeway from its ``iat``, or from now)."""
        exp = payload.get("exp")
        if not _finite(exp):
            self.longest = FOREVER
            return
        iat = payload.get("iat")
        start = iat if _finite(iat) and iat <= now else now
        life = min(exp + leeway - start, FOREVER)
        if life > self.longest:
            self.longest = life

    def add(self, entry: Entry) -> None:
        """Entries only widen: a later one for the same id keeps the later ``until`` and
        ``before`` of the two (a revocation is never undone by an older message)."""
        if entry.kind == JTI:
            self.jti[entry.id] = max(entry.until, self.jti.get(entry.id, 0.0))
        else:
            before, until = self.sub.get(entry.id, (0.0, 0.0))
            self.sub[entry.id] = (max(before, entry.before), max(until, entry.until))

    def merge(self, entries: list[Entry], now: float) -> None:
        """The store's list, over this one: an entry this copy holds and the store no
        longer does (a store restarted without its data) stays until it expires, so a
        revocation is never lost by a reload."""
        for e in entries:
            if e.until > now:
                self.add(e)
        self.prune(now)

    def adopt(self, other: Denylist) -> None:
        """After a reload: start from the list the previous configuration's worker held."""
        self.jti.update(other.jti)
        self.sub.update(other.sub)

    def prune(self, now: float) -> None:
        self.jti = {k: u for k, u in self.jti.items() if u > now}
        self.sub = {k: v for k, v in self.sub.items() if v[1] > now}
