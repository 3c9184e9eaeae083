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
