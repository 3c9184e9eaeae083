"""Remote key sets (``auth_jwt_key_request URL``): fetched by each worker in the
background, refreshed on the interval the provider's ``Cache-Control: max-age`` asks
for (within bounds; 5 minutes without one; ``auth_jwt_key_request_interval`` overrides),
fetched early — at most once per 30 s — when a token names a ``kid`` no key has, and
kept as they were when a refresh fails."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import TYPE_CHECKING, Any

from fastgate.errors import KeyLoadError
from fastgate.http.fetch import Fetch, FetchError, http_get
from fastgate.jwt import Key, keys_from_jwks

if TYPE_CHECKING:
    from fastgate._core import Verifier
    from fastgate.config.model import JwtCheck
    from fastgate.ops.logs import ErrorLog
    from fastgate.ops.stats import Stats

DEFAULT_INTERVAL = 300.0
MIN_INTERVAL = 30.0  # bounds on what Cache-Control may ask for
MAX_INTERVAL = 86400.0
EARLY_REFRESH_EVERY = 30.0
RETRY_FIRST = 1.0  # after a failure: 1 s, 2 s, 4 s... up to the interval


def max_age(headers: dict[str, str]) -> float | None:
    m = re.search(r"max-age\s*=\s*([0-9]+)", headers.get("cache-control", ""))
    return float(m.group(1)) if m else None


class RemoteJwks:
    """One URL's keys for one worker, and the verifiers that use them."""

    def __init__(self, url: str, interval: float | None, log: ErrorLog,
                 stats: Stats, get: Fetch | None = None) -> None:
        self.url = url
        # how the keys are fetched: an absolute URL by its own GET; a local URI (NGINX
        # Plus's form) by a subrequest through its location
        self.get: Fetch = get if get is not None else (lambda: http_get(url))
        self.override = interval
        self.log = log
        self.stats = stats
        self.keys: tuple[Key, ...] = ()
        self.fetched = False
        self.fetched_at = 0.0  # time.time() of the keys in use (fastgate_jwks_age_seconds)
        self.fetches = 0
        self._targets: list[tuple[Verifier, tuple[Key, ...]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_early = -EARLY_REFRESH_EVERY
        self._retry = RETRY_FIRST
        self._closed = False

    def add(self, verifier: Verifier, static: tuple[Key, ...]) -> None:
        self._targets.append((verifier, static))
        if self.fetched:
            verifier.set_keys(static + self.keys)

    def verifiers(self) -> list[Verifier]:
        return [v for v, _ in self._targets]

    def adopt(self, other: RemoteJwks) -> None:
        """After a reload: start from the keys the previous configuration had fetched."""
        if other.fetched:
            self._install(other.keys)
            self.fetched_at = other.fetched_at

    async def first_fetch(self, limit: float) -> None:
        if self.fetched:  # adopted: refresh on the usual schedule
            self._schedule(self.override if self.override is not None else DEFAULT_INTERVAL)
            return
        self._task = asyncio.get_running_loop().create_task(self._fetch())
        try:
            await asyncio.wait_for(asyncio.shield(self._task), limit)
        except TimeoutError:
            pass  # serving starts anyway: tokens needing these keys get 401 meanwhile

    def early_refresh(self) -> None:
        """A token named an unknown kid: fetch now, unless one did in the last 30 s."""
        now = time.monotonic()
        if now - self._last_early < EARLY_REFRESH_EVERY or self._closed:
            return
        if self._task is not None and not self._task.done():
            return
        self._last_early = now
        self._schedule(0.0)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def _schedule(self, delay: float) -> None:
        if self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, self._start_fetch)

    def _start_fetch(self) -> None:
        self._timer = None
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._fetch())

    def _install(self, keys: tuple[Key, ...]) -> None:
        self.keys = keys
        self.fetched = True
        for verifier, static in self._targets:
            verifier.set_keys(static + keys)

    async def _fetch(self) -> None:
        self.fetches += 1
        interval = self.override if self.override is not None else DEFAULT_INTERVAL
        try:
            status, headers, body = await self.get()
            if status != 200:
                raise FetchError(f"status {status}")
            try:
                keys = keys_from_jwks(json.loads(body))
            except (ValueError, RecursionError) as e:
                raise FetchError(f"not a JWKS document: {e}") from None
        except (FetchError, KeyLoadError) as e:
            self.stats.jwks_fetch(False)
            what = "the keys fetched before stay" if self.fetched else "no keys yet"
            self.log.error(f'JWT: fetching keys from "{self.url}" failed: {e}; {what}')
            self._schedule(min(self._retry, interval))
            self._retry = min(self._retry * 2, interval)
            return
        self.stats.jwks_fetch(True)
        self._retry = RETRY_FIRST
        self._install(keys)
        self.fetched_at = time.time()
        if self.override is None:
            age = max_age(headers)
            if age is not None:
                interval = min(max(age, MIN_INTERVAL), MAX_INTERVAL)
        self._schedule(interval)


def remote_sources(worker: Any) -> dict[str, RemoteJwks]:
    """Every ``auth_jwt_key_request`` URL of a worker's configuration, each with the
    verifiers that use it."""
    sources: dict[str, RemoteJwks] = {}
    seen: set[JwtCheck] = set()
    for server in worker.config.servers:
        for loc in [server.fallback, *server.locations.all()]:
            check = loc.jwt if loc is not None else None
            if check is None or check.key_request is None or check in seen:
                continue
            seen.add(check)
            url = check.key_request
            local = url.startswith("/")
            # a local URI belongs to its server: the same URI in two servers is two sources
            key = f"{id(server)} {url}" if local else url
            src = sources.get(key)
            if src is None:
                get = _local(worker, server, url) if local else None
                src = sources[key] = RemoteJwks(url, check.key_request_interval,
                                                worker.log, worker.stats, get)
            src.add(worker.verifiers[check], check.keys)
    return sources


def _local(worker: Any, server: Any, uri: str) -> Fetch:
    return lambda: worker.phases.subrequests.fetch(server, uri)
