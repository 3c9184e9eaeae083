"""proxy_pass with variables and the resolver, end to end on both engines: upstream
blocks matched by name first, names asked of the configured DNS server (never the
system's) and kept for their TTL or valid=, the 502s nginx gives when a name cannot be
had, and a URI from a variable that cannot split the request line."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dns_server import DnsServer
from raw_backend import RawBackend


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    server = DnsServer()
    yield server
    server.stop()


@pytest.fixture
def app() -> Iterator[RawBackend]:
    be = RawBackend()
    yield be
    be.stop()


def _get(port: int, path: str, host: str = "gw.test") -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
            if b"\r\n\r\n" in out:
                break
    return out


def test_names_resolved_by_the_resolver_and_kept(tmp_path: Path, gateway, free, dns, app) -> None:  # type: ignore[no-untyped-def]
    dns.set("app.test", ["127.0.0.1"], ttl=300)
    dns.set("short.test", ["127.0.0.1"], ttl=300)
    port = free()
    g = gateway(f"""http {{ access_log off;
      upstream pool {{ server 127.0.0.1:{app.port}; }}
      server {{ listen 127.0.0.1:{port};
        resolver 127.0.0.1:{dns.port} ipv6=off; resolver_timeout 2s;
        location /by-name/ {{ proxy_pass http://app.test:{app.port}$request_uri; }}
        location /short/ {{ resolver 127.0.0.1:{dns.port} valid=1s ipv6=off;
          proxy_pass http://short.test:{app.port}$request_uri; }}
        location /set/ {{ set $backend http://127.0.0.1:{app.port}; proxy_pass $backend; }}
        location /caps/ {{ set $backend HTTP://127.0.0.1:{app.port}; proxy_pass $backend; }}
        location /block/ {{ set $u pool; proxy_pass http://$u; }}
        location /missing/ {{ proxy_pass http://nowhere.test:{app.port}$request_uri; }}
        location /var/ {{ set $b "ftp://x"; proxy_pass $b; }}
      }} }}""", port)
    for _ in range(3):
        assert _get(port, "/by-name/a?x=1")[0] == 200
    assert dns.asked("app.test") == 1  # kept for its TTL: one question for three requests
    assert _get(port, "/set/b")[0] == 200
    assert _get(port, "/block/c")[0] == 200
    assert _get(port, "/caps/d")[0] == 200  # (the scheme caseless, as nginx's)
    assert [q for q in dns.questions if q[0] not in ("app.test",)] == []  # no lookups
    assert [r.target for r in app.requests()] == [b"/by-name/a?x=1"] * 3 + [
        b"/set/b", b"/block/c", b"/caps/d"]
    # valid=1s overrides the TTL
    assert _get(port, "/short/d")[0] == 200
    assert _get(port, "/short/d")[0] == 200
    assert dns.asked("short.test") == 1
    time.sleep(1.2)
    assert _get(port, "/short/d")[0] == 200
    assert dns.asked("short.test") == 2
    # a name the DNS server does not know: 502, in nginx's words
    assert _get(port, "/missing/e")[0] == 502
    assert "nowhere.test could not be resolved (3: Host not found)" in g.stderr
    assert _get(port, "/var/f")[0] == 500
    assert 'invalid URL prefix in "ftp://x"' in g.stderr


def test_without_a_resolver_a_name_is_a_502(tmp_path: Path, gateway, free, app) -> None:  # type: ignore[no-untyped-def]
    port = free()
    g = gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port};
        location / {{ proxy_pass http://$host:{app.port}; }} }} }}""", port)
    assert _get(port, "/x", host="localhost")[0] == 502
    assert "no resolver defined to resolve localhost" in g.stderr
    # an address needs no resolver
    assert _get(port, "/y", host="127.0.0.1")[0] == 200
    assert [r.target for r in app.requests()] == [b"/y"]


def test_a_silent_dns_server_times_out(tmp_path: Path, gateway, free, dns, app) -> None:  # type: ignore[no-untyped-def]
    dns.silent.add("slow.test")
    port = free()
    g = gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port};
        resolver 127.0.0.1:{dns.port}; resolver_timeout 1s;
        location / {{ proxy_pass http://slow.test:{app.port}$uri; }} }} }}""", port)
    started = time.monotonic()
    assert _get(port, "/x")[0] == 502
    assert time.monotonic() - started < 5
    assert "slow.test could not be resolved (110: Operation timed out)" in g.stderr
    assert app.requests() == []


def test_a_uri_from_a_variable_cannot_split_the_request(tmp_path: Path, gateway, free, app) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port};
        location / {{ proxy_pass http://127.0.0.1:{app.port}$uri; }} }} }}""", port)
    answer = _raw(port, b"GET /a%20b%0D%0AX-Evil:%201%0D%0A HTTP/1.1\r\nHost: x\r\n"
                        b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")
    [got] = app.requests()
    assert got.target == b"/a%20b%0D%0AX-Evil:%201%0D%0A"
    assert got.header(b"x-evil") == []
    assert b"\r\nX-Evil" not in app.raw()
