"""Names a ``proxy_pass`` with variables reaches, resolved by the configured ``resolver``
(nginx's resolver): asked asynchronously through dnspython's asyncio resolver — never the
system's, never blocking the event loop — and kept for the answer's TTL, or ``valid=``.
One question is in flight per name however many requests wait on it; a name that does not
resolve is remembered as such for ``valid=`` or 30 s (as nginx keeps an error), so a
flood of requests for it does not become a flood of queries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from fastgate.config.model import Resolver
from fastgate.errors import FastgateError

NEGATIVE_TTL = 30.0  # seconds a failed name is remembered (without valid=)
_CACHED = 10000  # names kept; past it the cache starts over


class ResolveError(FastgateError):
    """A name did not resolve; ``reason`` is nginx's "(N: text)"."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name} could not be resolved ({reason})")
        self.reason = reason


class Names:
    """The names of one ``resolver`` configuration, for one worker."""

    def __init__(self, config: Resolver) -> None:
        self.config = config
        r = dns.asyncresolver.Resolver(configure=False)
        r.nameservers = [dns.nameserver.Do53Nameserver(host, port)
                         for host, port in config.addresses]
        r.cache = None  # the cache is ours: TTL or valid=, and failures too
        self._resolver = r
        self._cache: dict[str, tuple[float, tuple[str, ...] | ResolveError]] = {}
        self._pending: dict[str, asyncio.Future[tuple[str, ...]]] = {}
        self.queries = 0  # questions sent (A and AAAA count one each)

    async def resolve(self, name: str, timeout: float) -> tuple[str, ...]:
        """The name's addresses (IPv4 first); ResolveError if it has none."""
        name = name.lower().rstrip(".")
        hit = self._cache.get(name)
        if hit is not None and hit[0] > time.monotonic():
            if isinstance(hit[1], ResolveError):
                raise hit[1]
            return hit[1]
        pending = self._pending.get(name)
        if pending is None:
            pending = asyncio.ensure_future(self._ask(name, timeout))
            self._pending[name] = pending
            pending.add_done_callback(lambda _: self._pending.pop(name, None))
        # shielded: a request that goes away does not cancel the others' question
        return await asyncio.shield(pending)

    async def _ask(self, name: str, timeout: float) -> tuple[str, ...]:
        kinds = ("A", "AAAA") if self.config.ipv6 else ("A",)
        self.queries += len(kinds)
        answers = await asyncio.gather(*(self._one(name, k, timeout) for k in kinds),
                                       return_exceptions=True)
        addresses: list[str] = []
        ttl: float | None = None
        error: ResolveError | None = None
        for answer in answers:
            if isinstance(answer, ResolveError):
                error = error or answer
            elif isinstance(answer, BaseException):
                error = error or ResolveError(name, f"2: Server failure ({answer})")
            elif answer[0]:
                addresses.extend(answer[0])
                ttl = answer[1] if ttl is None else min(ttl, answer[1])
        now = time.monotonic()
        if len(self._cache) >= _CACHED:
            self._cache.clear()
        if not addresses:
            error = error or ResolveError(name, "3: Host not found")
            keep = self.config.valid if self.config.valid is not None else NEGATIVE_TTL
            self._cache[name] = (now + keep, error)
            raise error
        result = tuple(addresses)
        keep = self.config.valid if self.config.valid is not None else float(ttl or 0)
        self._cache[name] = (now + keep, result)
        return result

    async def reverse(self, address: str, timeout: float) -> str:
        """The name a PTR record gives ``address`` (the mail block's SMTP clients, not
        cached: each session asks, as nginx's resolver does for addresses); ResolveError
        when there is none."""
        self.queries += 1
        answer = await _asked(address, self._resolver.resolve_address(
            address, lifetime=timeout, raise_on_no_answer=False))
        rrset = answer.rrset
        if rrset is None or not len(rrset):
            raise ResolveError(address, "3: Host not found")
        return str(next(iter(rrset)).to_text()).rstrip(".")

    async def _one(self, name: str, kind: str, timeout: float) -> tuple[list[str], float]:
        answer = await _asked(name, self._resolver.resolve(
            name, kind, lifetime=timeout, search=False, raise_on_no_answer=False))
        rrset = answer.rrset
        if rrset is None:
            return [], 0.0
        return [str(r.address) for r in rrset if hasattr(r, "address")], float(rrset.ttl)


async def _asked(name: str, question: Awaitable[dns.resolver.Answer]) -> dns.resolver.Answer:
    """The answer, or the ResolveError nginx's resolver would give (its codes)."""
    try:
        return await question
    except dns.resolver.NXDOMAIN:
        raise ResolveError(name, "3: Host not found") from None
    except dns.exception.Timeout:
        raise ResolveError(name, "110: Operation timed out") from None
    except dns.resolver.NoNameservers:
        raise ResolveError(name, "2: Server failure") from None
    except dns.exception.DNSException as e:
        raise ResolveError(name, f"2: Server failure ({e})") from None


__all__ = ["Names", "ResolveError"]
