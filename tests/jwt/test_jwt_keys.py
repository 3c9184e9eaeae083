"""Key loading: auth_jwt_key encodings, PEM files and certificates, JWKS documents."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from helpers import b64u

from fastgate.jwt import (
    ECKey,
    EdDSAKey,
    HMACKey,
    KeyLoadError,
    RSAKey,
    Verifier,
    key_from_value,
    keys_from_file,
    keys_from_jwks,
)

NOW = 1_800_000_000.0


def _hs(secret: bytes) -> bytes:
    return pyjwt.encode({"sub": "x"}, secret, algorithm="HS256").encode()


@pytest.mark.parametrize(
    "value,encoding,secret",
    [
        ("your-256-bit-secret-key-here", "utf8", b"your-256-bit-secret-key-here"),
        ("0123456789abcdef0123456789abcdef", "hex", bytes.fromhex("0123456789abcdef0123456789abcdef")),
        ("eW91ci1zZWNyZXQta2V5", "base64", b"your-secret-key"),
        ("eW91ci1zZWNyZXQta2V5", "base64", b"your-secret-key"),
        ("/w==", "base64", b"\xff"),
        ("/w", "base64", b"\xff"),
    ],
)
def test_value_encodings(value: str, encoding: str, secret: bytes) -> None:
    key = key_from_value(value, encoding)
    assert isinstance(key, HMACKey) and key.secret == secret
    assert Verifier([key]).verify(_hs(secret), NOW).payload == {"sub": "x"}


@pytest.mark.parametrize(
    "value,encoding",
    [("0123xyz", "hex"), ("abc", "hex"), ("not base64!", "base64"), ("", "utf8"), ("", "hex"), ("x", "rot13"),
     # URL-safe alphabet is not standard base64: refused, not guessed at
     ("t-e-s-t", "base64"), ("_w", "base64")],
)
def test_bad_values(value: str, encoding: str) -> None:
    with pytest.raises(KeyLoadError):
        key_from_value(value, encoding)


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_pem_public_keys(tmp_path: Path, keypairs: dict[str, Any]) -> None:
    kinds = {"RSA": RSAKey, "P-256": ECKey, "P-384": ECKey, "P-521": ECKey, "Ed25519": EdDSAKey}
    for name, cls in kinds.items():
        (key,) = keys_from_file(_write(tmp_path, f"{name}.pem", keypairs[name].public_pem))
        assert isinstance(key, cls)


def test_certificate(tmp_path: Path, keypairs: dict[str, Any]) -> None:
    kp = keypairs["RSA"]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(kp.public)
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(kp.private, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    (key,) = keys_from_file(_write(tmp_path, "cert.pem", cert.public_bytes(Encoding.PEM)))
    tok = pyjwt.encode({"a": 1}, kp.private, algorithm="RS256").encode()
    assert Verifier([key]).verify(tok, NOW).payload == {"a": 1}


def test_private_key_pem_is_refused(tmp_path: Path, keypairs: dict[str, Any]) -> None:
    with pytest.raises(KeyLoadError, match="private key"):
        keys_from_file(_write(tmp_path, "priv.pem", keypairs["RSA"].private_pem))


def test_broken_pem(tmp_path: Path) -> None:
    with pytest.raises(KeyLoadError, match="not a PEM public key"):
        keys_from_file(_write(tmp_path, "b.pem", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = _write(tmp_path, "empty", b"")
    with pytest.raises(KeyLoadError, match=f'key file "{empty}" is empty'):
        keys_from_file(empty)
    with pytest.raises(KeyLoadError, match="cannot read"):
        keys_from_file(str(tmp_path / "nope"))


def test_other_file_is_hmac_secret(tmp_path: Path) -> None:
    (key,) = keys_from_file(_write(tmp_path, "secret", b"raw secret bytes\n"))
    assert isinstance(key, HMACKey) and key.secret == b"raw secret bytes\n"


def _jwks(keypairs: dict[str, Any]) -> dict:
    keys = []
    for name, kid in (("RSA", "r1"), ("P-256", "e1"), ("P-384", "e2"), ("P-521", "e3"), ("Ed25519", "o1")):
        pub = keypairs[name].public
        jwk = json.loads(pyjwt.algorithms.get_default_algorithms()[
            {"RSA": "RS256", "Ed25519": "EdDSA"}.get(name, "ES256")].to_jwk(pub))
        jwk["kid"] = kid
        keys.append(jwk)
    keys.append({"kty": "oct", "kid": "h1", "k": b64u(b"jwks-oct-secret-0123456789abcdef")})
    keys.append({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"})  # skipped: encryption
    keys.append({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"})  # skipped: curve
    return {"keys": keys}


def test_jwks_every_kty(tmp_path: Path, keypairs: dict[str, Any]) -> None:
    path = _write(tmp_path, "jwks.json", json.dumps(_jwks(keypairs)).encode())
    keys = keys_from_file(path)
    assert [k.kid for k in keys] == ["r1", "e1", "e2", "e3", "o1", "h1"]
    v = Verifier(keys)
    for alg, name, kid in (("RS256", "RSA", "r1"), ("PS512", "RSA", "r1"), ("ES256", "P-256", "e1"),
                           ("ES384", "P-384", "e2"), ("ES512", "P-521", "e3"), ("EdDSA", "Ed25519", "o1")):
        tok = pyjwt.encode({"k": kid}, keypairs[name].private, algorithm=alg, headers={"kid": kid})
        assert v.verify(tok.encode(), NOW).payload == {"k": kid}
    tok = pyjwt.encode({"k": "h1"}, b"jwks-oct-secret-0123456789abcdef", algorithm="HS256", headers={"kid": "h1"})
    assert v.verify(tok.encode(), NOW).payload == {"k": "h1"}


def test_single_jwk_file(tmp_path: Path, keypairs: dict[str, Any]) -> None:
    jwk = _jwks(keypairs)["keys"][0]
    (key,) = keys_from_file(_write(tmp_path, "one.json", json.dumps(jwk).encode()))
    assert isinstance(key, RSAKey) and key.kid == "r1"


@pytest.mark.parametrize(
    "doc,match",
    [
        ({"keys": "x"}, "no \"keys\" array"),
        ({"keys": []}, "no usable signing key"),
        ({"keys": [1]}, "not an object"),
        ({"keys": [{"kty": "EC", "crv": "P-256", "x": b64u(b"\x01" * 32), "y": b64u(b"\x02" * 32)}]}, "invalid EC key"),
        ({"keys": [{"kty": "EC", "crv": "P-256", "x": b64u(b"\x01" * 31), "y": b64u(b"\x02" * 32)}]}, "wrong length"),
        ({"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}]}, "not base64url"),
        ({"keys": [{"kty": "RSA", "e": "AQAB"}]}, 'missing "n"'),
        ({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64u(b"\x01" * 31)}]}, "invalid Ed25519"),
        ({"keys": [{"kty": "oct", "k": b64u(b"k"), "kid": 5}]}, "kid"),
        ({"keys": [{"kty": "oct", "k": b64u(b"k"), "alg": "RS256"}]}, "does not fit"),
        ({"keys": [{"kty": "XYZ"}]}, "skipped: kty 'XYZ'"),
    ],
)
def test_bad_jwks(doc: dict, match: str) -> None:
    with pytest.raises(KeyLoadError, match=match):
        keys_from_jwks(doc)
