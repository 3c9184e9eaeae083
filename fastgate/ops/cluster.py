"""The cluster store (``fastgate_cluster``, Redis or Valkey, through redis-py's asyncio
client): what the gateways of a fleet share.

Revocation: the list lives in two hashes (``fastgate:revoked:jti``, ``...:sub``; each
field an ``Entry`` as JSON) with a version number bumped by every write, and every write
is published on ``fastgate:revocations``. Each worker keeps a copy (``Denylist``): it
subscribes, then loads the whole list (subscribing first, nothing written in between is
missed), applies what is published as it comes, and asks the version every
``PROBE_EVERY`` seconds — that probe is also how an outage is noticed, and a version it
has not seen makes it load the list again. With the probe it tells the store the longest
lifetime of the tokens it accepted (``LIFETIME``, only ever raised), which is how long
``fastgate revoke`` keeps an entry by default. Requests only ever read the copy: with the
store out of reach the copy stays as it was (said once in the error log and in
``fastgate_status``) and the link retries by itself.

Limit zones with ``sync``: the link runs their exchange (``cluster_limits.LimitSync``)
every ``SYNC_EVERY`` seconds on ``fastgate:limits``, beside the revocations.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastgate.errors import FastgateError
from fastgate.ops.cluster_limits import SYNC_EVERY, LimitSync
from fastgate.proxy.revocation import JTI, SUB, Denylist, Entry, EntryError

if TYPE_CHECKING:
    from fastgate.config.model import Cluster
    from fastgate.ops.logs import ErrorLog
    from fastgate.ops.stats import Stats

PREFIX = "fastgate:"
CHANNEL = PREFIX + "revocations"
LIMITS_CHANNEL = PREFIX + "limits"
HASHES = {JTI: PREFIX + "revoked:jti", SUB: PREFIX + "revoked:sub"}
VERSION = PREFIX + "revoked:version"
# the longest lifetime of the tokens the fleet accepts (seconds): fastgate revoke's
# default for how long an entry is kept
LIFETIME = PREFIX + "revoked:lifetime"
_RAISE = ("local v = tonumber(redis.call('GET', KEYS[1]) or '0') "
          "if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end return 1")
PROBE_EVERY = 0.5  # seconds between version probes (the copy's worst staleness, and
# how soon an outage is seen)
RETRY_FIRST, RETRY_MAX = 0.2, 2.0  # reconnect backoff, seconds


class StoreError(FastgateError):
    """The cluster store could not be reached or answered wrongly; ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def client(cluster: Cluster) -> Any:
    """A redis-py asyncio client for the store, failing fast: its own retries would
    only hide an outage from the link, which retries by itself."""
    from redis.asyncio import from_url
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    tls = {"ssl_ca_certs": cluster.ca} if cluster.ca is not None else {}
    return from_url(cluster.url, socket_timeout=cluster.timeout,
                    socket_connect_timeout=cluster.timeout, retry=Retry(NoBackoff(), 0),
                    decode_responses=False, **tls)


def _reason(e: BaseException) -> str:
    if isinstance(e, (TimeoutError, asyncio.TimeoutError)):
        return "timed out"
    return (str(e) or type(e).__name__).rstrip(".")


def _store_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError, asyncio.TimeoutError, EntryError)


