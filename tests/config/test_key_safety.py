"""Keys that would weaken the check are refused at load (issue #14, items 12-15): key
files that look like a key format but do not load never become HMAC secrets, weak RSA
keys and non-standard base64 fail with FILE:LINE, and an inner level's keys replace the
outer key set instead of adding to it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fastgate.config import ConfigError, load_config
from fastgate.errors import JWTError
from fastgate.proxy.auth_jwt import build_verifiers

SECRET = "outer-secret-0123456789abcdef0123456789"


def _load_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "t.conf"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    return str(info.value)


def _ec_jwk() -> dict:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(key))


@pytest.mark.parametrize("name,content,reason", [
    ("trailing-comma.json", lambda: json.dumps({"keys": [_ec_jwk()]})[:-2] + ",]}",
     "looks like JSON but does not parse"),
    ("bare-array.json", lambda: json.dumps([_ec_jwk()]), "is a JSON array"),
    ("other.json", lambda: '{"kid": "x"}', 'neither a JWKS ("keys") nor a JWK ("kty")'),
    ("broken.pem", lambda: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
     "not a PEM public key or certificate"),
])
@pytest.mark.parametrize("directive", ["auth_jwt_key_file {f}", "auth_jwt_key {f} file"])
def test_key_files_that_look_like_keys_must_load(tmp_path: Path, name: str, content, reason: str,
                                                 directive: str) -> None:
    (tmp_path / name).write_text(content())
    message = _load_error(tmp_path, "http {\n" + directive.format(f=name) + ";\n}")
    assert reason in message
    assert message.endswith(f"{tmp_path}/t.conf:2")


def test_a_der_certificate_is_refused_not_a_secret(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    (tmp_path / "key.der").write_bytes(key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    message = _load_error(tmp_path, "http {\nauth_jwt_key_file key.der;\n}")
    assert "holds DER" in message and message.endswith(":2")


def test_rsa_under_2048_bits_is_refused(tmp_path: Path) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    (tmp_path / "weak.pem").write_bytes(weak.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(weak))
    (tmp_path / "weak.json").write_text(json.dumps({"keys": [jwk]}))
    for name in ("weak.pem", "weak.json"):
        message = _load_error(tmp_path, f"http {{\nauth_jwt_key_file {name};\n}}")
        assert "RSA key of 1024 bits; at least 2048 are required" in message
        assert message.endswith(":2")


@pytest.mark.parametrize("value", ["t-e-s-t", "_w", "a b"])
def test_base64_keys_are_standard_base64(tmp_path: Path, value: str) -> None:
    message = _load_error(tmp_path, f'http {{\nauth_jwt_key "{value}" base64;\n}}')
    assert message == f"JWT: Failed to turn base64 key into binary in {tmp_path}/t.conf:2"


def test_a_short_secret_file_is_warned(tmp_path: Path) -> None:
    (tmp_path / "short.key").write_bytes(b"sixteen-bytes!!!")
    (tmp_path / "t.conf").write_text("http {\nauth_jwt_key_file short.key;\n}")
    config = load_config(str(tmp_path / "t.conf"))
    assert any("HMAC secret of 16 bytes" in w and w.endswith(":2") for w in config.warnings)


def _verifier_of(tmp_path: Path, inner: str, outer: str = f'auth_jwt_key "{SECRET}";'):
    (tmp_path / "t.conf").write_text(f"""http {{
      {outer}
      server {{ listen 127.0.0.1:1; location /in/ {{ auth_jwt on; {inner} }} }}
    }}""")
    config = load_config(str(tmp_path / "t.conf"))
    loc, _ = config.servers[0].locations.find("/in/x")
    assert loc is not None and loc.jwt is not None
    return build_verifiers([loc.jwt])[loc.jwt]


@pytest.mark.parametrize("inner", ["auth_jwt_key_file jwks.json;", "auth_jwt_key jwks.json file;",
                                   'auth_jwt_key "inner-secret-0123456789abcdef0123";',
                                   "auth_jwt_key_request http://127.0.0.1:1/jwks;"])
def test_inner_keys_replace_the_outer_key_set(tmp_path: Path, inner: str) -> None:
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [_ec_jwk()]}))
    v = _verifier_of(tmp_path, inner)
    outer_token = pyjwt.encode({"sub": "x"}, SECRET, algorithm="HS256").encode()
    with pytest.raises(JWTError):
        v.verify(outer_token, time.time())


def test_keys_named_at_one_level_add_up(tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [_ec_jwk()]}))
    v = _verifier_of(tmp_path, "", outer=f'auth_jwt_key "{SECRET}"; auth_jwt_key_file jwks.json;')
    outer_token = pyjwt.encode({"sub": "x"}, SECRET, algorithm="HS256").encode()
    assert v.verify(outer_token, time.time()).payload == {"sub": "x"}
