"""The PROXY protocol header as nginx reads it (src/core/ngx_proxy_protocol.c): v1 and
v2, incomplete headers wait for more bytes, anything else is a broken header."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastgate.http.proxy_protocol import (
    NO_ADDRESSES,
    V2_SIGNATURE,
    BrokenHeader,
    ProxyHeader,
    read_header,
)


def _v2(command: int, family: int, body: bytes, version: int = 2) -> bytes:
    return (V2_SIGNATURE + bytes([version << 4 | command, family]) + struct.pack("!H", len(body))
            + body)


@pytest.mark.parametrize("data,expected,used", [
    (b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\nGET", ("203.0.113.7", 51234, "10.0.0.1", 443), 43),
    (b"PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n", ("2001:db8::7", 1, "2001:db8::1", 65535), 44),
    (b"PROXY UNKNOWN\r\nGET / HTTP/1.1", NO_ADDRESSES, 15),
    (b"PROXY UNKNOWN whatever follows 1 2\r\n", NO_ADDRESSES, 36),
    # nginx does not check that the addresses are addresses, only their characters
    (b"PROXY TCP4 1.2.3 ::: 0 0\r\n", ("1.2.3", 0, ":::", 0), 26),
])
def test_v1(data: bytes, expected: ProxyHeader | tuple[str, int, str, int], used: int) -> None:
    header, n = read_header(data) or (None, 0)
    assert header == (expected if isinstance(expected, ProxyHeader) else ProxyHeader(*expected))
    assert n == used


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\n\r\n", b"PROXY TCP5 1.1.1.1 2.2.2.2 1 2\r\n",
    b"PROXY TCP4 1.1.1.1 2.2.2.2 1 70000\r\n", b"PROXY TCP4 1.1.1.1 2.2.2.2 1\r\n",
    b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2 \r\n", b"PROXY TCP4 1.1.1.g 2.2.2.2 1 2\r\n",
    b"PROXY TCP4 1.1.1.1 2.2.2.2 -1 2\r\n", b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2\n",
    b"PROXY " + b"1" * 200, b"proxy TCP4 1.1.1.1 2.2.2.2 1 2\r\n",
    _v2(1, 0x11, b"\x01\x02\x03\x04"),  # shorter than two IPv4 addresses and ports
    _v2(1, 0x11, b"", version=1),
    _v2(1, 0x11, b"\x00" * 2000),  # longer than nginx's 1k header buffer
])
def test_broken(data: bytes) -> None:
    with pytest.raises(BrokenHeader):
        read_header(data)


@pytest.mark.parametrize("data", [
    b"", b"P", b"PROXY TCP4 1.1.1.1", b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2\r",
    V2_SIGNATURE[:5], V2_SIGNATURE + b"\x21\x11\x00", _v2(1, 0x11, b"\x00" * 12)[:20],
])
def test_incomplete_waits(data: bytes) -> None:
    assert read_header(data) is None


def test_v2_addresses_and_the_headers_it_names_nothing_in() -> None:
    v4 = socket_pair(4)
    assert read_header(_v2(1, 0x11, v4 + b"tlv") + b"GET") == (
        ProxyHeader("192.0.2.1", 1000, "192.0.2.2", 443), 16 + len(v4) + 3)
    v6 = socket_pair(6)
    assert read_header(_v2(1, 0x21, v6))[0] == ProxyHeader(  # type: ignore[index]
        "::ffff:192.0.2.1", 1000, "2001:db8::2", 443)
    for command, family in ((0, 0x11), (1, 0x12), (1, 0x31), (1, 0x00)):
        assert read_header(_v2(command, family, v4)) == (NO_ADDRESSES, 16 + len(v4))


def socket_pair(version: int) -> bytes:
    if version == 4:
        return (ipaddress.IPv4Address("192.0.2.1").packed
                + ipaddress.IPv4Address("192.0.2.2").packed + struct.pack("!HH", 1000, 443))
    return (ipaddress.IPv6Address("::ffff:192.0.2.1").packed
            + ipaddress.IPv6Address("2001:db8::2").packed + struct.pack("!HH", 1000, 443))


@given(st.binary(max_size=300))
def test_any_bytes_are_a_header_more_to_wait_for_or_broken(data: bytes) -> None:
    try:
        found = read_header(data)
    except BrokenHeader:
        return
    if found is not None:
        assert 0 < found[1] <= len(data)


@given(st.ip_addresses(v=4), st.ip_addresses(v=4), st.integers(0, 65535),
       st.integers(0, 65535), st.binary(max_size=20))
def test_v1_round_trip(src: ipaddress.IPv4Address, dst: ipaddress.IPv4Address, sport: int,
                       dport: int, rest: bytes) -> None:
    line = f"PROXY TCP4 {src} {dst} {sport} {dport}\r\n".encode()
    assert read_header(line + rest) == (ProxyHeader(str(src), sport, str(dst), dport), len(line))