class ClusterLink:
    """One worker's link to the store: its ``Denylist`` loaded and kept current, and its
    part in the synced limit zones' exchange (``limits``)."""

    def __init__(self, cluster: Cluster, denylist: Denylist, log: ErrorLog,
                 stats: Stats, limits: LimitSync | None = None) -> None:
        self.cluster = cluster
        self.denylist = denylist
        self.limits = limits if limits else None
        self.log = log
        self.stats = stats
        self.up = False
        self.heard = 0.0  # time.monotonic() of the store's last answer
        self.version: bytes | None = None
        self.told_longest = 0.0  # the lifetime this worker last told the store of
        self._down_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._loaded = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def first_load(self) -> None:
        """Wait (at most the store's timeout) for the list to be loaded, so that a worker
        does not start serving with an empty copy when the store is there."""
        try:
            await asyncio.wait_for(self._loaded.wait(), self.cluster.timeout)
        except TimeoutError:
            pass  # out of reach: the link says so and keeps trying

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.limits is not None:
            self.limits.release(time.time())

    def figures(self) -> dict[str, float]:
        """For ``fastgate_status``."""
        lag = time.monotonic() - self.heard if self.heard else -1.0
        return {"up": float(self.up), "lag": lag, "jti": len(self.denylist.jti),
                "sub": len(self.denylist.sub)}

    async def _run(self) -> None:
        errors = _store_errors()
        wait = RETRY_FIRST
        while True:
            store = client(self.cluster)
            pubsub = store.pubsub()
            try:
                await pubsub.subscribe(CHANNEL, *([LIMITS_CHANNEL] if self.limits else []))
                await self._load(store)
                if self.limits is not None:
                    self.limits.forget()
                self.told_longest = 0.0  # a store restarted empty has lost it: tell again
                self._reached()
                wait = RETRY_FIRST
                await self._follow(store, pubsub)
            except asyncio.CancelledError:
                raise
            except errors as e:
                self._failed(_reason(e))
            except Exception as e:  # noqa: BLE001 — a bug here must not end the link
                self._failed(f"{type(e).__name__}: {e}")
            finally:
                await _closed(pubsub, store)
            await asyncio.sleep(wait)
            wait = min(wait * 2, RETRY_MAX)

    async def _follow(self, store: Any, pubsub: Any) -> None:
        limits = self.limits
        next_probe = time.monotonic() + PROBE_EVERY
        next_sync = time.monotonic() if limits is not None else float("inf")
        limits_channel = LIMITS_CHANNEL.encode()
        while True:
            wake = min(next_probe, next_sync)
            message = await pubsub.get_message(ignore_subscribe_messages=True,
                                               timeout=max(0.0, wake - time.monotonic()))
            if message is not None and message.get("type") == "message":
                if limits is not None and message.get("channel") == limits_channel:
                    if not limits.receive(message["data"], time.time()):
                        self.stats.cluster_error()
                else:
                    self._apply(message["data"])
            if limits is not None and time.monotonic() >= next_sync:
                outgoing = limits.outgoing(time.time())
                if outgoing:
                    async with store.pipeline(transaction=False) as pipe:
                        for payload in outgoing:
                            pipe.publish(LIMITS_CHANNEL, payload)
                        await pipe.execute()
                next_sync = time.monotonic() + SYNC_EVERY
            if time.monotonic() >= next_probe:
                longest = self.denylist.longest
                if longest > self.told_longest:
                    await store.eval(_RAISE, 1, LIFETIME, repr(longest))
                    self.told_longest = longest
                version = await store.get(VERSION)
                self.heard = time.monotonic()
                if version != self.version:
                    await self._load(store)
                next_probe = self.heard + PROBE_EVERY

    async def _load(self, store: Any) -> None:
        async with store.pipeline(transaction=True) as pipe:
            pipe.get(VERSION)
            pipe.hvals(HASHES[JTI])
            pipe.hvals(HASHES[SUB])
            version, jtis, subs = await pipe.execute()
        entries = []
        for raw in list(jtis) + list(subs):
            try:
                entries.append(Entry.decode(raw))
            except EntryError as e:
                self.stats.cluster_error()
                self.log.warn(f"cluster store {self.cluster.shown}: revocation entry "
                              f"skipped ({e})", None)
        self.denylist.merge(entries, time.time())
        self.version = version
        self.heard = time.monotonic()
        self._loaded.set()

    def _apply(self, raw: bytes) -> None:
        try:
            entry = Entry.decode(raw)
        except EntryError as e:
            self.stats.cluster_error()
            self.log.warn(f"cluster store {self.cluster.shown}: revocation message "
                          f"skipped ({e})", None)
            return
        if entry.until > time.time():
            self.denylist.add(entry)

    def _reached(self) -> None:
        self.up = True
        if self._down_since is not None:
            self.log.notice(f"cluster store {self.cluster.shown} reached again after "
                            f"{time.monotonic() - self._down_since:.1f}s", None)
            self._down_since = None

    def _failed(self, reason: str) -> None:
        self.stats.cluster_error()
        self.up = False
        if self._down_since is None:  # once per outage
            self._down_since = time.monotonic()
            d = self.denylist
            limits = ("; synced limit zones count this instance's requests only"
                      if self.limits is not None else "")
            self.log.warn(f"cluster store {self.cluster.shown} out of reach ({reason}): "
                          f"revocation keeps its last known list ({len(d.jti)} jti, "
                          f"{len(d.sub)} sub) until it is back{limits}", None)


async def _closed(pubsub: Any, store: Any) -> None:
    for close in (pubsub.aclose, store.aclose):
        try:
            await asyncio.wait_for(close(), 1.0)
        except Exception:  # noqa: BLE001, S110 — closing what already failed
            pass


@asynccontextmanager
async def _session(cluster: Cluster) -> AsyncIterator[Any]:
    """A client for one command line's exchange with the store, closed after; what goes
    wrong with the store is a StoreError that names it."""
    store = client(cluster)
    try:
        yield store
    except _store_errors() as e:
        raise StoreError(f"cluster store {cluster.shown}: {_reason(e)}") from None
    finally:
        try:
            await asyncio.wait_for(store.aclose(), 1.0)
        except Exception:  # noqa: BLE001, S110 — closing what may have failed
            pass


async def longest_lifetime(cluster: Cluster) -> float | None:
    """The longest lifetime of a token the fleet has accepted (seconds), None when no
    gateway has told yet. StoreError when the store cannot be reached."""
    async with _session(cluster) as store:
        raw = await store.get(LIFETIME)
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


async def revoke(cluster: Cluster, entry: Entry) -> int:
    """Write ``entry`` to the store, publish it, and drop the entries that have expired;
    the number of gateway workers that heard the message. StoreError when the store
    cannot be reached."""
    async with _session(cluster) as store:
        now = time.time()
        key = HASHES[entry.kind]
        old = await store.hget(key, entry.id)
        if old is not None:  # entries only widen, as the gateways apply them
            try:
                prev = Entry.decode(old)
                entry = Entry(entry.kind, entry.id, max(entry.until, prev.until),
                              max(entry.before, prev.before))
            except EntryError:
                pass
        stale = []
        for name in HASHES.values():
            for field, raw in (await store.hgetall(name)).items():
                try:
                    if Entry.decode(raw).until <= now:
                        stale.append((name, field))
                except EntryError:
                    stale.append((name, field))
        async with store.pipeline(transaction=True) as pipe:
            for name, field in stale:
                pipe.hdel(name, field)
            pipe.hset(key, entry.id, entry.encode())
            pipe.incr(VERSION)
            pipe.publish(CHANNEL, entry.encode())
            results = await pipe.execute()
        return int(results[-1])
