"""The state of one request as it goes through the phases; variables read it."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from fastgate._wire import host_of
from fastgate.http.engine import RequestHead
from fastgate.http.uri import Target

if TYPE_CHECKING:
    from fastgate._core import Token
    from fastgate.config.model import Location, Server


class Request:
    """Attributes are what ``fastgate.variables`` getters read; headers as str pairs are
    made only if a variable asks for them."""

    __slots__ = (
        "head", "method", "target", "version", "uri", "args", "host", "scheme",
        "remote_addr", "remote_port", "server_addr", "server_port", "server", "location",
        "status", "start", "request_length", "body_bytes_sent", "bytes_sent",
        "upstream_addr", "upstream_status", "upstream_time", "proxy_host",
        "proxy_port", "connection_id", "connection_requests", "token", "captures", "memo",
        "_headers", "_request_id", "challenge", "redirected", "override",
        "limited", "limit_req_status", "limit_conn_status", "conn_slots",
    )

    def __init__(self, head: RequestHead, target: Target, conn: Any) -> None:
        self.head = head
        self.method = _METHODS.get(head.method) or head.method.decode("latin-1")
        self.target = head.target.decode("latin-1")
        self.version = head.version.decode("latin-1")
        self.uri = target.path
        self.args = target.args
        self.scheme = conn.scheme
        self.remote_addr = conn.remote_addr
        self.remote_port = conn.remote_port
        self.server_addr = conn.server_addr
        self.server_port = conn.server_port
        self.host = target.host or host_of(head.headers)
        self.server: Server | None = None
        self.location: Location | None = None
        self.status = 0
        self.start = time.time()
        self.request_length = 0
        self.body_bytes_sent = 0
        self.bytes_sent = 0
        self.upstream_addr = ""
        self.upstream_status = ""
        self.upstream_time = -1.0  # seconds to the upstream's response head; -1: none
        self.proxy_host = ""
        self.proxy_port = ""
        self.connection_id = conn.connection_id
        self.connection_requests = conn.requests
        self.token: Token | None = None
        self.captures: tuple[str, ...] = ()
        self.memo: dict[str, str] = {}
        self._headers: list[tuple[str, str]] | None = None
        self._request_id = ""
        # WWW-Authenticate for a 401 the access phase caused (None: it caused none)
        self.challenge: bytes | None = None
        self.redirected = False
        self.limited = False  # limit_req/limit_conn ran (once per request, as nginx)
        self.limit_req_status = ""
        self.limit_conn_status = ""
        self.conn_slots: list[tuple[Any, bytes]] | None = None  # limit_conn counts to release
        # the status an error_page imposes on whatever answers (None: the answer's own)
        self.override: int | None = None

    @property
    def headers(self) -> list[tuple[str, str]]:
        h = self._headers
        if h is None:
            h = self._headers = [(n.decode("latin-1").lower(), v.decode("latin-1"))
                                 for n, v in self.head.headers]
        return h

    @property
    def server_name(self) -> str:
        return self.server.name if self.server is not None else ""

    @property
    def request_id(self) -> str:
        if not self._request_id:
            self._request_id = os.urandom(16).hex()
        return self._request_id

    def header(self, lname: bytes) -> bytes | None:
        for n, v in self.head.headers:
            if n.lower() == lname:
                return v
        return None


_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}
