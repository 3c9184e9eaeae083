# Types of the compiled upstream pools (fastgate/proxy/upstream.pyx).
import ssl
from collections import deque
from typing import Any

from fastgate.config.model import ProxyBind, Upstream, UpstreamServer, UpstreamTls
from fastgate.http.client import HttpClientConnection
from fastgate.http.engine import ResponseHead

Local = tuple[str, int, bool]
LOCAL: str
NEXT_CONDITION: dict[str, str]
NEXT_STATUSES: frozenset[int]
CLIENT_GONE: str

class UpstreamConnection(HttpClientConnection):
    peer: Peer
    exchanges_left: int
    retire_at: float
    deadline: float
    busy: bool
    def __init__(self, peer: Peer) -> None: ...
    def taken(self) -> None: ...
    def free(self) -> None: ...
    def park(self, timeout: float) -> None: ...

class Peer:
    server: UpstreamServer
    address: str
    group: UpstreamGroup
    current: int
    fails: int
    first_fail: float
    down_until: float
    busy: int
    max_conns: int
    idle: deque[UpstreamConnection]
    def __init__(self, server: UpstreamServer, group: UpstreamGroup) -> None: ...
    def available(self, now: float) -> bool: ...
    def failed(self, now: float) -> bool: ...
    def succeeded(self) -> None: ...
    def take_idle(self) -> UpstreamConnection | None: ...
    async def connect(self, timeout: float, local: Local | None = None,
                      keepalive: bool = False) -> tuple[UpstreamConnection, bool]: ...
    def release(self, conn: UpstreamConnection, head: ResponseHead) -> None: ...
    def discard(self, conn: UpstreamConnection) -> None: ...
    def expire_idle(self, now: float) -> None: ...
    def close_idle(self) -> None: ...

class UpstreamGroup:
    upstream: Upstream
    engine_name: str
    tls: ssl.SSLContext | None
    tls_name: str
    primary: list[Peer]
    backup: list[Peer]
    def __init__(self, upstream: Upstream, engine_name: str,
                 tls: UpstreamTls | None = None) -> None: ...
    def pick(self, now: float, exclude: set[Peer] | frozenset[Peer],
             req: Any = None) -> Peer | None: ...
    @property
    def peers(self) -> list[Peer]: ...
    def close(self) -> None: ...

def build_groups(upstreams: dict[str, Upstream], engine: str,
                 tls_pools: dict[str, tuple[str, UpstreamTls]] | None = None,
                 ) -> dict[str, UpstreamGroup]: ...
def local_address(bind: ProxyBind | None, req: Any, log: Any, conn: Any) -> Local | None: ...
