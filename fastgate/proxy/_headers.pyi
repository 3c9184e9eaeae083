# Types of the proxy's compiled header helpers (fastgate/proxy/_headers.pyx) for type checkers.
from typing import Any

from fastgate._wire import ResponseHead
from fastgate.http.exchange import Exchange
from fastgate.proxy.request import Request

Headers = list[tuple[bytes, bytes]]

def bearer_of(headers: Headers) -> bytes | None: ...
def upstream_headers(client_headers: Headers, plan: tuple[Any, ...], drop: tuple[bytes, ...],
                     host: bytes, request: Any) -> tuple[Headers, list[str] | None]: ...
def upstream_request_head(req: Request, pp: Any, plan: tuple[Any, ...]
                          ) -> tuple[Headers, list[str] | None, bytes | None]: ...
def response_head(exchange: Exchange, respond: Any, req: Request, loc: Any, rhead: ResponseHead,
                  date: bytes, drop: tuple[bytes, ...], rules: tuple[Any, ...] | None,
                  head_only: bool) -> bytes: ...
