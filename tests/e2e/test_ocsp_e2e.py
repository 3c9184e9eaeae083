"""ssl_ocsp end to end, both engines, against an OCSP responder of the tests
(tests/e2e/ocsp_responder.py): a good certificate passes; a revoked one, one the
responder does not know, and one whose status cannot be had (the responder down, an
answer not signed by the issuer or its delegate, a stale answer, an error) are nginx's
400 "The SSL certificate error" — and the backend receives nothing of them; the whole
chain is asked about (``leaf``: the certificate only), the responder is the
configured one or the certificate's own, answers are kept with ssl_ocsp_cache. Then the
same clients to nginx 1.22 and to fastgate: the same answers."""

from __future__ import annotations

import datetime
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Gateway, free_port, terminate, wait_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from e2e_util import fastgate, wait_for_text
from h2_client import H2Client
from helpers import self_signed
from ocsp_responder import OcspResponder
from raw_backend import RawBackend

SERIALS = {"alice": 101, "eve": 102, "uma": 103, "bob": 104, "inter": 105, "aia": 106,
           "dave": 107, "stranger-ca": 108, "delegate": 109, "noaia": 110, "carol": 111}


class Pki:
    def __init__(self, d: Path, responder: OcspResponder) -> None:
        self.dir = d
        self.responder = responder
        root_key, root = self.issue("Test Root", None, True, 1)
        inter_key, inter = self.issue("Test Intermediate", (root_key, root), True,
                                      SERIALS["inter"])
        responder.issuers = {root.subject: (root, root_key), inter.subject: (inter, inter_key)}
        for name in ("alice", "eve", "uma", "noaia", "carol"):
            self.write(name, *self.issue(name, (root_key, root), False, SERIALS[name]))
        self.write("bob", *self.issue("bob", (inter_key, inter), False, SERIALS["bob"]), inter)
        self.write("dave", *self.issue("dave", (inter_key, inter), False, SERIALS["dave"]),
                   inter)
        self.write("aia", *self.issue("aia", (root_key, root), False, SERIALS["aia"],
                                      aia=responder.url))
        key, cert = self.issue("delegate", (root_key, root), False, SERIALS["delegate"],
                               ocsp_signing=True)
        responder.delegated = (cert, key)
        key, cert = self.issue("stranger", None, False, SERIALS["stranger-ca"],
                               ocsp_signing=True)
        responder.stranger = (cert, key)
        (d / "ca.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
        responder.statuses = {SERIALS["alice"]: "good", SERIALS["eve"]: "revoked",
                              SERIALS["bob"]: "good", SERIALS["inter"]: "good",
                              SERIALS["aia"]: "good", SERIALS["noaia"]: "good",
                              SERIALS["dave"]: "good", SERIALS["carol"]: "good"}

    @staticmethod
    def issue(name: str, issuer: tuple[Any, x509.Certificate] | None, ca: bool, serial: int,
              aia: str | None = None, ocsp_signing: bool = False
              ) -> tuple[Any, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        signer, issuer_name = (issuer[0], issuer[1].subject) if issuer else (key, subject)
        now = datetime.datetime.now(datetime.UTC)
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
             .public_key(key.public_key()).serial_number(serial)
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if aia:
            b = b.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                x509.oid.AuthorityInformationAccessOID.OCSP,
                x509.UniformResourceIdentifier(aia))]), critical=False)
        if ocsp_signing:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]),
                                critical=False)
        return key, b.sign(signer, hashes.SHA256())

    def write(self, name: str, key: Any, cert: x509.Certificate, *chain: x509.Certificate
              ) -> None:
        (self.dir / f"{name}.pem").write_bytes(b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in (cert, *chain)))
        (self.dir / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    responder = OcspResponder()
    try:
        yield Pki(tmp_path_factory.mktemp("ocsp-pki"), responder)
    finally:
        responder.stop()


def _context(pki: Pki, who: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if who is not None:
        ctx.load_cert_chain(pki.dir / f"{who}.pem", pki.dir / f"{who}.key")
    return ctx


def _get(port: int, pki: Pki, who: str | None, path: str = "/api/x") -> bytes:
    raw = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        with _context(pki, who).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out
    finally:
        raw.close()


def _servers(pki: Pki, tmp: Path, backend: int, ports: dict[str, int]) -> str:
    crt, key = self_signed(tmp)
    common = (f"ssl_certificate {crt}; ssl_certificate_key {key}; "
              f"ssl_client_certificate {pki.dir}/ca.pem; ssl_verify_client optional; "
              "ssl_verify_depth 2; ")
    loc = ('location / { return 200 "$ssl_client_verify\\n"; } '
           f"location /api/ {{ proxy_pass http://127.0.0.1:{backend}; }}")
    return f"""
      server {{ listen 127.0.0.1:{ports['on']} ssl; {common} ssl_ocsp on;
        ssl_ocsp_responder {pki.responder.url}; {loc} }}
      server {{ listen 127.0.0.1:{ports['leaf']} ssl; {common} ssl_ocsp leaf;
        ssl_ocsp_responder {pki.responder.url}; {loc} }}
      server {{ listen 127.0.0.1:{ports['aia']} ssl; {common} ssl_ocsp on; {loc} }}
      server {{ listen 127.0.0.1:{ports['cached']} ssl http2; {common} ssl_ocsp on;
        ssl_ocsp_cache shared:one:1m; ssl_ocsp_responder {pki.responder.url}; {loc} }}
      server {{ listen 127.0.0.1:{ports['why']} ssl; {common} ssl_ocsp on;
        ssl_ocsp_responder {pki.responder.url}; error_page 495 = /why;
        location = /why {{ return 200 "why $ssl_client_verify\n"; }} {loc} }}
"""


PORTS = ("on", "leaf", "aia", "cached", "why")


@pytest.fixture
def served(pki: Pki, tmp_path: Path, engine: str) -> Iterator[tuple[dict[str, int], RawBackend, Gateway]]:
    be = RawBackend()
    ports = {name: free_port() for name in PORTS}
    pki.responder.mode = "issuer"
    gw = Gateway(tmp_path, f"error_log stderr info; http {{ access_log off; "
                 f"{_servers(pki, tmp_path, be.port, ports)} }}", ports["on"],
                 extra_args=["--http-engine", engine])
    try:
        yield ports, be, gw
    finally:
        gw.stop()
        be.stop()
        assert "Traceback" not in gw.stderr and "unexpected error" not in gw.stderr


def _refused(answer: bytes) -> bool:
    return answer.startswith(b"HTTP/1.1 400") and b"The SSL certificate error" in answer


def test_good_revoked_unknown(served, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    ports, be, gw = served
    assert _get(ports["on"], pki, "alice", "/").endswith(b"SUCCESS\n")
    assert _get(ports["on"], pki, "alice").startswith(b"HTTP/1.1 200")
    assert len(be.requests()) == 1
    for who, words in (("eve", "certificate revoked"), ("uma", "certificate status unknown")):
        assert _refused(_get(ports["on"], pki, who, f"/api/{who}"))
        # (an error_page for 495 sees why: $ssl_client_verify)
        assert _get(ports["why"], pki, who, "/").endswith(f"why FAILED:{words}\n".encode())
        assert wait_for_text(gw.stderr_path, f"client SSL certificate verify error: {words}")
    assert _get(ports["on"], pki, None, "/").endswith(b"NONE\n")  # optional: none asked
    assert len(be.requests()) == 1 and b"/api/eve" not in be.raw() and b"/api/uma" not in be.raw()


def test_the_chain_or_the_leaf(served, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    ports, be, _ = served
    r = pki.responder
    before = r.asked[SERIALS["inter"]]
    assert _get(ports["on"], pki, "bob").startswith(b"HTTP/1.1 200")
    assert r.asked[SERIALS["inter"]] == before + 1  # the intermediate, sent by bob
    r.statuses[SERIALS["inter"]] = "revoked"
    try:
        assert _refused(_get(ports["on"], pki, "dave", "/api/dave-on"))
        # leaf: dave only, whose own status is good
        assert _get(ports["leaf"], pki, "dave", "/api/dave-leaf").startswith(b"HTTP/1.1 200")
    finally:
        r.statuses[SERIALS["inter"]] = "good"
    assert b"/api/dave-on" not in be.raw() and b"/api/dave-leaf" in be.raw()


def test_the_certificates_own_responder(served, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    ports, be, gw = served
    assert _get(ports["aia"], pki, "aia").startswith(b"HTTP/1.1 200")
    assert _refused(_get(ports["aia"], pki, "noaia", "/api/noaia"))
    assert wait_for_text(gw.stderr_path, "no OCSP responder URL in certificate")
    assert b"/api/noaia" not in be.raw()


@pytest.mark.parametrize("mode", ["stranger", "stale", "unauthorized", "garbage", "http500",
                                  "down"])
def test_no_status_no_request(served, pki: Pki, mode: str) -> None:  # type: ignore[no-untyped-def]
    ports, be, gw = served
    r = pki.responder
    if mode == "down":
        r.down()
    else:
        r.mode = mode
    try:
        out = _get(ports["on"], pki, "alice", f"/api/{mode}")
        assert _refused(out), out[:100]
        assert _get(ports["why"], pki, "alice", "/").endswith(
            b"why FAILED:certificate status request failed\n")
    finally:
        r.mode = "issuer"
        if mode == "down":
            r.up()
    assert be.requests() == []
    assert wait_for_text(gw.stderr_path, "while requesting certificate status")


def test_a_delegated_responder(served, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    ports, _, _ = served
    pki.responder.mode = "delegated"
    assert _get(ports["on"], pki, "alice").startswith(b"HTTP/1.1 200")


def test_kept_answers_and_http2(served, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    ports, be, _ = served
    r = pki.responder
    before = r.asked[SERIALS["alice"]]
    for _ in range(3):
        assert _get(ports["cached"], pki, "alice").startswith(b"HTTP/1.1 200")
    assert r.asked[SERIALS["alice"]] == before + 1  # one worker here: asked once
    # over HTTP/2 (ALPN): every stream of a revoked certificate's connection refused
    ctx = _context(pki, "eve")
    ctx.set_alpn_protocols(["h2"])
    count = len(be.requests())
    with H2Client(ports["cached"], tls=True, context=ctx) as c:
        answers = c.wait(*[c.request(f"/api/h2-{i}") for i in range(3)])
    assert [a.status for a in answers] == [400] * 3
    assert len(be.requests()) == count


def test_the_cache_is_shared_by_the_workers(tmp_path: Path, pki: Pki, engine: str) -> None:
    """ssl_ocsp_cache under several workers: a certificate's status is asked once,
    whichever worker each connection lands on (as nginx's shared zone)."""
    crt, key = self_signed(tmp_path)
    port = free_port()
    pki.responder.mode = "issuer"
    gw = Gateway(tmp_path, f"worker_processes 3; http {{ access_log off; server {{ "
                 f"listen 127.0.0.1:{port} ssl; ssl_certificate {crt}; "
                 f"ssl_certificate_key {key}; ssl_client_certificate {pki.dir}/ca.pem; "
                 "ssl_verify_client on; ssl_verify_depth 2; ssl_ocsp on; "
                 f"ssl_ocsp_cache shared:fleet:64k; ssl_ocsp_responder {pki.responder.url}; "
                 'location / { return 200 "pid=$pid $ssl_client_verify\\n"; } } }',
                 port, extra_args=["--http-engine", engine])
    try:
        before = pki.responder.asked[SERIALS["carol"]]
        pids = set()
        for _ in range(60):  # new connections until three workers have answered
            answer = _get(port, pki, "carol", "/")
            assert answer.endswith(b" SUCCESS\n"), answer
            pids.add(answer.split(b"pid=")[1].split(b" ")[0])
            if len(pids) == 3:
                break
        assert len(pids) >= 2, pids
        assert pki.responder.asked[SERIALS["carol"]] == before + 1
    finally:
        gw.stop()
    assert "Traceback" not in gw.stderr and "unexpected error" not in gw.stderr


def test_incompatible_with_optional_no_ca(tmp_path: Path, pki: Pki) -> None:
    crt, key = self_signed(tmp_path)
    conf = tmp_path / "f.conf"
    conf.write_text(f"http {{ server {{ listen 127.0.0.1:{free_port()} ssl; "
                    f"ssl_certificate {crt}; ssl_certificate_key {key};\n"
                    "ssl_verify_client optional_no_ca; ssl_ocsp on; } }\n")
    out = fastgate("-t", "-c", str(conf))
    assert out.returncode == 1
    assert '"ssl_ocsp" is incompatible with "ssl_verify_client optional_no_ca"' in out.stderr
    assert "Traceback" not in out.stderr


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _distinct_ports(taken: set[int]) -> dict[str, int]:
    ports: dict[str, int] = {}
    while len(ports) < len(PORTS):
        port = free_port()
        if port not in taken:
            taken.add(port)
            ports[PORTS[len(ports)]] = port
    return ports


def _start_nginx(home: Path, pki: Pki, tmp: Path, backend: int,
                 taken: set[int]) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    """nginx listening on every port of ``PORTS``; a port another test took between
    picking and binding makes nginx exit, and it is tried again on new ports."""
    for _ in range(3):
        ports = _distinct_ports(taken)
        (home / "nginx.conf").write_text(
            f"daemon off; master_process off; worker_processes 1; user root; "
            f"pid {home}/nginx.pid; error_log {home}/error.log info; events {{ }}\n"
            f"http {{ access_log off; resolver 127.0.0.1; "
            f"{_servers(pki, tmp, backend, ports)} }}")
        nginx = subprocess.Popen([NGINX, "-p", str(home), "-c", str(home / "nginx.conf")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for port in ports.values():
                wait_port(port, nginx)
            if nginx.poll() is None:  # not another process's listener answering
                return nginx, ports
        except RuntimeError:
            terminate(nginx)
    log = home / "error.log"
    raise RuntimeError(f"nginx did not start: {log.read_text() if log.exists() else ''}")


@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is installed by make test")
def test_nginx_answers_the_same(tmp_path: Path, pki: Pki, engine: str) -> None:
    be = RawBackend()
    taken: set[int] = set()
    home = tmp_path / "nginx"
    home.mkdir()
    try:
        nginx, ng_ports = _start_nginx(home, pki, tmp_path, be.port, taken)
    except BaseException:
        be.stop()
        raise
    fg_ports = _distinct_ports(taken)
    try:
        gw = Gateway(tmp_path, f"http {{ access_log off; "
                     f"{_servers(pki, tmp_path, be.port, fg_ports)} }}", fg_ports["on"],
                     extra_args=["--http-engine", engine])
    except BaseException:
        terminate(nginx)
        be.stop()
        raise
    try:
        for name in PORTS:
            for who in ("alice", "eve", "uma", "bob", "dave", "aia", "noaia", None):
                if name == "aia" and who != "aia" and who != "noaia":
                    continue
                want = _get(ng_ports[name], pki, who, "/")
                have = _get(fg_ports[name], pki, who, "/")
                assert _status_and_body(have) == _status_and_body(want), (name, who)
    finally:
        terminate(nginx)
        gw.stop()
        be.stop()


def _status_and_body(answer: bytes) -> tuple[bytes, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], body if b"<html>" not in body else b"(page)"
