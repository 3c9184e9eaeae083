"""The geo and split_clients modules at load and lookup: nginx's tables built from the
same lines give the same values (the parity e2e test checks them against nginx
itself), and what nginx refuses is refused with FILE:LINE."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastgate.config import addresses, load_config
from fastgate.config.errors import ConfigError
from fastgate.config.lookups import Geo, SplitClients, murmur_hash2, split_bounds


def _load(tmp_path: Path, http_body: str) -> Any:
    path = tmp_path / "t.conf"
    path.write_text("http {\n" + http_body + "\n server { listen 127.0.0.1:8997;"
                    " location / { return 200 ok; } }\n}\n")
    return load_config(str(path))


def _lookup(tmp_path: Path, http_body: str, name: str) -> Any:
    cfg = _load(tmp_path, http_body)
    return next(m for m in cfg.maps if m.name == name)


def _error(tmp_path: Path, http_body: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, http_body)
    return str(info.value)


def _request(addr: str, *forwarded: str) -> Any:
    headers = [(b"X-Forwarded-For", v.encode()) for v in forwarded]
    return SimpleNamespace(memo={}, remote_addr=addr, head=SimpleNamespace(headers=headers))


def _at(geo: Geo, text: str) -> str:
    found = addresses.parse(text)
    return geo.value(found if found is not None else ipaddress.IPv4Address("255.255.255.255"))


# ngx_murmur_hash2 of nginx 1.22.1 (src/core/ngx_murmurhash.c), compiled and run
@pytest.mark.parametrize("data,expected", [
    (b"", 0), (b"a", 2456313694), (b"ab", 446775395), (b"abc", 324500635),
    (b"abcd", 646393889), (b"hello", 3848350155), (b"user7salt", 4115741310),
    (b"127.0.0.1", 3054706065),
    (b"The quick brown fox jumps over the lazy dog", 556214736),
])
def test_murmur_hash2_is_nginx(data: bytes, expected: int) -> None:
    assert murmur_hash2(data) == expected


def test_split_bounds_are_nginx_cumulative_shares() -> None:
    # nginx: part->percent = percent * 0xffffffff / 10000, accumulated
    assert split_bounds([5000, 5000]) == [0x7FFFFFFF, 0xFFFFFFFE]
    assert split_bounds([50, 2000, 0]) == [50 * 0xFFFFFFFF // 10000,
                                          50 * 0xFFFFFFFF // 10000 + 2000 * 0xFFFFFFFF // 10000,
                                          0]


def test_split_clients_values(tmp_path: Path) -> None:
    sc = _lookup(tmp_path, 'split_clients "$remote_addr" $v { 0.5% a; 20% b; * c; }', "v")
    assert isinstance(sc, SplitClients)
    seen = {sc.getter()(_request(f"10.0.{i}.{j}")) for i in range(20) for j in range(20)}
    assert seen == {"a", "b", "c"}
    h = murmur_hash2(b"127.0.0.1")  # 3054706065 > 20.5% of 2^32: the "*" part
    assert h > split_bounds([50, 2000])[1]
    assert sc.getter()(_request("127.0.0.1")) == "c"


def test_split_clients_without_a_star_leaves_the_rest_empty(tmp_path: Path) -> None:
    sc = _lookup(tmp_path, 'split_clients "$remote_addr" $v { 10% a; }', "v")
    assert sc.getter()(_request("127.0.0.1")) == ""


@pytest.mark.parametrize("body,message", [
    ('split_clients "$remote_addr" $v { 60% a; 50% b; }', "percent total is greater than 100%"),
    ('split_clients "$remote_addr" $v { 0% a; }', 'invalid percent value "0%"'),
    ('split_clients "$remote_addr" $v { 1.234% a; }', 'invalid percent value "1.234%"'),
    ('split_clients "$remote_addr" $v { ten a; }', 'invalid percent value "ten"'),
    ('split_clients "$remote_addr" $v { 10% a b; }', "invalid number of arguments"),
    ('split_clients "$remote_addr" v { 10% a; }', 'invalid variable name "v"'),
    ("geo $g { 10.0.0.0/33 x; }", 'invalid network "10.0.0.0/33"'),
    ("geo $g { 10.0.0 x; }", 'invalid network "10.0.0"'),
    ("geo $g { 10.0.0.0/8 x y; }", "invalid number of the geo parameters"),
    ("geo $g { 10.0.0.0/8 x; ranges; }", '"ranges" directive must be the first'),
    ("geo $g { ranges; 10.0.0.9-10.0.0.1 x; }", 'invalid range "10.0.0.9-10.0.0.1"'),
    ("geo $g { ranges; 10.0.0.0/8 x; }", 'invalid range "10.0.0.0/8"'),
    ("geo $g { ranges; 1.0.0.0-255.255.255.255 x; }",
     'invalid range "1.0.0.0-255.255.255.255"'),
    ("geo $g { ranges; 10.0.0.0-10.0.0.255 a; 10.0.0.128-10.0.1.0 b; }",
     'range "10.0.0.128-10.0.1.0" overlaps "10.0.0.0-10.0.0.255"'),
    ("geo $g { ranges; 10.0.0.10-10.0.0.20 a; 10.0.0.0-10.0.0.255 b; }",
     'range "10.0.0.0-10.0.0.255" overlaps "10.0.0.10-10.0.0.20"'),
    ("geo $g { default a; } geo $g { default b; }", 'duplicate "geo" variable "g"'),
    ("map $x $g { default a; } geo $g { default b; }", 'duplicate "geo" variable "g"'),
])
def test_what_nginx_refuses(tmp_path: Path, body: str, message: str) -> None:
    error = _error(tmp_path, body)
    assert message in error and "t.conf:" in error


def test_geo_longest_network_wins_and_default_is_everything(tmp_path: Path) -> None:
    geo = _lookup(tmp_path, """geo $g { default world; 10.0.0.0/8 ten; 10.1.0.0/16 ten-one;
        192.0.2.7 host; 2001:db8::/32 six; 255.255.255.255 none; }""", "g")
    assert _at(geo, "10.9.9.9") == "ten"
    assert _at(geo, "10.1.9.9") == "ten-one"
    assert _at(geo, "192.0.2.7") == "host"
    assert _at(geo, "192.0.2.8") == "world"
    assert _at(geo, "2001:db8::1") == "six"
    assert _at(geo, "::ffff:10.1.0.1") == "ten-one"  # a mapped address is its IPv4 one
    assert _at(geo, "2002::1") == "world"
    assert _at(geo, "not an address") == "none"


def test_geo_without_default_is_empty_and_explicit_zero_network_is_the_default(
        tmp_path: Path) -> None:
    assert _at(_lookup(tmp_path, "geo $g { 10.0.0.0/8 ten; }", "g"), "1.2.3.4") == ""
    geo = _lookup(tmp_path, "geo $g { default a; 0.0.0.0/0 b; }", "g")
    assert _at(geo, "1.2.3.4") == "b" and _at(geo, "::1") == "a"
    assert any("duplicate network" in w for w in _load(
        tmp_path, "geo $g { default a; 0.0.0.0/0 b; }").warnings)


def test_geo_delete_and_its_warnings(tmp_path: Path) -> None:
    body = "geo $g { default d; 10.0.0.0/8 ten; 10.1.0.0/16 one; delete 10.1.0.0/16; " \
           "delete 10.2.0.0/16; 10.3.2.1/16 fuzzy; }"
    geo = _lookup(tmp_path, body, "g")
    assert _at(geo, "10.1.2.3") == "ten"
    assert _at(geo, "10.3.9.9") == "fuzzy"
    warnings = _load(tmp_path, body).warnings
    assert any('no network "10.2.0.0/16" to delete' in w for w in warnings)
    assert any("low address bits of 10.3.2.1/16 are meaningless" in w for w in warnings)


def test_geo_ranges_nest_split_and_replace_as_nginx(tmp_path: Path) -> None:
    geo = _lookup(tmp_path, """geo $g { ranges; default none;
        10.0.0.0-10.0.255.255 outer; 10.0.0.128-10.0.0.200 inner; 10.0.0.0-10.0.0.9 head;
        10.0.255.0-10.0.255.255 tail; 10.0.0.128-10.0.0.200 again;
        192.168.0.0-192.169.255.255 lan; delete 192.169.0.0-192.169.255.255;
        delete 192.168.1.0-192.168.1.255; 255.255.255.0-255.255.255.254 high; }""", "g")
    assert _at(geo, "10.0.0.5") == "head"
    assert _at(geo, "10.0.0.10") == "outer"
    assert _at(geo, "10.0.0.150") == "again"
    assert _at(geo, "10.0.0.201") == "outer"
    assert _at(geo, "10.0.255.7") == "tail"
    assert _at(geo, "10.1.0.0") == "none"
    assert _at(geo, "192.168.1.7") == "lan"  # delete removes only a range given exactly
    assert _at(geo, "192.169.0.1") == "none"  # the whole /16 part was given: removed
    # IPv6 is 255.255.255.255 for ranges, which no range can hold (nginx reads that
    # address as "none" in a range too: refused below)
    assert _at(geo, "2001:db8::1") == "none"


@given(st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 300)), max_size=12),
       st.integers(0, 2**20 + 300))
def test_geo_ranges_agree_with_a_plain_scan_when_disjoint(
        spans: list[tuple[int, int]], probe: int) -> None:
    # disjoint ranges given in any order: the value is the one range holding the address
    taken: list[tuple[int, int]] = []
    for first, size in spans:
        last = first + size
        if all(last < a or first > b for a, b in taken):
            taken.append((first, last))
    lines = " ".join(f"{ipaddress.IPv4Address(a)}-{ipaddress.IPv4Address(b)} r{i};"
                     for i, (a, b) in enumerate(taken))
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        geo = _lookup(Path(d), f"geo $g {{ ranges; default none; {lines} }}", "g")
    expected = next((f"r{i}" for i, (a, b) in enumerate(taken) if a <= probe <= b), "none")
    assert geo.value(ipaddress.IPv4Address(probe)) == expected


def test_geo_from_a_proxy_reads_x_forwarded_for(tmp_path: Path) -> None:
    geo = _lookup(tmp_path, """geo $g { default world; 10.0.0.0/8 ten; 8.8.8.0/24 dns;
        proxy 127.0.0.1; proxy 10.0.0.0/8; proxy_recursive; }""", "g")
    get = geo.getter()
    assert get(_request("127.0.0.1", "8.8.8.8, 10.2.2.2")) == "dns"
    assert get(_request("127.0.0.1", "8.8.8.8", "10.2.2.2")) == "dns"  # across lines
    assert get(_request("127.0.0.1", "junk, 10.2.2.2")) == "ten"
    assert get(_request("192.0.2.1", "10.2.2.2")) == "world"  # not from a proxy
    plain = _lookup(tmp_path, "geo $g { default world; 10.0.0.0/8 ten; proxy 127.0.0.1; }",
                    "g")
    assert plain.getter()(_request("127.0.0.1", "8.8.8.8, 10.2.2.2")) == "ten"
    assert plain.getter()(_request("127.0.0.1", "10.2.2.2:8080")) == "ten"


def test_geo_with_a_source_variable(tmp_path: Path) -> None:
    geo = _lookup(tmp_path, 'geo $remote_addr $g { default world; 10.0.0.0/8 ten; }', "g")
    assert geo.getter()(_request("10.1.1.1")) == "ten"
    assert geo.templates() and geo.source is not None


@pytest.mark.parametrize("text,expected", [
    ("10.0.0.1", "10.0.0.1"), ("010.000.0.1", "10.0.0.1"), ("1..2.3", "1.0.2.3"),
    ("255.255.255.255", None), ("256.0.0.1", None), ("1.2.3", None), ("1.2.3.4.5", None),
    ("2001:db8::1", "2001:db8::1"), ("fe80::1%eth0", None), ("", None), ("a.b.c.d", None),
])
def test_parse_is_ngx_parse_addr(text: str, expected: str | None) -> None:
    found = addresses.parse(text)
    assert (str(found) if found is not None else None) == expected


@pytest.mark.parametrize("values,recursive,expected", [
    (["203.0.113.7"], False, "203.0.113.7"),
    (["  2001:db8::1 "], False, "2001:db8::1"),
    (["not-an-address"], False, "127.0.0.1"),
    (["203.0.113.7, 10.0.0.2"], False, "10.0.0.2"),
    (["203.0.113.7, 10.0.0.2"], True, "203.0.113.7"),
    (["198.51.100.1, 203.0.113.7, 10.0.0.2, 10.0.0.3"], True, "203.0.113.7"),
    (["10.0.0.9, 10.0.0.2"], True, "10.0.0.9"),  # all trusted: the first
    (["junk, 10.0.0.2"], True, "10.0.0.2"),
    (["203.0.113.7, junk"], False, "127.0.0.1"),
    (["203.0.113.7 10.0.0.2"], True, "203.0.113.7"),  # a space separates too
    (["203.0.113.7:443"], False, "203.0.113.7"),
    (["[2001:db8::7]:443"], False, "2001:db8::7"),
    (["203.0.113.7:0"], False, "127.0.0.1"),
    (["198.51.100.1", "10.0.0.2"], True, "198.51.100.1"),  # lines, from the last
    (["198.51.100.1", "10.0.0.2"], False, "10.0.0.2"),
])
def test_forwarded_is_ngx_http_get_forwarded_addr(values: list[str], recursive: bool,
                                                  expected: str) -> None:
    trusted = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")]
    peer = ipaddress.IPv4Address("127.0.0.1")
    assert str(addresses.forwarded(peer, values, trusted, recursive)[0]) == expected


def test_forwarded_from_an_untrusted_peer_is_the_peer() -> None:
    peer = ipaddress.IPv4Address("192.0.2.1")
    assert addresses.forwarded(peer, ["10.0.0.1"], [ipaddress.ip_network("127.0.0.1/32")],
                               True) == (peer, None)


@pytest.mark.parametrize("values,expected", [
    (["203.0.113.7"], 0), (["203.0.113.7:8443"], 8443), (["[2001:db8::7]:443"], 443),
    (["junk"], None),
])
def test_forwarded_port(values: list[str], expected: int | None) -> None:
    trusted = [ipaddress.ip_network("127.0.0.1/32")]
    peer = ipaddress.IPv4Address("127.0.0.1")
    assert addresses.forwarded(peer, values, trusted, False)[1] == expected


def test_geo_includes_a_file_of_networks(tmp_path: Path) -> None:
    (tmp_path / "nets.conf").write_text("10.0.0.0/8 ten;\n2001:db8::/32 six;\n")
    geo = _lookup(tmp_path, f"geo $g {{ default world; include {tmp_path}/nets.conf; }}", "g")
    assert _at(geo, "10.1.1.1") == "ten" and _at(geo, "2001:db8::9") == "six"
