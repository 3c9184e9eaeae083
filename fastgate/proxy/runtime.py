"""What the phases need from the process that runs them: the ``Runtime`` protocol.

The proxy layer defines it and the worker (``fastgate.ops.worker.Worker``) implements
it, so the phases and the callback exchange reach the logs, counters, limit zones and
upstream groups without importing the layer above them. The log, counters and zones
are the worker's own objects; their methods are listed where the proxy calls them.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from fastgate.config.model import Config, JwtCheck
from fastgate.http.handler import ClientSide
from fastgate.jwt import Verifier
from fastgate.proxy.request import Request
from fastgate.proxy.revocation import Denylist
from fastgate.proxy.upstream import UpstreamGroup


class LimitStore(Protocol):
    """One limit zone's table, shared by the workers (``fastgate.ops.limit_table``)."""

    def request(self, key: bytes, now_ms: int, rate: int, burst: int, commit: bool) -> int:
        """limit_req: the excess after this request, in milli-requests; over the burst,
        -1 - the excess it would have had; -1 when the table has no room."""

    def acquire(self, key: bytes, limit: int) -> bool:
        """limit_conn: one more request in progress for ``key``, if under ``limit``."""

    def release(self, key: bytes) -> None: ...


class ZoneTables(Protocol):
    """The limit zones' shared tables by name, and beside each its refusal counters
    (one per worker slot)."""

    @property
    def rejected(self) -> dict[str, memoryview[float]]: ...

    def __getitem__(self, name: str, /) -> LimitStore: ...


class Runtime(Protocol):
    """Read-only members: the worker owns them; the proxy calls their methods."""

    @property
    def config(self) -> Config: ...

    # ErrorLog: write(level, message, conn, req), error/warn/info/notice(message, conn, req)
    @property
    def log(self) -> Any: ...

    # Stats: request, upstream_error, unsafe_header, limit..., jwt counters
    @property
    def stats(self) -> Any: ...

    @property
    def zones(self) -> ZoneTables: ...

    # upstream pools by name; a proxy_pass with variables adds pools as it resolves
    @property
    def groups(self) -> dict[str, UpstreamGroup]: ...

    @property
    def engine_name(self) -> str: ...

    # the number of a connection (its log's "*N"), for a request the worker makes itself
    def next_connection_id(self) -> int: ...

    # a Verifier per JwtCheck of the configuration (their caches live as long as it)
    @property
    def verifiers(self) -> dict[JwtCheck, Verifier]: ...

    # the cluster's revocation list, this worker's copy (empty without fastgate_cluster)
    @property
    def denylist(self) -> Denylist: ...

    # verifier → the remote JWKS it takes keys from (for "keys unavailable" answers)
    @property
    def remote_of(self) -> dict[Any, Any]: ...

    # callback exchanges in flight: the worker's clock checks their deadlines
    @property
    def exchanges(self) -> set[Any]: ...

    @property
    def http_date(self) -> Callable[[], bytes]: ...

    def stub_status(self) -> bytes:
        """nginx's stub_status page, now."""

    def status_page(self) -> bytes:
        """The ``fastgate_status`` exposition, now."""

    def complete(self, conn: ClientSide, req: Request, started: float) -> None:
        """The response is written (or abandoned): count, log, free the connection."""

    def failed(self, conn: ClientSide, req: Request, error: Exception,
               started: float, responded: bool) -> None:
        """An unexpected error in a callback: it costs this request only."""

    def spawn(self, conn: ClientSide, req: Request,
              coro: Coroutine[Any, Any, object], started: float) -> None:
        """Run the rest of the request as a task; ``complete`` follows it."""
