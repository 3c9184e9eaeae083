"""Helpers shared by the tests (importable; fixtures live in conftest.py)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization

HMAC_SECRET = b"fastgate-test-secret-0123456789abcdef-0123456789abcdef-0123456789"


@dataclass(frozen=True)
class KeyPair:
    private: Any
    public: Any

    @property
    def public_pem(self) -> bytes:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def private_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def dechunk(body: bytes) -> bytes:
    """A chunked body's data (chunk extensions ignored); an AssertionError when it does
    not end with its last chunk."""
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out += rest[:size]
        body = rest[size + 2:]
    raise AssertionError("the chunked body did not end")


def trailers(body: bytes) -> list[bytes]:
    """The trailer fields after a chunked body's last chunk (an AssertionError when it
    does not end with one)."""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            section, _, _ = rest.partition(b"\r\n\r\n")
            return [line for line in section.split(b"\r\n") if line]
        body = rest[size + 2:]
    raise AssertionError("the chunked body did not end")


def family_of(alg: str) -> str:
    if alg.startswith(("RS", "PS")):
        return "RSA"
    return {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "EdDSA": "Ed25519"}[alg]


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: Any, payload: Any, signature: bytes = b"") -> bytes:
    """A token from parts as given, with no signing: for malformed-input cases."""

    def part(p: Any) -> str:
        if isinstance(p, bytes):
            return b64u(p)
        return b64u(json.dumps(p, separators=(",", ":")).encode())

    return f"{part(header)}.{part(payload)}.{b64u(signature)}".encode()


def fuzz_examples(default: int) -> int:
    """Examples for a property test: the fixed short run of `make test`, or as many as
    `make fuzz` asks for through FASTGATE_FUZZ_EXAMPLES."""
    import os

    return int(os.environ.get("FASTGATE_FUZZ_EXAMPLES") or default)


def server_config_error(tmp_path: Any, body: str) -> str:
    """The ConfigError text for ``body`` on line 2 of a server block (it must fail)."""
    from fastgate.config import load_config
    from fastgate.config.errors import ConfigError

    path = tmp_path / "t.conf"
    path.write_text("http { server { listen 127.0.0.1:8080;\n" + body + " } }")
    try:
        load_config(str(path))
    except ConfigError as e:
        return str(e)
    raise AssertionError(f"{body!r} loaded")


def self_signed(tmp: Any, name: str = "localhost", kind: str = "ec",
                passphrase: bytes | None = None, stem: str = "") -> tuple[Any, Any]:
    """A self-signed certificate for ``name`` (``kind`` "ec" P-256 or "rsa" 2048) and
    its key, written as ``{stem}cert.pem`` and ``{stem}key.pem`` in ``tmp``; the key
    encrypted with ``passphrase`` when one is given."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    key: Any = (ec.generate_private_key(ec.SECP256R1()) if kind == "ec"
                else rsa.generate_private_key(public_exponent=65537, key_size=2048))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
            .sign(key, hashes.SHA256()))
    crt, pem = tmp / f"{stem}cert.pem", tmp / f"{stem}key.pem"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    encryption: Any = (serialization.BestAvailableEncryption(passphrase) if passphrase
                       else serialization.NoEncryption())
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8, encryption))
    return crt, pem


# RFC 7919's ffdhe2048 group, as "openssl genpkey -genparam -algorithm DH -pkeyopt
# dh_param:ffdhe2048" writes it (generating DH parameters takes minutes)
FFDHE2048_PEM = """\
-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


class Told:
    """A server engine's handler that keeps what it was told: heads and errors."""

    def __init__(self) -> None:
        self.heads: list[Any] = []
        self.errors: list[Any] = []

    def on_request(self, head: Any) -> None:
        self.heads.append(head)

    def on_body(self, data: bytes) -> None:
        pass

    def on_end(self) -> None:
        pass

    def on_error(self, error: Any) -> None:
        self.errors.append(error)

    def on_eof(self) -> None:
        pass
