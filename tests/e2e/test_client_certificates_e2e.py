"""ssl_verify_client end to end, both engines, over pooled and new upstream connections:
a certificate its CA signed passes (and $ssl_client_* describe it), a missing one is
nginx's 400 "No required SSL certificate was sent", a stranger's or a chain deeper than
ssl_verify_depth is nginx's 400 "The SSL certificate error" (the handshake completes, as
nginx's) — and in every refused case the backend receives nothing; optional_no_ca takes
a stranger's, with $ssl_client_verify saying why it failed. Then the same clients to
nginx 1.22 and to fastgate: the same answers."""

from __future__ import annotations

import datetime
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers import self_signed
from raw_backend import RawBackend


def _issue(name: str, issuer: tuple[Any, x509.Name] | None, ca: bool) -> tuple[Any, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer, issuer_name = issuer if issuer is not None else (key, subject)
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
            .public_key(key.public_key()).serial_number(0x0ABCDE)
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256()))
    return key, cert


def _write(path: Path, key: Any, *certs: x509.Certificate) -> None:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    if key is not None:
        path.with_suffix(".key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    root_key, root = _issue("Test Root", None, True)
    inter_key, inter = _issue("Test Intermediate", (root_key, root.subject), True)
    alice_key, alice = _issue("alice", (root_key, root.subject), False)
    bob_key, bob = _issue("bob", (inter_key, inter.subject), False)
    inter2_key, inter2 = _issue("Test Intermediate 2", (inter_key, inter.subject), True)
    carol_key, carol = _issue("carol", (inter2_key, inter2.subject), False)
    stranger_key, stranger = _issue("mallory", None, False)
    _write(d / "ca.pem", None, root)
    _write(d / "alice.pem", alice_key, alice)
    _write(d / "bob.pem", bob_key, bob, inter)  # bob sends his chain
    _write(d / "carol.pem", carol_key, carol, inter2, inter)  # two CAs below the root
    _write(d / "mallory.pem", stranger_key, stranger)
    return d


def _get(port: int, pki: Path, who: str | None, path: str = "/a", close: bool = True,
         name: str | None = "localhost", host: str = "x") -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if who is not None:
        ctx.load_cert_chain(pki / f"{who}.pem", pki / f"{who}.key")
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            extra = "Connection: close\r\n" if close else ""
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return b"handshake failed"
    finally:
        raw.close()


@pytest.mark.parametrize("keepalive", [16, 0], ids=["callback", "task"])
def test_ssl_verify_client(tmp_path: Path, gateway, free, pki: Path, keepalive: int) -> None:  # type: ignore[no-untyped-def]
    crt, key = self_signed(tmp_path)
    be = RawBackend()
    try:
        port, optional, deep, no_ca = free(), free(), free(), free()
        common = f"ssl_certificate {crt}; ssl_certificate_key {key}; " \
                 f"ssl_client_certificate {pki}/ca.pem;"
        loc = ("location / { proxy_set_header X-DN $ssl_client_s_dn; "
               "proxy_set_header X-Issuer $ssl_client_i_dn; "
               "proxy_set_header X-Verify $ssl_client_verify; "
               "proxy_set_header X-Serial $ssl_client_serial; proxy_pass http://pool; }")
        gateway(f"""http {{ access_log off;
          upstream pool {{ server 127.0.0.1:{be.port}; keepalive {keepalive}; }}
          server {{ listen 127.0.0.1:{port} ssl; {common} ssl_verify_client on; {loc}
            location /custom/ {{ error_page 496 = @nocert; proxy_pass http://pool; }}
            location @nocert {{ return 403 "certificate needed"; }} }}
          server {{ listen 127.0.0.1:{optional} ssl; {common} ssl_verify_client optional; {loc} }}
          server {{ listen 127.0.0.1:{deep} ssl; {common} ssl_verify_client on;
            ssl_verify_depth 2; {loc} }}
          server {{ listen 127.0.0.1:{no_ca} ssl; ssl_certificate {crt};
            ssl_certificate_key {key}; ssl_verify_client optional_no_ca; {loc} }} }}""", port)
        ok = _get(port, pki, "alice")
        assert ok.startswith(b"HTTP/1.1 200"), ok
        seen = be.requests()[-1]
        assert seen.header(b"x-dn") == [b"CN=alice,O=Test"]
        assert seen.header(b"x-issuer") == [b"CN=Test Root,O=Test"]
        assert seen.header(b"x-verify") == [b"SUCCESS"]
        assert seen.header(b"x-serial") == [b"0ABCDE"]
        count = len(be.requests())

        missing = _get(port, pki, None, "/none", close=False)  # the gateway closes it
        assert missing.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert b"No required SSL certificate was sent" in missing
        assert b"connection: close" in missing.lower()
        # an error_page takes it by its own number, as nginx's 496 (the server's level:
        # the check runs before any location is chosen, so /custom/'s does not apply)
        assert _get(port, pki, None, "/custom/x").startswith(b"HTTP/1.1 400")
        # a stranger's certificate: the handshake completes, the request is refused
        stranger = _get(port, pki, "mallory", "/stranger")
        assert stranger.startswith(b"HTTP/1.1 400") and b"The SSL certificate error" in stranger
        # ssl_verify_depth 1 (OpenSSL's, as nginx's): one CA between a certificate and
        # the root; bob has one, carol two
        assert _get(port, pki, "bob").startswith(b"HTTP/1.1 200")
        count = len(be.requests())
        too_deep = _get(port, pki, "carol", "/deep")
        assert too_deep.startswith(b"HTTP/1.1 400") and b"The SSL certificate error" in too_deep
        assert len(be.requests()) == count  # none of them reached the backend
        assert not any(m in be.raw() for m in (b"/none", b"/custom", b"/stranger", b"/deep"))

        assert _get(deep, pki, "carol").startswith(b"HTTP/1.1 200")
        assert be.requests()[-1].header(b"x-dn") == [b"CN=carol,O=Test"]
        assert _get(optional, pki, None).startswith(b"HTTP/1.1 200")
        assert be.requests()[-1].header(b"x-verify") == [b"NONE"]
        assert be.requests()[-1].header(b"x-dn") in ([b""], [])
        assert _get(optional, pki, "mallory").startswith(b"HTTP/1.1 400")  # (optional)
        # optional_no_ca: no CA to check against, the certificate is taken and described
        assert _get(no_ca, pki, "mallory").startswith(b"HTTP/1.1 200")
        assert be.requests()[-1].header(b"x-verify") == [b"FAILED:self-signed certificate"]
        assert be.requests()[-1].header(b"x-dn") == [b"CN=mallory,O=Test"]
        assert _get(no_ca, pki, "alice").startswith(b"HTTP/1.1 200")
        assert be.requests()[-1].header(b"x-verify") == [  # (OpenSSL's words, code 21)
            b"FAILED:unable to verify the first certificate"]
    finally:
        be.stop()


def test_a_server_level_error_page_takes_496(tmp_path: Path, gateway, free, pki: Path) -> None:  # type: ignore[no-untyped-def]
    crt, key = self_signed(tmp_path)
    port = free()
    gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port} ssl;
      ssl_certificate {crt}; ssl_certificate_key {key}; ssl_client_certificate {pki}/ca.pem;
      ssl_verify_client on; error_page 496 = @nocert;
      location @nocert {{ return 403 "certificate needed"; }}
      location / {{ return 200 "in"; }} }} }}""", port)
    answer = _get(port, pki, None)
    assert answer.startswith(b"HTTP/1.1 403") and answer.endswith(b"certificate needed")
    assert _get(port, pki, "alice").endswith(b"in")


def test_behind_a_rejecting_default_server(tmp_path: Path, gateway, free, pki: Path) -> None:  # type: ignore[no-untyped-def]
    """The catch-all default server refuses handshakes; the named one checks client
    certificates: its name and a certificate get in, nothing else does."""
    crt, key = self_signed(tmp_path, "b.test")
    port = free()
    gateway(f"""http {{ access_log off;
      server {{ listen 127.0.0.1:{port} ssl default_server; ssl_reject_handshake on; }}
      server {{ listen 127.0.0.1:{port} ssl; server_name b.test;
        ssl_certificate {crt}; ssl_certificate_key {key};
        ssl_client_certificate {pki}/ca.pem; ssl_verify_client on;
        location / {{ return 200 "in"; }} }} }}""", port)

    def ask(name: str | None, who: str | None) -> bytes:
        return _get(port, pki, who, "/", name=name, host="b.test")

    assert ask("b.test", "alice").endswith(b"in")
    assert ask("b.test", None).startswith(b"HTTP/1.1 400")
    assert ask("other.test", "alice") in (b"handshake failed", b"")
    assert ask(None, "alice") in (b"handshake failed", b"")


def test_nginx_answers_the_same_clients(tmp_path: Path, pki: Path, engine: str) -> None:
    from test_nginx_parity_e2e import NGINX, Side

    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    crt, key = self_signed(tmp_path)
    modes = ["on", "optional", "optional_no_ca", "on; ssl_verify_depth 2",
             "optional_no_ca; ssl_verify_depth 2"]
    ports: dict[str, list[int]] = {}
    sides = []
    try:
        for kind in ("nginx", "fastgate"):
            ports[kind] = [free_port() for _ in modes]
            block = "server { listen 127.0.0.1:PORT; }\n" + "\n".join(
                f"server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {crt};"
                f" ssl_certificate_key {key}; ssl_client_certificate {pki}/ca.pem;"
                f" ssl_verify_client {mode};"
                ' location / { return 200 "$ssl_client_verify|$ssl_client_s_dn"; } }'
                for port, mode in zip(ports[kind], modes, strict=True))
            sides.append(Side(kind, tmp_path, block, engine))
        for i in range(len(modes)):
            for who in (None, "alice", "bob", "carol", "mallory"):
                theirs = _get(ports["nginx"][i], pki, who)
                mine = _get(ports["fastgate"][i], pki, who)
                what = f"{modes[i]} {who}"
                assert mine.split(b"\r\n")[0] == theirs.split(b"\r\n")[0], what
                if theirs.startswith(b"HTTP/1.1 200"):
                    assert mine.split(b"\r\n\r\n")[-1] == theirs.split(b"\r\n\r\n")[-1], what
    finally:
        for side in sides:
            side.stop()
