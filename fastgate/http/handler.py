"""The contract between a client connection and what serves its requests: the only
way the HTTP layer reaches upward. ``ClientConnection`` is built from these and plain
values; it never sees the worker, the configuration or the proxy.

- ``RequestHandler``: one per listening address; receives each parsed request head, and
  the requests the HTTP layer refuses itself (so they are answered and logged as nginx
  does), and the crashes nothing nearer caught.
- ``ConnectionObserver``: one per worker; admits and counts connections, knows
  whether the worker is stopping, and asks client certificates' OCSP status.
- ``ConnectionPolicy``: the limits a connection keeps (the address's default server's
  settings satisfy it); ``RequestPolicy``: how it goes on after a request, as the
  location that answered it says (its ``conn_policy``).
- ``ClientSide``: what the handler may use of the connection a request came on — facts
  about it, the request body, the ``Exchange`` it answers through, and the request
  cycle's ends. ``ClientConnection`` satisfies it; the layers above are typed against
  it, so ``mypy`` refuses anything else (an engine, a transport, a write gate).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from fastgate._wire import ConnectionInfo
from fastgate.http.engine import ProtocolError, RequestHead
from fastgate.http.exchange import Exchange
from fastgate.http.flow import BodyBuffer
from fastgate.openssl import OcspPolicy

# the connection type (``fastgate.http.server.ClientConnection``), a parameter so that
# this contract does not import the module that uses it
C = TypeVar("C", contravariant=True)


class RequestHandler(Protocol[C]):
    def on_request(self, conn: C, head: RequestHead) -> None:
        """A request head has arrived; its body (if any) follows on ``conn.body``."""

    def on_refused(self, conn: C, error: ProtocolError) -> None:
        """Answer a request the HTTP layer could not parse, then end the connection
        (``finish``, or ``close_after_response`` before an answer that completes)."""

    def on_header_timeout(self, conn: C) -> None:
        """A request head never completed (closed without an answer, as nginx): log it."""

    def on_broken_header(self, conn: C, message: str) -> None:
        """A ``proxy_protocol`` address's connection did not start with a PROXY protocol
        header: log it (the connection is closed, as nginx)."""

    def on_crash(self, conn: C, error: Exception) -> None:
        """An unexpected error under the engine's callbacks: log it (the connection is
        cut by the caller)."""


class ConnectionObserver(Protocol[C]):
    @property
    def stopping(self) -> bool:
        """A graceful stop is under way: connections close after their response."""

    def admit(self) -> bool:
        """Whether one more connection may be served (``worker_connections``)."""

    def next_connection_id(self) -> int: ...

    def opened(self, conn: C) -> None: ...

    def closed(self, conn: C) -> None: ...

    def idle(self, delta: int) -> None:
        """Connections between requests went up or down by ``delta``."""

    def certificate_status(self, conn: C, policy: OcspPolicy, chain: list[bytes]
                           ) -> Coroutine[Any, Any, str]:
        """``ssl_ocsp``: the status of the verified client certificate (``chain``: the
        chain it was verified with, DER, itself first) — "" when
        good, else nginx's words for what is wrong (a failure to ask is logged)."""


class RequestPolicy(Protocol):
    """What nginx reads from the location that answered a request (ngx_http_core's
    loc conf of r): whether the connection carries another, how long it then waits,
    how it closes."""

    @property
    def keepalive_timeout(self) -> float: ...

    @property
    def keepalive_header(self) -> int:
        """The ``Keep-Alive: timeout=N`` a keep-alive response names (0: none)."""

    @property
    def keepalive_requests(self) -> int: ...

    @property
    def keepalive_time(self) -> float: ...

    @property
    def lingering_close(self) -> str: ...

    @property
    def lingering_time(self) -> float: ...

    @property
    def lingering_timeout(self) -> float: ...

    @property
    def reset_timedout_connection(self) -> bool:
        """A connection closed for a timeout is reset (RST), not closed."""


class ConnectionPolicy(RequestPolicy, Protocol):
    """The default server's settings: its own request policy too (HTTP/2's idle
    timeout, a request refused before any server is known)."""

    @property
    def conn_policy(self) -> RequestPolicy:
        """The address's default server's, until a request's location says otherwise."""

    @property
    def large_client_header_buffers(self) -> tuple[int, int]: ...

    @property
    def client_header_timeout(self) -> float: ...


class ClientSide(Protocol):
    # facts about the connection (its addresses as accepted; ``info`` once known)
    @property
    def info(self) -> ConnectionInfo | None: ...

    @property
    def remote_addr(self) -> str: ...

    @property
    def connection_id(self) -> int: ...

    @property
    def requests(self) -> int:
        """Requests made on it so far ($connection_requests)."""

    @property
    def pipelined(self) -> bool:
        """The request came in bytes read with an earlier one ($pipe)."""

    @property
    def closed(self) -> bool: ...

    # the request in progress: its body, and how it is answered
    @property
    def body(self) -> BodyBuffer | None: ...

    @property
    def exchange(self) -> Exchange | None: ...

    def lost(self) -> asyncio.Future[None]:
        """Done when the connection is lost (a task stops waiting for a gone client)."""

    def abort(self, reset: bool = False) -> None:
        """Cut the connection (``reset``: with a TCP reset, whatever was sent)."""

    def close_after_response(self) -> None: ...

    @property
    def policy(self) -> RequestPolicy | None:
        """The policy the request in progress follows (identity tells a change)."""

    def located(self, policy: RequestPolicy, again: bool = False) -> None:
        """The request's server or location is known: its keepalive_* and lingering_*
        apply (nginx reads them from the request's location); ``again``: a location
        after an internal redirect, which can end the connection but not undo that."""

    def promise(self, paths: tuple[bytes, ...], preload: bool,
                warn: Callable[[bytes], None]) -> None:
        """``http2_push``: the URIs the answer pushes, and whether its ``Link``
        preload headers do too (``warn`` is told of a URI that is not absolute); only an
        HTTP/2 stream's connection pushes, the others ignore it."""

    def request_done(self) -> None:
        """The response is written: the connection closes or waits for the next one."""

    def finish(self) -> None:
        """Close after the last response (lingering while the client may still send)."""

    def retire(self) -> None:
        """Close after what has been written, and serve nothing more."""
