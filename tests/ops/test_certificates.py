"""Certificates with variables, loaded at the handshake (fastgate.ops.certificates): the
pair the name's values give, the context kept while the files stay the same and made
again when one changes, a few kept at most, and a failure that costs one handshake
and says why — handshakes made in memory against the server's real context."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from helpers import self_signed

from fastgate.config import load_config
from fastgate.config.model import Settings
from fastgate.config.tls import server_context
from fastgate.ops import certificates
from fastgate.ops.certificates import CertificatesByValue


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    for name in ("a.test", "b.test", "c.test"):
        self_signed(tmp_path, name, stem=f"{name}.")
    conf = tmp_path / "t.conf"
    conf.write_text("http { server { listen 127.0.0.1:8443 ssl;\n"
                    "ssl_certificate $ssl_server_name.cert.pem;\n"
                    "ssl_certificate_key $ssl_server_name.key.pem; } }\n")
    return load_config(str(conf)).servers[0].settings


def _handshake(loader: CertificatesByValue, name: str | None) -> str:
    """The common name of the certificate the server showed, or "failed"."""
    server = server_context(loader.settings)
    server.sni_callback = loader.callback
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname=name)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (c, s):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                return "failed"
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        try:
            der = c.getpeercert(binary_form=True)
        except ValueError:  # (not yet)
            continue
        if der:
            value = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(
                NameOID.COMMON_NAME)[0].value
            return str(value)
    return "failed"


def test_the_pair_the_name_gives_kept_while_its_files_stay(settings: Settings,
                                                           tmp_path: Path) -> None:
    loader = CertificatesByValue(settings, ["http/1.1"])
    assert [_handshake(loader, n) for n in ("a.test", "b.test", "a.test")] == [
        "a.test", "b.test", "a.test"]
    kept = dict(loader._kept)
    assert len(kept) == 2
    _handshake(loader, "a.test")
    assert dict(loader._kept) == kept  # the same contexts: nothing read again
    # a renewed certificate (and key): read at the next handshake
    self_signed(tmp_path, "renewed", stem="a.test.")
    later = os.stat(tmp_path / "a.test.cert.pem").st_mtime + 5
    os.utime(tmp_path / "a.test.cert.pem", (later, later))
    assert _handshake(loader, "a.test") == "renewed"


def test_a_few_contexts_are_kept(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certificates, "_KEPT", 2)
    loader = CertificatesByValue(settings, ["http/1.1"])
    for name in ("a.test", "b.test", "c.test"):
        assert _handshake(loader, name) == name
    assert [k[0][0].rsplit("/", 1)[1] for k in loader._kept] == ["b.test.cert.pem",
                                                                 "c.test.cert.pem"]


def test_a_pair_that_cannot_be_loaded_fails_its_handshake_only(settings: Settings,
                                                                tmp_path: Path) -> None:
    loader = CertificatesByValue(settings, ["http/1.1"])
    reported: list[tuple[str, str]] = []
    loader.report = lambda level, message: reported.append((level, message))
    assert _handshake(loader, "z.test") == "failed"
    assert _handshake(loader, None) == "failed"  # (no name: ".cert.pem")
    assert reported == [
        ("error", f'cannot load certificate "{tmp_path}/z.test.cert.pem": (2: No such file '
                  "or directory) while SSL handshaking"),
        ("error", f'cannot load certificate "{tmp_path}/.cert.pem": (2: No such file '
                  "or directory) while SSL handshaking")]
    (tmp_path / "b.test.key.pem").write_bytes((tmp_path / "a.test.key.pem").read_bytes())
    assert _handshake(loader, "b.test") == "failed"
    assert reported[-1][0] == "error" and "b.test.key.pem" in reported[-1][1]
    assert _handshake(loader, "a.test") == "a.test"
