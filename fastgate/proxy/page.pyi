# Types of the compiled page writer (fastgate/proxy/page.pyx) for type checkers.
from typing import Any

from fastgate.http.engine import Headers
from fastgate.http.exchange import Exchange
from fastgate.proxy.request import Request

def may_chunk(req: Request, settings: Any) -> bool: ...
def write_whole(exchange: Exchange, req: Request, status: int, phrase: bytes,
                headers: Headers, length: int | None, body: bytes, head_only: bool,
                trailers: Headers | None, chunked: bool = True) -> bool: ...
