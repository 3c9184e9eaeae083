"""config.addresses: ``ngx_parse_url`` of an upstream value without a URI (nginx
1.22's words for what it refuses, as its stream proxy logged them for the same values:
tests/e2e/test_stream_unix_e2e.py) and the access rules' matching of a unix socket's
clients."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastgate.config.addresses import UNIX, allows, upstream_address
from fastgate.config.model import AccessRule


@pytest.mark.parametrize("text,expected", [
    ("127.0.0.1:80", ("127.0.0.1", 80, "127.0.0.1")),
    ("127.0.0.1", ("127.0.0.1", 0, "127.0.0.1")),
    ("name.example:8080", ("name.example", 8080, None)),
    ("name.example", ("name.example", 0, None)),
    ("[::1]:443", ("[::1]", 443, "::1")),
    ("[::1]", ("[::1]", 0, "::1")),
    ("127.1:80", ("127.1", 80, None)),  # (ngx_inet_addr wants four parts: a name)
])
def test_what_nginx_reads(text: str, expected: tuple[str, int, str | None]) -> None:
    host, port, address = upstream_address(text)
    assert (host, port, str(address) if address is not None else None) == expected


@pytest.mark.parametrize("text,error", [
    ("", "no host"), (":80", "no host"), ("127.0.0.1:99999", "invalid port"),
    ("127.0.0.1:0", "invalid port"), ("127.0.0.1:80x", "invalid port"),
    ("127.0.0.1:", "invalid port"), ("::1:80", "invalid port"),
    ("[::1", "invalid host"), ("[::1]x", "invalid host"), ("http://127.0.0.1:80", "invalid host"),
    ("127.0.0.1:99?x", "invalid host"), ("[]:80", "no host"), ("[zz]:80", "invalid IPv6 address"),
    ("[::1]:0", "invalid port"),
])
def test_what_nginx_refuses(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=f"^{error}$"):
        upstream_address(text)


@given(st.text(max_size=40))
def test_any_text_is_read_or_refused_with_words(text: str) -> None:
    try:
        host, port, address = upstream_address(text)
    except ValueError as e:
        assert str(e) in ("no host", "invalid host", "invalid port", "invalid IPv6 address")
        return
    assert host and 0 <= port <= 65535 and "/" not in text


@given(st.ip_addresses(v=4), st.integers(1, 65535))
def test_an_address_and_port_read_back(ip: ipaddress.IPv4Address, port: int) -> None:
    assert upstream_address(f"{ip}:{port}") == (str(ip), port, ip) or str(ip) == \
        "255.255.255.255"  # (ngx_inet_addr's INADDR_NONE: a name)


def test_a_unix_sockets_client_matches_only_unix_and_all() -> None:
    net = ipaddress.ip_network("0.0.0.0/0")
    deny_unix = (AccessRule(False, None, unix=True),)
    assert not allows(UNIX, deny_unix) and allows("127.0.0.1", deny_unix)
    assert allows(UNIX, (AccessRule(False, net),))  # (no network holds it)
    assert not allows(UNIX, (AccessRule(True, net), AccessRule(False, None)))
    assert allows(UNIX, (AccessRule(True, None, unix=True), AccessRule(False, None)))
