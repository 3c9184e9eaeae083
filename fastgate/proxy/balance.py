"""How an upstream block picks a server: nginx's balancing methods, each as nginx's
module computes it, so that a request goes to the server nginx would send it to —
``hash``'s and ``ip_hash``'s affinity is the point of them.

Every method picks among the servers that are up and not yet tried by this request
(``exclude``), and falls back to round robin after 20 draws that found none, as nginx.
A retry (``proxy_next_upstream``) starts the same sequence again and skips what was
tried: nginx keeps its place in the sequence instead, which picks the same servers.
"""

from __future__ import annotations

import bisect
import ipaddress
import random as _random
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from fastgate.config.model import Balance, UpstreamServer


class Candidate(Protocol):
    """What a method reads and writes of a server (the worker's ``Peer``); a protocol,
    so that this module does not import the pool that calls it."""

    server: UpstreamServer
    current: int
    busy: int

    def available(self, now: float) -> bool: ...


Peer = TypeVar("Peer", bound=Candidate)
Excluded = set[Any] | frozenset[Any]
Pick = Callable[[float, Excluded, Any], Peer | None]  # generic: Pick[the pool's Peer]
DRAWS = 20  # nginx: tries before falling back to round robin


def round_robin(peers: Sequence[Peer], now: float, exclude: Excluded) -> Peer | None:
    """nginx's smooth weighted round robin over the servers that are up."""
    best = None
    total = 0
    for p in peers:
        if p in exclude or not p.available(now):
            continue
        p.current += p.server.weight
        total += p.server.weight
        if best is None or p.current > best.current:
            best = p
    if best is not None:
        best.current -= total
    return best


def least_conn(peers: Sequence[Peer], now: float, exclude: Excluded) -> Peer | None:
    """The server with the fewest requests in progress for its weight; between equals,
    round robin (ngx_http_upstream_least_conn_module)."""
    best = None
    many = False
    for p in peers:
        if p in exclude or not p.available(now):
            continue
        if best is None or p.busy * best.server.weight < best.busy * p.server.weight:
            best, many = p, False
        elif p.busy * best.server.weight == best.busy * p.server.weight:
            many = True
    if best is None or not many:
        return best
    b = best
    return round_robin([p for p in peers
                        if p.busy * b.server.weight == b.busy * p.server.weight],
                       now, exclude)


def _by_weight(peers: Sequence[Peer], w: int) -> Peer:
    for p in peers:
        if w < p.server.weight:
            return p
        w -= p.server.weight
    raise AssertionError("a draw past the total weight")


def _usable(p: Peer, now: float, exclude: Excluded) -> bool:
    return p not in exclude and p.available(now)


def ip_hash(peers: Sequence[Peer], total: int, address: str, now: float,
            exclude: Excluded) -> Peer | None:
    """By the client's address: an IPv4 address's first three bytes, all sixteen of an
    IPv6 one (ngx_http_upstream_ip_hash_module)."""
    try:
        packed = ipaddress.ip_address(address).packed
    except ValueError:
        packed = b"\x00\x00\x00"  # nginx's pseudo address for a client without one
    key = packed[:3] if len(packed) == 4 else packed
    h = 89
    for _ in range(DRAWS):
        for byte in key:
            h = (h * 113 + byte) % 6271
        p = _by_weight(peers, h % total)
        if _usable(p, now, exclude):
            return p
    return round_robin(peers, now, exclude)


def hash_key(peers: Sequence[Peer], total: int, key: bytes, now: float,
             exclude: Excluded) -> Peer | None:
    """By a key, compatible with Cache::Memcached as nginx's is: the sum of
    ``(crc32([REHASH] KEY) >> 16) & 0x7fff`` over the draws (ngx_http_upstream_hash)."""
    if not key:
        return round_robin(peers, now, exclude)
    acc = 0
    for rehash in range(DRAWS):
        crc = zlib.crc32(str(rehash).encode() + key if rehash else key)
        acc += (crc >> 16) & 0x7FFF
        p = _by_weight(peers, acc % total)
        if _usable(p, now, exclude):
            return p
    return round_robin(peers, now, exclude)


def ring(peers: Sequence[Peer]) -> tuple[list[int], list[Peer]]:
    """``hash ... consistent``'s points, as nginx's (ketama, compatible with
    Cache::Memcached::Fast): 160 per unit of weight, each ``crc32(HOST \\0 PORT
    PREV_HASH)`` of the server as written; sorted, duplicates dropped."""
    points: dict[int, Peer] = {}
    for p in peers:
        written = p.server.written or p.server.address
        host, _, port = written.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()):
            host, port = written, ""
        base = host.encode() + b"\x00" + port.encode()
        prev = 0
        for _ in range(p.server.weight * 160):
            prev = zlib.crc32(base + prev.to_bytes(4, "little"))
            points.setdefault(prev, p)
    hashes = sorted(points)
    return hashes, [points[h] for h in hashes]


def consistent(points: tuple[list[int], list[Peer]], key: bytes, now: float,
               exclude: Excluded, peers: Sequence[Peer]) -> Peer | None:
    """The first point at or after the key's crc32, then the following ones
    while their server is down or tried."""
    hashes, owners = points
    if not key:
        return round_robin(peers, now, exclude)
    at = bisect.bisect_left(hashes, zlib.crc32(key))
    for i in range(DRAWS):
        p = owners[(at + i) % len(owners)]
        if _usable(p, now, exclude):
            return p
    return round_robin(peers, now, exclude)


def random(peers: Sequence[Peer], total: int, two: bool, now: float,
           exclude: Excluded) -> Peer | None:
    """A server drawn by weight; ``two``: the less busy (for its weight) of two
    different ones (ngx_http_upstream_random_module)."""
    first = _draw(peers, total, now, exclude, None)
    if first is None:
        return round_robin(peers, now, exclude)
    if not two:
        return first
    second = _draw(peers, total, now, exclude, first)
    if second is None:
        return first
    if second.busy * first.server.weight < first.busy * second.server.weight:
        return second
    return first


def _draw(peers: Sequence[Peer], total: int, now: float, exclude: Excluded,
          other: Peer | None) -> Peer | None:
    for _ in range(DRAWS):
        p = _by_weight(peers, _random.randrange(total))
        if p is not other and _usable(p, now, exclude):
            return p
    return None


def method(balance: Balance, peers: Sequence[Peer]) -> Pick[Peer]:
    """The pick of one upstream block's pool, from its config."""
    total = sum(p.server.weight for p in peers)
    name = balance.method
    if name == "least_conn":
        return lambda now, exclude, req: least_conn(peers, now, exclude)
    if name == "ip_hash":
        return lambda now, exclude, req: ip_hash(peers, total, req.remote_addr if req else "",
                                                 now, exclude)
    if name == "random":
        two = balance.two
        return lambda now, exclude, req: random(peers, total, two, now, exclude)
    template = balance.key
    assert name == "hash" and template is not None
    if balance.consistent:
        points = ring(peers)
        return lambda now, exclude, req: consistent(points, _key(template, req), now, exclude,
                                                    peers)
    return lambda now, exclude, req: hash_key(peers, total, _key(template, req), now, exclude)


def _key(template: Any, req: Any) -> bytes:
    if req is None:
        return b""
    return str(template.render(req)).encode("utf-8", "surrogateescape")
