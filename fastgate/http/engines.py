"""Choosing a protocol engine, as uvicorn's ``--http auto|h11|httptools`` does."""

from __future__ import annotations

from typing import Any

ENGINES = ("auto", "h11", "httptools")


def resolve(kind: str) -> str:
    """``auto`` is httptools when it can be imported, else h11."""
    if kind != "auto":
        return kind
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def server_engine(kind: str, handler: Any, max_header_bytes: int, max_line: int,
                  first_buffer: int) -> Any:
    """A server engine reading heads into nginx's buffers: ``first_buffer``
    (client_header_buffer_size), then ``max_header_bytes`` // ``max_line`` of
    ``max_line`` bytes (large_client_header_buffers)."""
    if kind == "httptools":
        from fastgate.http.httptools_engine import HttptoolsServer

        return HttptoolsServer(handler, max_header_bytes, max_line, first_buffer)
    from fastgate.http.h11_engine import H11Server

    return H11Server(handler, max_header_bytes, max_line, first_buffer)


def client_engine(kind: str, handler: Any) -> Any:
    if kind == "httptools":
        from fastgate.http.httptools_engine import HttptoolsClient

        return HttptoolsClient(handler)
    from fastgate.http.h11_engine import H11Client

    return H11Client(handler)
