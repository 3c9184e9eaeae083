"""``fastgate token``: mint a token for testing, read one, or ask the gateway's verdict.

    fastgate token --alg HS256 --key SECRET [--key-encoding utf8|hex|base64|file]
                   [--claim k=v]... [--claim-json k=JSON]... [--header k=v]... [--exp SECONDS]
    fastgate token decode TOKEN
    fastgate token verify TOKEN -c FILE [--location URI] [--host NAME]

``--key`` takes the same encodings as ``auth_jwt_key``; for RS*, PS*, ES* and EdDSA it
is a PEM private key file (``--key-encoding file``, implied for those algorithms).
``--claim`` values are strings (``--claim sub=123`` is "123"); ``--claim-json`` takes
JSON (``--claim-json n=42``, ``--claim-json roles='["a","b"]'``). ``--header`` values
are strings too.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from fastgate.errors import FastgateError, KeyLoadError
from fastgate.jwt import ALGORITHMS, HMACKey, b64url_decode, b64url_encode, key_from_value

USAGE = """\
usage: fastgate token [--alg ALG] --key VALUE [--key-encoding utf8|hex|base64|file]
                      [--claim NAME=VALUE]... [--claim-json NAME=JSON]...
                      [--header NAME=VALUE]... [--exp SECONDS]
       fastgate token decode TOKEN
       fastgate token verify TOKEN -c FILE [--location URI] [--host NAME]
