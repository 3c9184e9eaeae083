"""Shared fixtures: key material for every algorithm family, generated once per run."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

sys.path.insert(0, os.path.dirname(__file__))

from helpers import KeyPair  # noqa: E402


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
