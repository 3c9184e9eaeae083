"""A small GET to a service the configuration names — a JWKS URL, an OCSP responder —
over http or https, bounded in time and size; its own connection each time (these are
rare next to the requests they serve, and must never share an upstream's pool)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import h11

from fastgate.errors import FastgateError

FETCH_TIMEOUT = 10.0
MAX_BODY = 1 << 20


class FetchError(FastgateError):
    """The service could not be asked, or its answer could not be read: why."""


# (status, headers with lower-case names, body)
Fetched = tuple[int, dict[str, str], bytes]
Fetch = Callable[[], Awaitable[Fetched]]


async def http_get(url: str, timeout: float = FETCH_TIMEOUT,
                   accept: str = "application/json") -> Fetched:
    """GET ``url`` (http or https), bounded by ``timeout`` and 1 MiB of body."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    ctx = ssl.create_default_context() if https else None

    async def go() -> Fetched:
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx,
                                                       server_hostname=host if https else None)
        try:
            conn = h11.Connection(h11.CLIENT)
            authority = parts.netloc.rsplit("@", 1)[-1]
            writer.write(conn.send(h11.Request(method="GET", target=target, headers=[
                ("host", authority), ("accept", accept),
                ("user-agent", "fastgate"), ("connection", "close")])))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            status, headers, body = 0, {}, bytearray()
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                    continue
                if isinstance(ev, h11.Response):
                    status = ev.status_code
                    headers = {k.decode().lower(): v.decode("latin-1") for k, v in ev.headers}
                elif isinstance(ev, h11.Data):
                    body += ev.data
                    if len(body) > MAX_BODY:
                        raise FetchError("response larger than 1 MiB")
                elif isinstance(ev, (h11.EndOfMessage, h11.ConnectionClosed)):
                    return status, headers, bytes(body)
        finally:
            writer.close()

    try:
        return await asyncio.wait_for(go(), timeout)
    except TimeoutError:
        raise FetchError(f"timed out after {timeout:g} s") from None
    except h11.RemoteProtocolError as e:
        raise FetchError(f"invalid HTTP response: {e}") from None
    except (OSError, ssl.SSLError) as e:
        raise FetchError(str(e) or type(e).__name__) from None


__all__ = ["FetchError", "Fetch", "Fetched", "http_get"]
