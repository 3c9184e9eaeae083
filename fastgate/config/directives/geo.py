"""The geo and split_clients modules: ``geo [$address] $variable { ... }`` and
``split_clients STRING $variable { ... }``."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from fastgate.config import addresses
from fastgate.config.addresses import Network
from fastgate.config.context import HTTP, Context, Level, Spec
from fastgate.config.lookups import Geo, SplitClients, split_bounds
from fastgate.config.parser import Directive

_PERCENT = re.compile(r"([0-9]+)(?:\.([0-9]{1,2}))?%")


def _variable(d: Directive, text: str) -> str:
    if not text.startswith("$") or len(text) < 2:
        raise d.error(f'invalid variable name "{text}"')
    return text[1:].lower()


def cidr(ld: Context, e: Directive, text: str) -> Network:
    """A CIDR or a single address, as ``ngx_ptocidr`` reads it; host bits set are
    warned about and cleared, as nginx does."""
    if text == "255.255.255.255":
        return ipaddress.IPv4Network(text)
    host, sep, length = text.partition("/")
    addr = addresses.parse(host)
    bits = 32 if isinstance(addr, ipaddress.IPv4Address) else 128
    if addr is None or sep and not (length.isascii() and length.isdigit()
                                    and int(length) <= bits):
        raise e.error(f'invalid network "{text}"')
    net = ipaddress.ip_network((addr, int(length) if sep else bits), strict=False)
    if net.network_address != addr:
        ld.warn(f"low address bits of {text} are meaningless", e)
    return net


class _Ranges:
    """A ``ranges`` geo block's table as nginx builds it (ngx_http_geo_add_range): per
    /16, sorted disjoint ranges; a range may be added inside one given before (it
    answers there), next to it, or over it exactly (it replaces it) — any other overlap
    is an error, and ``delete`` removes only a range given exactly."""

    def __init__(self) -> None:
        self.chunks: dict[int, list[list[int | str]]] = {}

    @staticmethod
    def _spans(first: int, last: int) -> Iterator[tuple[int, int, int]]:
        for h in range(first >> 16, (last >> 16) + 1):
            s = first & 0xFFFF if h == first >> 16 else 0
            e = last & 0xFFFF if h == last >> 16 else 0xFFFF
            yield h, s, e

    def add(self, ld: Context, e: Directive, first: int, last: int, value: str) -> None:
        warned = False
        for h, s, end in self._spans(first, last):
            a = self.chunks.setdefault(h, [])
            for i in range(len(a) - 1, -1, -1):
                rs, re_, rv = a[i]
                assert isinstance(rs, int) and isinstance(re_, int)
                if end < rs:
                    continue
                if s > re_:
                    a.insert(i + 1, [s, end, value])
                elif s == rs and end == re_:
                    if not warned:
                        ld.warn(f'duplicate range "{e.name}", value: "{value}", old value: '
                                f'"{rv}"', e)
                        warned = True
                    a[i][2] = value
                elif s > rs and end < re_:
                    a[i + 1:i + 1] = [[s, end, value], [end + 1, re_, rv]]
                    a[i][1] = s - 1
                elif s == rs and end < re_:
                    a[i][0] = end + 1
                    a.insert(i, [s, end, value])
                elif s > rs and end == re_:
                    a[i][1] = s - 1
                    a.insert(i + 1, [s, end, value])
                else:
                    raise e.error(f'range "{e.name}" overlaps "{_dotted(h, rs)}-'
                                  f'{_dotted(h, re_)}"')
                break  # the first range from the end that is not after this one decides
            else:
                a.insert(0, [s, end, value])

    def delete(self, first: int, last: int) -> bool:
        """Whether every /16 part of the range was there to delete."""
        whole = True
        for h, s, end in self._spans(first, last):
            a = self.chunks.get(h, [])
            for i, r in enumerate(a):
                if r[0] == s and r[1] == end:
                    del a[i]
                    break
            else:
                whole = False
        return whole

    def table(self) -> tuple[tuple[int, int, str], ...]:
        return tuple((h << 16 | int(s), h << 16 | int(end), str(v))
                     for h in sorted(self.chunks) for s, end, v in self.chunks[h])


def _dotted(h: int, low: int) -> str:
    return f"{h >> 8}.{h & 0xFF}.{low >> 8}.{low & 0xFF}"


def geo_block(ld: Context, lvl: Level, d: Directive) -> None:
    name = _variable(d, d.args[-1])
    source = ld.compile(d.args[0], d) if len(d.args) == 2 else None
    nets: dict[Network, str] = {}
    ranges: _Ranges | None = None
    default: str | None = None
    proxies: list[Network] = []
    recursive = False
    for e in d.block or ():
        if e.block is not None:
            raise e.error('unexpected "{"')
        if e.name == "ranges" and not e.args:
            if nets or default is not None:
                raise e.error('the "ranges" directive must be the first directive inside '
                              '"geo" block')
            ranges = _Ranges()
            continue
        if e.name == "proxy_recursive" and not e.args:
            recursive = True
            continue
        if len(e.args) != 1:
            raise e.error("invalid number of the geo parameters")
        key, value = e.name, e.args[0]
        if key == "proxy":
            proxies.append(cidr(ld, e, value))
        elif key == "default" and ranges is not None:
            if default is not None:
                ld.warn(f'duplicate default geo range value: "{value}", old value: '
                        f'"{default}"', e)
            default = value
        elif key == "default":
            # the default is the value of 0.0.0.0/0 and ::/0
            default = value
            for net in (ipaddress.IPv4Network("0.0.0.0/0"), ipaddress.IPv6Network("::/0")):
                _insert(ld, e, nets, net, key, value)
        elif ranges is not None:
            is_delete = key == "delete"
            first, last = _range(e, value if is_delete else key)
            if is_delete:
                if not ranges.delete(first, last):
                    ld.warn(f'no address range "{value}" to delete', e)
            else:
                ranges.add(ld, e, first, last, value)
        elif key == "delete":
            if nets.pop(cidr(ld, e, value), None) is None:
                ld.warn(f'no network "{value}" to delete', e)
        else:
            _insert(ld, e, nets, cidr(ld, e, key), key, value)
    ld.define_map(Geo(
        name, source, _by_length(nets, 4), _by_length(nets, 6),
        ranges.table() if ranges is not None else None,
        default if ranges is not None and default is not None else "",
        tuple(proxies), recursive,
    ), d)


def _insert(ld: Context, e: Directive, nets: dict[Network, str], net: Network, key: str,
            value: str) -> None:
    if net in nets:
        ld.warn(f'duplicate network "{key}", value: "{value}", old value: "{nets[net]}"', e)
    nets[net] = value


def _range(e: Directive, text: str) -> tuple[int, int]:
    first, sep, last = text.partition("-")
    a = addresses.parse(first) if sep and ":" not in first else None
    b = addresses.parse(last) if sep and ":" not in last else None
    if a is None or b is None or int(a) > int(b):
        raise e.error(f'invalid range "{text}"')
    return int(a), int(b)


def _by_length(nets: dict[Network, str], version: int) -> tuple[tuple[int, dict[int, str]], ...]:
    lengths: dict[int, dict[int, str]] = {}
    for net, value in nets.items():
        if net.version == version:
            lengths.setdefault(net.prefixlen, {})[int(net.network_address)] = value
    return tuple(sorted(lengths.items(), reverse=True))


def split_clients_block(ld: Context, lvl: Level, d: Directive) -> None:
    name = _variable(d, d.args[1])
    source = ld.compile(d.args[0], d)
    percents: list[int] = []
    values: list[str] = []
    for e in d.block or ():
        if e.block is not None:
            raise e.error('unexpected "{"')
        if len(e.args) != 1:
            raise e.error("invalid number of arguments in split_clients")
        if e.name == "*":
            percents.append(0)
        else:
            m = _PERCENT.fullmatch(e.name)
            share = int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0")) if m else 0
            if not share:
                raise e.error(f'invalid percent value "{e.name}"')
            percents.append(share)
        values.append(e.args[0])
    total = 0
    for p in percents:
        total = total + p if p else 10000
        if total > 10000:
            raise d.error("percent total is greater than 100%")
    ld.define_map(SplitClients(name, source,
                               tuple(zip(split_bounds(percents), values, strict=True))), d)


SPECS = [
    Spec("geo", frozenset({HTTP}), 1, 2, geo_block, block=True),
    Spec("split_clients", frozenset({HTTP}), 2, 2, split_clients_block, block=True),
]
