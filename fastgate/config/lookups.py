"""Variables whose value is looked up in a table the configuration gives, besides
``map``: nginx's ``geo`` (by the client's address) and ``split_clients`` (by a hash of a
string, for A/B splits). Built once at load, read-only afterwards; each value is
computed once per request (the request's memo), as a map's."""

from __future__ import annotations

import bisect
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastgate.config import addresses
from fastgate.config.addresses import Address, Network
from fastgate.variables import Getter, Template, memoised


class Lookup(Protocol):
    """What a map, a geo or a split_clients block is to the loader: a variable, the
    templates it may render (to know whether it reads the token), its getter."""

    @property
    def name(self) -> str: ...

    def templates(self) -> tuple[Template, ...]: ...

    def getter(self) -> Getter: ...

NONE = ipaddress.IPv4Address("255.255.255.255")  # nginx's INADDR_NONE: not an address
_XFF = b"x-forwarded-for"


@dataclass(frozen=True)
class Geo:
    """``geo [$address] $name { ... }``: the value of the longest network holding the
    address (``default`` is 0.0.0.0/0 and ::/0), or with ``ranges`` the value of the
    IPv4 range holding it, else the default. The address is the client's unless a
    source is given; one that is not an address (a source that is not one, an IPv6
    address in a ``ranges`` block) is looked up as 255.255.255.255, as nginx does. From
    a ``proxy`` address, the address is the one X-Forwarded-For gives, as realip
    reads it."""

    name: str
    source: Template | None  # None: the client's address
    # (prefix length, {network address as int: value}), longest prefixes first
    v4: tuple[tuple[int, dict[int, str]], ...]
    v6: tuple[tuple[int, dict[int, str]], ...]
    # ``ranges``: sorted, disjoint (first, last, value) and the firsts, to bisect
    ranges: tuple[tuple[int, int, str], ...] | None
    default: str
    proxies: tuple[Network, ...] = ()
    proxy_recursive: bool = False
    firsts: tuple[int, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.ranges is not None:
            object.__setattr__(self, "firsts", tuple(r[0] for r in self.ranges))

    def templates(self) -> tuple[Template, ...]:
        return (self.source,) if self.source is not None else ()

    def getter(self) -> Getter:
        return memoised(self.name, self.evaluate)

    def evaluate(self, r: Any) -> str:
        text = self.source.render(r) if self.source is not None else r.remote_addr
        addr = addresses.parse(text)
        if self.proxies and addr is not None:
            lines = [v.decode("latin-1") for n, v in r.head.headers if n.lower() == _XFF]
            if lines:
                addr = addresses.forwarded(addr, lines, self.proxies,
                                           self.proxy_recursive)[0]
        return self.value(addr if addr is not None else NONE)

    def value(self, addr: Address) -> str:
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if self.ranges is not None:
            n = int(addr) if isinstance(addr, ipaddress.IPv4Address) else int(NONE)
            at = bisect.bisect_right(self.firsts, n) - 1
            if at >= 0 and n <= self.ranges[at][1]:
                return self.ranges[at][2]
            return self.default
        n = int(addr)
        bits = 32 if isinstance(addr, ipaddress.IPv4Address) else 128
        for length, nets in self.v4 if bits == 32 else self.v6:
            hit = nets.get(n >> (bits - length) << (bits - length) if length else 0)
            if hit is not None:
                return hit
        return self.default


@dataclass(frozen=True)
class SplitClients:
    """``split_clients STRING $name { PERCENT VALUE; ... * VALUE; }``: MurmurHash2 of
    the string against cumulative shares of 2^32, as nginx's (the same clients get the
    same value under both)."""

    name: str
    source: Template
    parts: tuple[tuple[int, str], ...]  # (upper bound of the hash, 0 for "*"), value

    def templates(self) -> tuple[Template, ...]:
        return (self.source,)

    def getter(self) -> Getter:
        return memoised(self.name, self.evaluate)

    def evaluate(self, r: Any) -> str:
        h = murmur_hash2(self.source.render(r).encode("utf-8", "surrogateescape"))
        for bound, value in self.parts:
            if h < bound or bound == 0:
                return value
        return ""


def split_bounds(percents: list[int]) -> list[int]:
    """nginx's cumulative bounds from shares in hundredths of a percent (0: "*")."""
    out = []
    last = 0
    for p in percents:
        if p:
            last = (last + p * 0xFFFFFFFF // 10000) & 0xFFFFFFFF
            out.append(last)
        else:
            out.append(0)
    return out


def murmur_hash2(data: bytes) -> int:
    """nginx's ngx_murmur_hash2 (Austin Appleby's MurmurHash2, seed 0), 32 bits."""
    m = 0x5BD1E995
    mask = 0xFFFFFFFF
    n = len(data)
    h = n & mask
    i = 0
    while n - i >= 4:
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = k * m & mask
        k ^= k >> 24
        k = k * m & mask
        h = h * m & mask
        h ^= k
        i += 4
    rest = n - i
    if rest == 3:
        h ^= data[i + 2] << 16
    if rest >= 2:
        h ^= data[i + 1] << 8
    if rest >= 1:
        h ^= data[i]
        h = h * m & mask
    h ^= h >> 13
    h = h * m & mask
    h ^= h >> 15
    return h
