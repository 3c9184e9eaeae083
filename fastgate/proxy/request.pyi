# Types of the compiled request (fastgate/proxy/request.pyx) for type checkers.
from typing import Any

from fastgate._core import Token
from fastgate._wire import ConnectionInfo, RequestHead
from fastgate.http.buffered_body import BufferedBody

class Request:
    head: RequestHead
    method: str
    uri: str
    args: str
    args_found: bool
    uri_remade: bool
    host: str | None  # None: the Host is invalid (the request is refused with 400)
    scheme: str
    remote_addr: str
    remote_port: int
    server_addr: str
    server_port: int
    server: Any  # config.model.Server | None
    location: Any  # config.model.Location | None
    status: int
    start: float
    arrived: float
    request_length: int
    body_bytes_sent: int
    bytes_sent: int
    upstream_addr: str
    upstream_status: str
    upstream_headers: list[tuple[bytes, bytes]] | None
    sent_headers: list[tuple[bytes, bytes]] | None
    upstream_time: float
    upstream_response_time: float
    upstream_connect_time: float
    upstream_bytes_received: int
    upstream_bytes_sent: int
    body_buffer: bytes | BufferedBody | None
    upstream_tried: list[tuple[str, str, float, float, float, int, int]] | None
    upstream_target: bytes | None
    upstream_scheme: str | None
    proxy_host: str
    proxy_port: str
    connection_id: int
    connection_requests: int
    pipelined: bool
    connection: ConnectionInfo
    token: Token | None
    captures: tuple[str, ...]
    challenge: bytes | tuple[bytes, ...] | None  # more than one: each on its own line
    redirected: bool
    uri_changes: int
    rewritten: int
    in_task: bool
    limited: bool
    real_address: bool
    expect_trailers: bool
    completed: bool
    jwt_plus: bool
    access_code: int
    limit_req_status: str
    limit_conn_status: str
    conn_slots: list[tuple[Any, bytes]] | None
    override: int | None
    carried: list[tuple[bytes, bytes]] | None
    def __init__(self, head: RequestHead, target: tuple[str, str, str | None],
                 conn: Any) -> None: ...
    @property
    def target(self) -> str: ...
    @target.setter
    def target(self, value: str) -> None: ...
    @property
    def version(self) -> str: ...
    @property
    def memo(self) -> dict[Any, Any]: ...
    @property
    def variables(self) -> dict[str, str]: ...
    def share_variables(self, main: Request) -> None: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...
    @property
    def server_name(self) -> str: ...
    @property
    def request_id(self) -> str: ...
    def length(self) -> int: ...
    def header(self, lname: bytes) -> bytes | None: ...
    def sent_body(self, framed: int, payload: int) -> None: ...
    def discard_body(self) -> None: ...
    def expect_tested(self) -> None: ...
    def release_conn_slots(self) -> None: ...
