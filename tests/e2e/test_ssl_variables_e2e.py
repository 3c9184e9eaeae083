"""The SSL modules' connection variables beside nginx 1.22 — ``$ssl_cipher``,
``$ssl_ciphers``, ``$ssl_curve``, ``$ssl_curves``, ``$ssl_session_id``,
``$ssl_session_reused``, ``$ssl_early_data``, ``$ssl_server_name``,
``$ssl_alpn_protocol``, ``$ssl_client_s_dn_legacy``, ``$ssl_client_i_dn_legacy`` — in
an HTTP server and a stream server, over TLS 1.3 and 1.2, with and without SNI, ALPN and
a client certificate, and empty without TLS: the same client, the same answers."""

from __future__ import annotations

import datetime
import re
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, wait_port
from e2e_util import NGINX, beside_nginx, stop_process
from helpers import self_signed

STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
VALUES = ("[$ssl_protocol][$ssl_cipher][$ssl_ciphers][$ssl_curve][$ssl_curves]"
          "[$ssl_session_reused][$ssl_early_data][$ssl_server_name][$ssl_alpn_protocol]"
          "[$ssl_client_s_dn_legacy][$ssl_client_i_dn_legacy][$ssl_session_id]")
# (nginx's stream module has no $ssl_early_data, nor the names' legacy form)
STREAM = re.sub(r"\[\$ssl_(early_data|client_._dn_legacy)\]", "", VALUES)


def _client_certificate(tmp: Path) -> tuple[Path, Path]:
    """A certificate whose names hold several parts, one not ASCII."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme, Inc."),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Gr\u00fcn"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
                         x509.NameAttribute(NameOID.EMAIL_ADDRESS, "alice@example.com")])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA/1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    crt, pem = tmp / "client.pem", tmp / "client.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


class Side:
    def __init__(self, kind: str, tmp: Path, crt: Path, key: Path) -> None:
        self.kind = kind
        self.home = tmp / kind
        self.home.mkdir()
        self.https, self.http, self.tcp = free_port(), free_port(), free_port()
        tls = (f"ssl_certificate {crt}; ssl_certificate_key {key}; "
               "ssl_verify_client optional_no_ca; ssl_protocols TLSv1.2 TLSv1.3;")
        body = f"""
http {{ access_log off;
  server {{ listen 127.0.0.1:{self.https} ssl; {tls}
    location / {{ return 200 "{VALUES}"; }} }}
  server {{ listen 127.0.0.1:{self.http}; location / {{ return 200 "{VALUES}"; }} }}
}}
stream {{ server {{ listen 127.0.0.1:{self.tcp} ssl; {tls} return "{STREAM}"; }} }}
"""
        self.proc = beside_nginx(kind, self.home, body, "error", (STREAM_MODULE,))
        for port in (self.https, self.http, self.tcp):
            wait_port(port, self.proc)

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Side, Side, Path, Path]]:
    for needed in (Path(NGINX), STREAM_MODULE):
        if not needed.exists():
            pytest.skip(f"{needed} is installed by make test (test-deps)")
    crt, key = self_signed(tmp_path, "server.example")
    made: list[Side] = []
    try:
        for kind in ("nginx", "fastgate"):
            made.append(Side(kind, tmp_path, crt, key))
        yield made[0], made[1], *_client_certificate(tmp_path)
    finally:
        for side in made:
            side.stop()


def _context(version: ssl.TLSVersion, alpn: list[str] | None,
             cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


def _read(sock: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            break
        if not chunk:
            break
        out += chunk
    return out


def _ask(port: int, ctx: ssl.SSLContext | None, name: str | None, http: bool,
         resume: list[ssl.SSLSession] | None = None) -> str:
    """The answer; with ``resume``, the session it holds is offered (and the new one
    kept there)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock = raw
    if ctx is not None:
        sock = ctx.wrap_socket(raw, server_hostname=name,
                               session=resume[0] if resume else None)
    with sock:
        if http:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        out = _read(sock)
        if resume is not None and isinstance(sock, ssl.SSLSocket) and sock.session:
            resume[:] = [sock.session]
    return out.partition(b"\r\n\r\n")[2].decode("latin-1") if http else out.decode("latin-1")


def test_the_variables_as_nginx(sides: tuple[Side, Side, Path, Path]) -> None:
    nginx, fastgate, crt, key = sides
    answers: dict[str, list[str]] = {}
    for side in (nginx, fastgate):
        got = answers[side.kind] = []
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            for name, alpn, cert in (("server.example", ["http/1.1"], (crt, key)),
                                     (None, None, None)):
                ctx = _context(version, alpn, cert)
                got.append(_ask(side.https, ctx, name, http=True))
                # (stream: nginx offers no ALPN without ssl_alpn, so none is chosen)
                got.append(_ask(side.tcp, _context(version, alpn, cert), name, http=False))
        got.append(_ask(side.http, None, None, http=True))
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):  # (resumed)
            for port, http in ((side.https, True), (side.tcp, False)):
                ctx, kept = _context(version, None, None), []
                got += [_ask(port, ctx, "server.example", http, kept) for _ in range(2)]
        time.sleep(0.05)
    # a session's id is random: its length is compared (TLS 1.2 without a ticket: one)
    ids = re.compile(r"\[([0-9a-f]*)\]$")
    for theirs, ours in zip(answers["nginx"], answers["fastgate"], strict=True):
        assert ids.sub(lambda m: f"[{len(m.group(1))}]", ours) == \
            ids.sub(lambda m: f"[{len(m.group(1))}]", theirs)
    first = answers["nginx"][0]
    assert first.startswith("[TLSv1.3][TLS_AES_256_GCM_SHA384][TLS_AES_256_GCM_SHA384:"), first
    assert "][server.example][http/1.1][/C=DE/O=Acme, Inc./OU=Gr\\xC3\\xBCn/CN=alice/" in first
    assert answers["nginx"][8] == "[][][][][][][][][][][][]"
    assert [a.split("][")[5] for a in answers["nginx"][9:]] == [".", "r"] * 4
