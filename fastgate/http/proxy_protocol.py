"""The PROXY protocol header (v1 text, v2 binary) that a load balancer sends before the
HTTP bytes on a ``listen ... proxy_protocol`` address, read as nginx reads it
(src/core/ngx_proxy_protocol.c): the addresses it names become
``$proxy_protocol_addr`` and friends, and the client's address only through the realip
module (``real_ip_header proxy_protocol`` from a ``set_real_ip_from`` peer). A
connection whose first bytes are not a header is closed ("broken header")."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Any

from fastgate.errors import FastgateError
from fastgate.http.tls_or_plain import TlsOrPlain

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX = 107  # "PROXY TCP6 " + two full IPv6 addresses and ports + CRLF
MAX = 1024  # nginx reads the header from its 1k client header buffer
_V1_ADDRESS = frozenset(b"0123456789abcdefABCDEF:.")


class BrokenHeader(FastgateError):
    """The first bytes are not a PROXY protocol header; the message is nginx's."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    addr: str
    port: int
    server_addr: str
    server_port: int


# a header that names no addresses (v1 UNKNOWN, v2 LOCAL or another family)
NO_ADDRESSES = ProxyHeader("", 0, "", 0)


def read_header(data: bytes) -> tuple[ProxyHeader, int] | None:
    """The header at the start of ``data`` and its length in bytes, or None while more
    bytes are needed. Raises BrokenHeader."""
    if len(data) < len(V2_SIGNATURE) and V2_SIGNATURE.startswith(data):
        return None
    if data.startswith(V2_SIGNATURE):
        return _v2(data)
    if not (data[:6] == b"PROXY "[:len(data)] or data.startswith(b"PROXY ")):
        raise _broken(data)
    lf = data.find(b"\n", 0, V1_MAX)
    if lf < 0:
        if len(data) >= V1_MAX:
            raise _broken(data)
        return None
    if data[lf - 1:lf] != b"\r":  # the line ends with CRLF (a bare LF: nginx's error too)
        raise _broken(data)
    return _v1(data[:lf - 1]), lf + 1


def _broken(data: bytes) -> BrokenHeader:
    shown = data[:V1_MAX].decode("latin-1")
    return BrokenHeader(f'broken header: "{shown}"')


def _v1(line: bytes) -> ProxyHeader:
    rest = line[6:]
    if rest.startswith(b"UNKNOWN"):
        return NO_ADDRESSES
    if rest[:3] != b"TCP" or rest[3:4] not in (b"4", b"6") or rest[4:5] != b" ":
        raise _broken(line)
    fields = rest[5:].split(b" ")
    if len(fields) != 4:
        raise _broken(line)
    src, dst, sport, dport = fields
    if not (set(src) <= _V1_ADDRESS and set(dst) <= _V1_ADDRESS):
        raise _broken(line)
    ports = []
    for p in (sport, dport):
        if not p or not p.isdigit() or int(p) > 65535:
            raise _broken(line)
        ports.append(int(p))
    return ProxyHeader(src.decode(), ports[0], dst.decode(), ports[1])


def _v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    if len(data) < 16:
        return None
    version = data[12] >> 4
    if version != 2:
        raise BrokenHeader(f"unknown PROXY protocol version: {version}")
    end = 16 + (data[14] << 8 | data[15])
    if end > MAX:
        raise BrokenHeader("header is too large")
    if len(data) < end:
        return None
    command, family, transport = data[12] & 0x0F, data[13] >> 4, data[13] & 0x0F
    if command != 1 or transport != 1 or family not in (1, 2):
        # LOCAL (a balancer's health check), UDP, unix sockets: no addresses, as nginx
        return NO_ADDRESSES, end
    size = 4 if family == 1 else 16
    body = data[16:end]
    if len(body) < 2 * size + 4:
        raise BrokenHeader("header is too short")
    src = _address(body[:size])
    dst = _address(body[size:2 * size])
    ports = body[2 * size:2 * size + 4]
    return ProxyHeader(src, ports[0] << 8 | ports[1], dst, ports[2] << 8 | ports[3]), end


def _address(packed: bytes) -> str:
    """As ngx_sock_ntop writes it (an IPv4-mapped IPv6 address with its IPv4 part
    dotted)."""
    if len(packed) == 4:
        return str(ipaddress.IPv4Address(packed))
    addr = ipaddress.IPv6Address(packed)
    if addr.ipv4_mapped is not None:
        return f"::ffff:{addr.ipv4_mapped}"
    return str(addr)


class TlsAfterHeader(asyncio.Protocol):
    """A ``listen ... ssl proxy_protocol`` connection: the header comes in clear before
    the TLS handshake, so the listening socket cannot be a TLS one. This reads the
    header, gives it to ``conn``, then hands the transport to ``then`` (a
    ``TlsOrPlain`` for ``conn``) with the bytes after it. Waiting for the header is
    bounded by ``timeout`` (client_header_timeout)."""

    def __init__(self, conn: Any, then: TlsOrPlain, timeout: float) -> None:
        self.conn = conn
        self.then = then
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self._read = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._timer = asyncio.get_running_loop().call_later(self.timeout, self._expired)

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or self._timer is None:
            return  # (handed over, or timed out)
        self._read += data
        try:
            found = read_header(self._read)
        except BrokenHeader as e:
            self._stop_timer()
            self.conn.header_broken(transport, str(e))
            transport.abort()
            return
        if found is None:
            return
        self._stop_timer()
        header, used = found
        rest, self._read = self._read[used:], b""
        self.conn.header_given(header)
        transport.set_protocol(self.then)
        self.then.connection_made(transport)
        if rest:
            self.then.data_received(rest)

    def _expired(self) -> None:
        self._timer = None
        if self.transport is not None:
            self.transport.abort()  # no header in time: closed without an answer, as nginx

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
