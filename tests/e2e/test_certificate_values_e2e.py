"""``ssl_certificate``/``ssl_certificate_key`` with variables, beside nginx 1.22: the
certificate a handshake gets is the file its ``$ssl_server_name`` (or a map over it)
names, relative paths from the configuration's directory; a server chosen by name among
several of one address loads its own; a renewed file is read at the next handshake; a
name whose file is not there fails that handshake, with nginx's "cannot load
certificate" at error — the same client, the same certificates."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, wait_port
from cryptography import x509
from cryptography.x509.oid import NameOID
from e2e_util import NGINX, beside_nginx, stop_process
from helpers import self_signed

NAMES = ("a.test", "b.test", "static.test")


class Side:
    def __init__(self, kind: str, tmp: Path) -> None:
        self.home = tmp / kind
        self.home.mkdir()
        self.own, self.mapped, self.shared = free_port(), free_port(), free_port()
        certs = tmp / "certs"
        by_name = (f"ssl_certificate {certs}/$ssl_server_name.cert.pem; "
                   f"ssl_certificate_key {certs}/$ssl_server_name.key.pem;")
        body = f"""
http {{ access_log off;
  map $ssl_server_name $pair {{ default a.test; b.test b.test; }}
  server {{ listen 127.0.0.1:{self.own} ssl; {by_name}
    location / {{ return 200 "[$ssl_server_name]"; }} }}
  server {{ listen 127.0.0.1:{self.mapped} ssl;
    ssl_certificate ../certs/$pair.cert.pem; ssl_certificate_key ../certs/$pair.key.pem;
    location / {{ return 200 "[$pair]"; }} }}
  server {{ listen 127.0.0.1:{self.shared} ssl; server_name static.test;
    ssl_certificate {certs}/static.test.cert.pem;
    ssl_certificate_key {certs}/static.test.key.pem;
    location / {{ return 200 "static"; }} }}
  server {{ listen 127.0.0.1:{self.shared} ssl; server_name *.test; {by_name}
    location / {{ return 200 "by name"; }} }}
}}
"""
        self.errors = self.home / "error.log"
        self.proc = beside_nginx(kind, self.home, body, "error")
        for port in (self.own, self.mapped, self.shared):
            wait_port(port, self.proc)

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Side, Side, Path]]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in NAMES:
        self_signed(certs, name, stem=f"{name}.")
    made: list[Side] = []
    try:
        for kind in ("nginx", "fastgate"):
            made.append(Side(kind, tmp_path))
        yield made[0], made[1], certs
    finally:
        for side in made:
            side.stop()


def _shown(port: int, name: str | None) -> str:
    """The common name of the certificate the server showed, then its answer; or
    "failed" when the handshake failed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        sock = ctx.wrap_socket(raw, server_hostname=name)
    except (ssl.SSLError, ConnectionResetError):
        raw.close()
        return "failed"
    with sock:
        der = sock.getpeercert(binary_form=True)
        assert der is not None
        cn = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(
            NameOID.COMMON_NAME)[0].value
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {name or 'h'}\r\nConnection: close\r\n\r\n"
                     .encode())
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    body = out.partition(b"\r\n\r\n")[2].decode()
    return f"{cn!s} {body}"


ASKED = (("own", "a.test"), ("own", "b.test"), ("own", "c.test"), ("own", None),
         ("mapped", None), ("mapped", "b.test"), ("mapped", "z.test"),
         ("shared", "static.test"), ("shared", "b.test"), ("shared", None),
         ("shared", "c.test"))


def test_the_certificate_the_values_name(sides: tuple[Side, Side, Path]) -> None:
    nginx, fastgate, _ = sides
    seen = {side: [_shown(getattr(side, port), name) for port, name in ASKED]
            for side in (nginx, fastgate)}
    assert seen[fastgate] == seen[nginx] == [
        "a.test [a.test]", "b.test [b.test]", "failed", "failed",
        "a.test [a.test]", "b.test [b.test]", "a.test [a.test]",
        "static.test static", "b.test by name", "static.test static", "failed"]
    for side in (nginx, fastgate):
        errors = side.errors.read_text()
        for missing in ("c.test.cert.pem", "/.cert.pem"):
            assert "[error]" in errors and 'cannot load certificate "' in errors
            assert missing in errors, (side.home, errors)


def test_a_renewed_certificate_is_read_at_the_next_handshake(
        sides: tuple[Side, Side, Path]) -> None:
    nginx, fastgate, certs = sides
    for side in (nginx, fastgate):
        assert _shown(side.own, "a.test") == "a.test [a.test]"
    time.sleep(0.05)  # (a modification time that differs)
    self_signed(certs, "renewed.a.test", stem="a.test.")
    for side in (nginx, fastgate):
        assert _shown(side.own, "a.test") == "renewed.a.test [a.test]", side.home


def _hello_naming(name: bytes) -> bytes:
    """A ClientHello whose server name is ``name``'s bytes, which Python's client would
    refuse to send (a name with "/" or ".."): one made for a name of the same length,
    its bytes replaced."""
    stand_in = b"z" * len(name)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=stand_in.decode())
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello.count(stand_in) == 1
    return hello.replace(stand_in, name)


def test_a_name_that_is_no_host_name_loads_nothing(sides: tuple[Side, Side, Path]) -> None:
    """nginx renders the client's raw name into the path: "../outside" loads a pair
    outside the directory the configuration names. fastgate fails that handshake."""
    nginx, fastgate, certs = sides
    self_signed(certs.parent, "outside", stem="outside.")
    answers = {}
    for side in (nginx, fastgate):
        with socket.create_connection(("127.0.0.1", side.own), timeout=5) as s:
            s.sendall(_hello_naming(b"../outside"))
            answers[side] = s.recv(1)
    assert answers[nginx] == b"\x16"  # (its ServerHello: the pair outside is loaded)
    assert answers[fastgate] in (b"\x15", b"")  # an alert, or the connection closed
    assert _shown(fastgate.own, "a.test") == "a.test [a.test]"

