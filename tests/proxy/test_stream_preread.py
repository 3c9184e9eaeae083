"""ssl_preread's reading of a ClientHello (``proxy.stream.read_hello``): the server
name, ALPN protocols and version of hellos made by OpenSSL itself, whole, cut into
several records, and given a byte at a time; what is not a hello."""

from __future__ import annotations

import ipaddress
import ssl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgate.proxy.stream import NotHello, Preread, read_hello

LABEL = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=20)
NAME = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
PROTOCOL = st.text("abcdefghijklmnopqrstuvwxyz0123456789/.-", min_size=1, max_size=16)


def hello(name: str | None, alpn: list[str] | None,
          maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = maximum
    if alpn:
        ctx.set_alpn_protocols(alpn)
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def records(data: bytes, size: int) -> bytes:
    """The hello's handshake message cut into records of ``size`` bytes."""
    body = data[5:5 + int.from_bytes(data[3:5], "big")]
    return b"".join(data[:3] + len(part).to_bytes(2, "big") + part
                    for part in (body[i:i + size] for i in range(0, len(body), size)))


@settings(max_examples=60, deadline=None)
@given(name=st.one_of(st.none(), NAME), alpn=st.one_of(st.none(), st.lists(PROTOCOL, min_size=1,
                                                                         max_size=3)),
       size=st.integers(1, 600))
def test_a_hello_is_read_whole_or_in_records(name: str | None, alpn: list[str] | None,
                                             size: int) -> None:
    data = hello(name, alpn)
    sent = name if name is not None and not _is_address(name) else ""  # (no SNI for an IP)
    want = Preread(sent, ",".join(alpn or ()), "TLSv1.3")
    assert read_hello(data) == want
    cut = records(data, size)
    assert read_hello(cut) == want
    assert read_hello(cut + b"more bytes after it") == want


def test_until_it_is_all_there_more_is_asked_for() -> None:
    data = records(hello("a.example", ["h2"]), 100)
    for end in range(len(data)):
        assert read_hello(data[:end]) is None
    assert read_hello(data) == Preread("a.example", "h2", "TLSv1.3")


def test_the_highest_version_offered() -> None:
    assert read_hello(hello("x", None, ssl.TLSVersion.TLSv1_2)).protocol == "TLSv1.2"


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"\x16\x02\x00\x00\x05hello",
                                  b"\x17\x03\x03\x00\x01x", b"\x16\x03\x01\x00\x04\x02\x00\x00\x00"])
def test_what_is_not_a_hello(data: bytes) -> None:
    with pytest.raises(NotHello):
        read_hello(data)


@given(st.binary(max_size=300))
def test_any_bytes_are_a_hello_none_or_not_one(data: bytes) -> None:
    try:
        found = read_hello(b"\x16\x03\x01" + len(data).to_bytes(2, "big") + data)
    except NotHello:
        return
    assert found is None or isinstance(found, Preread)