"""
_MIN_SECRET = {"HS256": 32, "HS384": 48, "HS512": 64}  # the hash's output, as PyJWT warns

_HASH: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_EC_SIZE = {"ES256": 32, "ES384": 48, "ES512": 66}


class TokenToolError(FastgateError):
    pass


def _short_secret(alg: str, key: str, encoding: str) -> int | None:
    """The HMAC key's length when shorter than the hash's output, else None."""
    if alg not in _MIN_SECRET:
        return None
    if encoding == "file":
        with open(key, "rb") as f:
            n = len(f.read())
    else:
        n = len(key_from_value(key, encoding).secret)
    return n if n < _MIN_SECRET[alg] else None


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
    digest = _HASH.get(alg[-3:], hashes.SHA256)
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


def _pair(text: str, flag: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name:
        raise TokenToolError(f'{flag} needs NAME=VALUE, got "{text}"')
    return name, value


def _json_pair(text: str) -> tuple[str, Any]:
    name, value = _pair(text, "--claim-json")
    try:
        return name, json.loads(value)
    except ValueError as e:
        raise TokenToolError(f'--claim-json {name}: not JSON ({e})') from None


def _segment(part: str, what: str) -> Any:
    try:
        return json.loads(b64url_decode(part.encode("ascii")))
    except (ValueError, UnicodeError) as e:
        raise TokenToolError(f"the {what} is not base64url-encoded JSON ({e})") from None


def decode(argv: list[str]) -> int:
    """``token decode TOKEN``: the header and the claims, not verified."""
    if len(argv) != 1:
        raise TokenToolError("decode takes one token")
    parts = argv[0].strip().split(".")
    if len(parts) != 3:
        raise TokenToolError(f"a JWS has three parts separated by dots, this has {len(parts)}")
    header, payload = _segment(parts[0], "header"), _segment(parts[1], "payload")
    print(json.dumps({"header": header, "payload": payload}, indent=2, ensure_ascii=False))
    exp = payload.get("exp") if isinstance(payload, dict) else None
    if isinstance(exp, (int, float)):
        left = exp - time.time()
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(exp))
        print(f"exp {when}: " + (f"expires in {int(left)} s" if left > 0
                                 else f"expired {int(-left)} s ago"), file=sys.stderr)
    print("(not verified: fastgate token verify TOKEN -c FILE checks it as the gateway would)",
          file=sys.stderr)
    return 0


def verify(argv: list[str]) -> int:
    """``token verify TOKEN -c FILE [--location URI] [--host NAME]``: the verdict the
    gateway gives this token in that location, with its reason."""
    from fastgate.config import ConfigError, load_config
    from fastgate.errors import JWTError
    from fastgate.proxy.auth_jwt import build_verifiers

    token, conf, uri, host = None, None, "/", None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-c", "--location", "--host"):
            if i + 1 >= len(argv):
                raise TokenToolError(f'option "{a}" needs a value')
            v = argv[i + 1]
            i += 2
            if a == "-c":
                conf = v
            elif a == "--location":
                uri = v
            else:
                host = v.lower()
        elif token is None and not a.startswith("-"):
            token, i = a, i + 1
        else:
            raise TokenToolError(f'unexpected argument "{a}"')
    if token is None or conf is None:
        raise TokenToolError("verify needs a token and -c FILE")
    try:
        config = load_config(conf)
    except ConfigError as e:
        raise TokenToolError(f"[emerg] {e}") from None
    servers = [s for s in config.servers if host is None or host in s.server_names]
    if not servers:
        raise TokenToolError(f'no server named "{host}" in {conf}')
    server = servers[0]
    loc = server.locations.find(uri)[0] or server.fallback
    where = f'location "{loc.pattern}"' if loc is not None and loc.pattern else "the server"
    if loc is None or loc.jwt is None:
        print(f"no check: {where} for {uri} does not verify tokens (auth_jwt off)")
        return 0
    if not loc.jwt.keys and loc.settings.auth_jwt_key_request:
        raise TokenToolError(f"{where} takes its keys from {loc.settings.auth_jwt_key_request}, "
                             "fetched by the running gateway: not checked here")
    verifier = build_verifiers([loc.jwt])[loc.jwt]
    try:
        t = verifier.verify_now(token.strip().encode())
    except JWTError as e:
        print(f"{e.status} {e.reason}" + (f" ({e.detail})" if e.detail else "")
              + f" — {where} of {conf}")
        return 1
    print(f"valid ({t.header.get('alg')}) for {where} of {conf}")
    print(json.dumps(t.payload, indent=2, ensure_ascii=False))
    if loc.settings.auth_jwt_require is not None:
        print("auth_jwt_require is evaluated per request, not here: "
              + ", ".join(v.source for v in loc.settings.auth_jwt_require.values),
              file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("decode", "verify"):
        try:
            return (decode if argv[0] == "decode" else verify)(argv[1:])
        except TokenToolError as e:
            print(f"fastgate: token {argv[0]}: {e}", file=sys.stderr)
            return 1
    return mint(argv)


def mint(argv: list[str]) -> int:
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
            elif a == "--claim-json":
                n, val = _json_pair(v)
                claims[n] = val
            elif a == "--header":
                n, val = _pair(v, "--header")
                headers[n] = val
            elif a == "--exp":
                if not (v.isascii() and v.lstrip("-").isdigit()):
                    raise TokenToolError(f'--exp needs a number of seconds, got "{v}"')
                exp = int(v)
            else:
                raise TokenToolError(f'invalid option "{a}"')
        if key is None:
            raise TokenToolError("--key is required")
        if encoding is None:
            encoding = "utf8" if alg.startswith("HS") else "file"
        sign = signer(alg, key, encoding)
        short = _short_secret(alg, key, encoding)
        if short is not None:
            print(f"fastgate: token: [warn] the {alg} key is {short} bytes; at least "
                  f"{_MIN_SECRET[alg]} (the hash's output) are recommended (RFC 7518 3.2)",
                  file=sys.stderr)
    except TokenToolError as e:
        print(f"fastgate: token: {e}", file=sys.stderr)
        print(USAGE, file=sys.stderr, end="")
        return 1
    payload = dict(claims)
    if exp is not None:
        payload["exp"] = int(time.time()) + exp
    print(encode({"alg": alg, "typ": "JWT", **headers}, payload, sign))
    return 0
