"""Datagrams for the stream block's ``listen ... udp`` (``proxy.stream``): the listening
socket, which hands each datagram with its sender to the layer above, and an upstream
socket connected to one server. The transports stay here, in the layer that owns them."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol


class PortOwner(Protocol):
    def datagram(self, port: UdpPort, data: bytes, addr: tuple[str, int]) -> None: ...


class UdpPort(asyncio.DatagramProtocol):
    """A ``listen ... udp`` socket."""

    def __init__(self, owner: PortOwner) -> None:
        self.owner = owner
        self._t: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._t = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.owner.datagram(self, data, addr)

    def error_received(self, exc: Exception) -> None:
        """(an ICMP error about an answer sent: the client is gone; nothing to do)"""

    def local(self) -> tuple[str, int]:
        return _sockname(self._t)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._t is not None and not self._t.is_closing():
            self._t.sendto(data, addr)

    def close(self) -> None:
        if self._t is not None:
            self._t.close()


def _sockname(t: asyncio.DatagramTransport | None) -> tuple[str, int]:
    found = t.get_extra_info("sockname") if t is not None else None
    return (str(found[0]), int(found[1])) if found else ("", 0)


class EndOwner(Protocol):
    def received(self, data: bytes) -> None: ...

    def failed(self, error: OSError) -> None:
        """The server refused a datagram (ICMP port unreachable) or sending failed."""


class UdpEnd(asyncio.DatagramProtocol):
    """A socket connected to one upstream server."""

    def __init__(self, owner: EndOwner) -> None:
        self.owner = owner
        self._t: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._t = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.owner.received(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.owner.failed(exc)

    def local(self) -> tuple[str, int]:
        return _sockname(self._t)

    def send(self, data: bytes) -> None:
        if self._t is not None and not self._t.is_closing():
            self._t.sendto(data)

    def close(self) -> None:
        if self._t is not None:
            self._t.close()


async def open_udp(owner: EndOwner, host: str, port: int) -> UdpEnd:
    """A socket connected to ``host:port`` (OSError when it cannot be made)."""
    end = UdpEnd(owner)
    await asyncio.get_running_loop().create_datagram_endpoint(lambda: end,
                                                              remote_addr=(host, port))
    return end


__all__ = ["EndOwner", "PortOwner", "UdpEnd", "UdpPort", "open_udp"]
