"""Shared fixtures: key material for every algorithm family, generated once per run."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

sys.path.insert(0, os.path.dirname(__file__))

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


def _pair(private: Any) -> KeyPair:
    return KeyPair(private, private.public_key())


@pytest.fixture(scope="session")
def keypairs() -> dict[str, KeyPair]:
    """One key pair per asymmetric family, keyed by the algorithm prefix it serves."""
    return {
        "RSA": _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "P-256": _pair(ec.generate_private_key(ec.SECP256R1())),
        "P-384": _pair(ec.generate_private_key(ec.SECP384R1())),
        "P-521": _pair(ec.generate_private_key(ec.SECP521R1())),
        "Ed25519": _pair(ed25519.Ed25519PrivateKey.generate()),
    }


def family_of(alg: str) -> str:
    if alg.startswith(("RS", "PS")):
        return "RSA"
    return {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "EdDSA": "Ed25519"}[alg]


def b64u(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: Any, payload: Any, signature: bytes = b"") -> bytes:
    """A token from parts as given, with no signing: for malformed-input cases."""

    def part(p: Any) -> str:
        if isinstance(p, bytes):
            return b64u(p)
        return b64u(json.dumps(p, separators=(",", ":")).encode())

    return f"{part(header)}.{part(payload)}.{b64u(signature)}".encode()
