"""``fastgate token``: mint a token for testing.

    fastgate token --alg HS256 --key SECRET [--key-encoding utf8|hex|base64|file]
                   [--claim k=v]... [--header k=v]... [--exp SECONDS]

``--key`` takes the same encodings as ``auth_jwt_key``; for RS*, PS*, ES* and EdDSA it
is a PEM private key file (``--key-encoding file``, implied for those algorithms).
A claim value that parses as JSON is used as JSON (``--claim n=42``, ``--claim
roles='["a","b"]'``), anything else as a string.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from fastgate.errors import KeyLoadError
from fastgate.jwt import ALGORITHMS, HMACKey, b64url_encode, key_from_value

USAGE = """\
usage: fastgate token [--alg ALG] --key VALUE [--key-encoding utf8|hex|base64|file]
                      [--claim NAME=VALUE]... [--header NAME=VALUE]... [--exp SECONDS]
"""

_HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_EC_SIZE = {"ES256": 32, "ES384": 48, "ES512": 66}


class TokenToolError(Exception):
    pass


def encode(header: dict[str, Any], payload: dict[str, Any], sign: Any) -> str:
    h = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    p = b64url_encode(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = h + b"." + p
    return (signing_input + b"." + b64url_encode(sign(signing_input))).decode()


def signer(alg: str, key_value: str, encoding: str) -> Any:
    if alg.startswith("HS"):
        if encoding == "file":
            try:
                with open(key_value, "rb") as f:
                    secret = f.read()
            except OSError as e:
                raise TokenToolError(f'cannot read key file "{key_value}": {e.strerror}') from None
            key = HMACKey(secret)
        else:
            try:
                key = key_from_value(key_value, encoding)
            except KeyLoadError as e:
                raise TokenToolError(str(e)) from None
        return lambda msg: key.sign(alg, msg)
    try:
        with open(key_value, "rb") as f:
            pem = f.read()
    except OSError as e:
        raise TokenToolError(f'cannot read private key "{key_value}": {e.strerror}') from None
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise TokenToolError(f'"{key_value}" is not an unencrypted PEM private key ({e})') from None
    digest = _HASH.get(alg[-3:])
    if alg.startswith("RS") and isinstance(private, rsa.RSAPrivateKey):
        return lambda msg: private.sign(msg, padding.PKCS1v15(), digest())
    if alg.startswith("PS") and isinstance(private, rsa.RSAPrivateKey):
        pss = padding.PSS(mgf=padding.MGF1(digest()), salt_length=digest().digest_size)
        return lambda msg: private.sign(msg, pss, digest())
    if alg.startswith("ES") and isinstance(private, ec.EllipticCurvePrivateKey):
        size = _EC_SIZE[alg]
        if (private.curve.key_size + 7) // 8 != size:
            raise TokenToolError(f"{alg} needs a key on its own curve, not {private.curve.name}")

        def sign_ec(msg: bytes) -> bytes:
            r, s = decode_dss_signature(private.sign(msg, ec.ECDSA(digest())))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")

        return sign_ec
    if alg == "EdDSA" and isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign
    raise TokenToolError(f"the key in {key_value} cannot sign {alg}")


def _pair(text: str, flag: str) -> tuple[str, Any]:
    name, eq, value = text.partition("=")
    if not eq or not name:
        raise TokenToolError(f'{flag} needs NAME=VALUE, got "{text}"')
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def main(argv: list[str]) -> int:
    alg = "HS256"
    key: str | None = None
    encoding: str | None = None
    claims: dict[str, Any] = {}
    headers: dict[str, Any] = {}
    exp: int | None = None
    try:
        i = 0
        while i < len(argv):
            a = argv[i]
            if a in ("-h", "--help"):
                print(USAGE, end="")
                return 0
            if i + 1 >= len(argv):
                raise TokenToolError(f'option "{a}" needs a value' if a.startswith("-")
                                     else f'unexpected argument "{a}"')
            v = argv[i + 1]
            i += 2
            if a == "--alg":
                if v not in ALGORITHMS:
                    raise TokenToolError(f'unknown algorithm "{v}" ({", ".join(ALGORITHMS)})')
                alg = v
            elif a == "--key":
                key = v
            elif a == "--key-encoding":
                if v not in ("utf8", "hex", "base64", "file"):
                    raise TokenToolError(f'invalid key encoding "{v}"')
                encoding = v
            elif a == "--claim":
                n, val = _pair(v, "--claim")
                claims[n] = val
            elif a == "--header":
                n, val = _pair(v, "--header")
                headers[n] = val
            elif a == "--exp":
                if not v.lstrip("-").isdigit():
                    raise TokenToolError(f'--exp needs a number of seconds, got "{v}"')
                exp = int(v)
            else:
                raise TokenToolError(f'invalid option "{a}"')
        if key is None:
            raise TokenToolError("--key is required")
        if encoding is None:
            encoding = "utf8" if alg.startswith("HS") else "file"
        sign = signer(alg, key, encoding)
    except TokenToolError as e:
        print(f"fastgate: token: {e}", file=sys.stderr)
        print(USAGE, file=sys.stderr, end="")
        return 1
    payload = dict(claims)
    if exp is not None:
        payload["exp"] = int(time.time()) + exp
    print(encode({"alg": alg, "typ": "JWT", **headers}, payload, sign))
    return 0
