"""The Cython core: every algorithm, every rejection rule, the caches, and PyJWT as an
independent oracle."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from helpers import HMAC_SECRET, b64u, family_of, fuzz_examples, raw_token
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastgate.jwt import (
    ALGORITHMS,
    AlgorithmError,
    AudienceError,
    CriticalHeaderError,
    ExpiredError,
    HMACKey,
    IssuerError,
    JWTError,
    NotYetValidError,
    SignatureError,
    Token,
    TokenParseError,
    UnknownKeyError,
    Verifier,
    b64url_decode,
    public_key_to_key,
)

NOW = 1_800_000_000.25
SEC = int(NOW)
ASYMMETRIC = [a for a in ALGORITHMS if not a.startswith("HS")]
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_EC = ec.generate_private_key(ec.SECP256R1())
CURVE_ORDER_P256 = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class Ctx:
    """Mints tokens with PyJWT (an independent implementation) and builds verifiers."""

    def __init__(self, keypairs: dict[str, Any]) -> None:
        self.kp = keypairs

    def signing_key(self, alg: str) -> Any:
        return HMAC_SECRET if alg.startswith("HS") else self.kp[family_of(alg)].private

    def key(self, alg: str) -> Any:
        if alg.startswith("HS"):
            return HMACKey(HMAC_SECRET)
        return public_key_to_key(self.kp[family_of(alg)].public)

    def mint(self, alg: str, payload: dict | None = None, headers: dict | None = None) -> bytes:
        body = {"sub": "user123", "exp": SEC + 3600} if payload is None else payload
        return pyjwt.encode(body, self.signing_key(alg), algorithm=alg, headers=headers).encode()

    def resign(self, alg: str, header: Any, payload: Any) -> bytes:
        """Sign arbitrary header/payload bytes (not necessarily JSON) with ``alg``."""

        def part(p: Any) -> str:
            return b64u(p if isinstance(p, bytes) else json.dumps(p).encode())

        signing_input = f"{part(header)}.{part(payload)}".encode()
        algo = pyjwt.get_algorithm_by_name(alg)
        key = algo.prepare_key(self.signing_key(alg))
        return signing_input + b"." + b64u(algo.sign(signing_input, key)).encode()

    def verifier(self, alg: str, policy: str = "any", **kw: Any) -> Verifier:
        return Verifier([self.key(alg)], policy, **kw)


@pytest.fixture(scope="module")
def ctx(keypairs: dict[str, Any]) -> Ctx:
    return Ctx(keypairs)


# --- every algorithm verifies, under "any" and under its own name -------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("policy", ["any", "own"])
def test_valid_token_every_algorithm(ctx: Ctx, alg: str, policy: str) -> None:
    token = ctx.mint(alg, {"sub": "user123", "role": "admin", "exp": SEC + 60})
    result = ctx.verifier(alg, alg if policy == "own" else "any").verify(token, NOW)
    assert result.payload == {"sub": "user123", "role": "admin", "exp": SEC + 60}
    assert result.header["alg"] == alg
    assert json.loads(result.payload_json) == result.payload
    assert json.loads(result.header_json) == result.header
    assert result.claim_text("sub") == '"user123"'
    assert result.claim_text("exp") == str(SEC + 60)
    assert result.claim_text("missing") == ""


# --- the rejection table -------------------------------------------------------------------


def _ecdsa_der(ctx: Ctx) -> bytes:
    tok = ctx.mint("ES256")
    head, body, sig = tok.split(b".")
    raw = b64url_decode(sig)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    return head + b"." + body + b"." + b64u(der).encode()


def _ecdsa_rs(ctx: Ctx, r: int | None, s: int | None, size: int = 32) -> bytes:
    tok = ctx.mint("ES256")
    head, body, sig = tok.split(b".")
    raw = b64url_decode(sig)
    r0, s0 = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    r = r0 if r is None else r
    s = s0 if s is None else s
    forged = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return head + b"." + body + b"." + b64u(forged).encode()


def _hs_with_public_pem(ctx: Ctx, family: str, alg: str = "HS256") -> bytes:
    """The classic algorithm-confusion token: HMAC keyed with the public key's PEM."""
    pem = ctx.kp[family].public_pem
    header = {"alg": alg, "typ": "JWT"}
    body = b64u(b'{"sub":"x"}')
    signing_input = f"{b64u(json.dumps(header).encode())}.{body}".encode()
    sig = HMACKey(pem).sign(alg, signing_input)
    return signing_input + b"." + b64u(sig).encode()


def _none(alg_text: str, sig: bytes = b"") -> Callable[[Ctx], bytes]:
    return lambda c: raw_token({"alg": alg_text, "typ": "JWT"}, {"sub": "admin"}, sig)


def _replace_sig(tok: bytes, sig: bytes) -> bytes:
    return tok.rsplit(b".", 1)[0] + b"." + b64u(sig).encode()


def _swap_alg(ctx: Ctx, src: str, dst: str) -> bytes:
    """A token signed with ``src`` but whose header claims ``dst``."""
    head, body, sig = ctx.mint(src).split(b".")
    header = json.loads(b64url_decode(head))
    header["alg"] = dst
    return b64u(json.dumps(header).encode()).encode() + b"." + body + b"." + sig


HS = "HS256"
# (id, verifier's key algorithm, policy, token builder, expected error)
REJECT: list[tuple[str, str, str, Callable[[Ctx], bytes], type[JWTError]]] = [
    ("none-lower", HS, "any", _none("none"), AlgorithmError),
    ("none-title", HS, "any", _none("None"), AlgorithmError),
    ("none-upper", HS, "any", _none("NONE"), AlgorithmError),
    ("none-mixed", HS, "any", _none("nOnE"), AlgorithmError),
    ("none-with-signature", HS, "any", _none("none", b"x" * 32), AlgorithmError),
    ("none-under-HS256", HS, HS, _none("none"), AlgorithmError),
    ("none-rsa-key", "RS256", "any", _none("none"), AlgorithmError),
    ("hs256-rsa-pem-any", "RS256", "any", lambda c: _hs_with_public_pem(c, "RSA"), AlgorithmError),
    ("hs256-rsa-pem-rs256", "RS256", "RS256", lambda c: _hs_with_public_pem(c, "RSA"), AlgorithmError),
    ("hs256-rsa-pem-hs256", "RS256", "HS256", lambda c: _hs_with_public_pem(c, "RSA"), AlgorithmError),
    ("hs512-rsa-pem-any", "RS256", "any", lambda c: _hs_with_public_pem(c, "RSA", "HS512"), AlgorithmError),
    ("hs256-ec-pem-any", "ES256", "any", lambda c: _hs_with_public_pem(c, "P-256"), AlgorithmError),
    ("hs256-ed-pem-any", "EdDSA", "any", lambda c: _hs_with_public_pem(c, "Ed25519"), AlgorithmError),
    ("es256-der", "ES256", "any", _ecdsa_der, SignatureError),
    ("es256-r0-s0", "ES256", "any", lambda c: _ecdsa_rs(c, 0, 0), SignatureError),
    ("es256-r0", "ES256", "any", lambda c: _ecdsa_rs(c, 0, None), SignatureError),
    ("es256-s0", "ES256", "any", lambda c: _ecdsa_rs(c, None, 0), SignatureError),
    ("es256-r-n-s-n", "ES256", "any", lambda c: _ecdsa_rs(c, CURVE_ORDER_P256, CURVE_ORDER_P256), SignatureError),
    ("es256-r-plus-n", "ES256", "any", lambda c: _ecdsa_rs(c, None, None, 33), SignatureError),
    ("es256-short-sig", "ES256", "any", lambda c: _replace_sig(c.mint("ES256"), b"\x01" * 63), SignatureError),
    ("es384-with-p256-key", "ES256", "any", lambda c: c.mint("ES384"), AlgorithmError),
    ("es512-under-es256", "ES512", "ES256", lambda c: c.mint("ES512"), AlgorithmError),
    ("es512-sig-130", "ES512", "any", lambda c: _replace_sig(c.mint("ES512"), b"\x01" * 130), SignatureError),
    ("rs256-other-key", "RS256", "any", lambda c: pyjwt.encode({"a": 1}, OTHER_RSA, algorithm="RS256").encode(), SignatureError),
    ("es256-other-key", "ES256", "any", lambda c: pyjwt.encode({"a": 1}, OTHER_EC, algorithm="ES256").encode(), SignatureError),
    ("ps256-under-rs256", "RS256", "RS256", lambda c: c.mint("PS256"), AlgorithmError),
    ("rs256-sig-as-ps256", "RS256", "any", lambda c: _swap_alg(c, "RS256", "PS256"), SignatureError),
    ("ps256-sig-as-rs256", "RS256", "any", lambda c: _swap_alg(c, "PS256", "RS256"), SignatureError),
    ("rs256-sig-as-rs512", "RS256", "any", lambda c: _swap_alg(c, "RS256", "RS512"), SignatureError),
    ("rs256-short-sig", "RS256", "any", lambda c: _replace_sig(c.mint("RS256"), b"\x00" * 255), SignatureError),
    ("eddsa-zero-sig", "EdDSA", "any", lambda c: _replace_sig(c.mint("EdDSA"), b"\x00" * 64), SignatureError),
    ("eddsa-as-es256", "EdDSA", "any", lambda c: _swap_alg(c, "EdDSA", "ES256"), AlgorithmError),
    ("hs256-wrong-secret", HS, "any", lambda c: pyjwt.encode({"a": 1}, b"another-secret-of-thirty-two-bytes!!", algorithm="HS256").encode(), SignatureError),
    ("hs256-truncated-sig", HS, "any", lambda c: _replace_sig(c.mint(HS), b64url_decode(c.mint(HS).split(b".")[2])[:31]), SignatureError),
    ("hs256-empty-sig", HS, "any", lambda c: c.mint(HS).rsplit(b".", 1)[0] + b".", SignatureError),
    ("hs256-as-hs512", HS, "any", lambda c: _swap_alg(c, "HS256", "HS512"), SignatureError),
    ("hs384-under-hs256", HS, HS, lambda c: c.mint("HS384"), AlgorithmError),
    ("tampered-payload", HS, "any", lambda c: c.mint(HS).split(b".")[0] + b"." + b64u(b'{"sub":"admin","exp":9999999999}').encode() + b"." + c.mint(HS).split(b".")[2], SignatureError),
    ("header-padding", HS, "any", lambda c: c.mint(HS).replace(b".", b"=.", 1), TokenParseError),
    ("signature-padding", HS, "any", lambda c: c.mint(HS) + b"=", TokenParseError),
    ("plus-char", HS, "any", lambda c: c.mint(HS)[:-3] + b"+" + c.mint(HS)[-2:], TokenParseError),
    ("slash-char", HS, "any", lambda c: c.mint(HS)[:-3] + b"/" + c.mint(HS)[-2:], TokenParseError),
    ("space-inside", HS, "any", lambda c: c.mint(HS)[:10] + b" " + c.mint(HS)[10:], TokenParseError),
    ("trailing-newline", HS, "any", lambda c: c.mint(HS) + b"\n", TokenParseError),
    ("non-ascii-byte", HS, "any", lambda c: c.mint(HS)[:10] + b"\xc3\xa9" + c.mint(HS)[12:], TokenParseError),
    ("noncanonical-tail", HS, "any", lambda c: c.mint(HS)[:-1] + b"B", TokenParseError),  # 32-byte sig: 43 chars, tail bits set
    ("len-mod-4-is-1", HS, "any", lambda c: c.mint(HS) + b"AA", TokenParseError),
    ("one-segment", HS, "any", lambda c: c.mint(HS).split(b".")[0], TokenParseError),
    ("two-segments", HS, "any", lambda c: c.mint(HS).rsplit(b".", 1)[0], TokenParseError),
    ("four-segments", HS, "any", lambda c: c.mint(HS) + b".AAAA", TokenParseError),
    ("five-dots", HS, "any", lambda c: b"a.b.c.d.e.f", TokenParseError),
    ("empty", HS, "any", lambda c: b"", TokenParseError),
    ("dots-only", HS, "any", lambda c: b"..", TokenParseError),
    ("empty-header", HS, "any", lambda c: b"." + c.mint(HS).split(b".", 1)[1], TokenParseError),
    ("empty-payload", HS, "any", lambda c: c.resign(HS, {"alg": HS}, b"").replace(b"..", b"..", 1), TokenParseError),
    ("header-not-json", HS, "any", lambda c: c.resign(HS, b"{alg:HS256}", {"a": 1}), TokenParseError),
    ("header-array", HS, "any", lambda c: c.resign(HS, ["HS256"], {"a": 1}), TokenParseError),
    ("header-string", HS, "any", lambda c: c.resign(HS, "HS256", {"a": 1}), TokenParseError),
    ("header-no-alg", HS, "any", lambda c: c.resign(HS, {"typ": "JWT"}, {"a": 1}), TokenParseError),
    ("header-alg-number", HS, "any", lambda c: c.resign(HS, {"alg": 256}, {"a": 1}), TokenParseError),
    ("header-alg-null", HS, "any", lambda c: c.resign(HS, {"alg": None}, {"a": 1}), TokenParseError),
    ("header-alg-unknown", HS, "any", lambda c: c.resign(HS, {"alg": "HS1024"}, {"a": 1}), AlgorithmError),
    ("header-alg-lowercase", HS, "any", lambda c: c.resign(HS, {"alg": "hs256"}, {"a": 1}), AlgorithmError),
    ("header-invalid-utf8", HS, "any", lambda c: c.resign(HS, b'{"alg":"HS256","x":"\xff"}', {"a": 1}), TokenParseError),
    ("crit-exp", HS, "any", lambda c: c.mint(HS, headers={"crit": ["exp"], "exp": 1}), CriticalHeaderError),
    ("crit-b64", HS, "any", lambda c: c.resign(HS, {"alg": HS, "crit": ["b64"], "b64": True}, {"a": 1}), CriticalHeaderError),
    ("crit-empty", HS, "any", lambda c: c.resign(HS, {"alg": HS, "crit": []}, {"a": 1}), CriticalHeaderError),
    ("kid-number", HS, "any", lambda c: c.resign(HS, {"alg": HS, "kid": 7}, {"a": 1}), TokenParseError),
    ("payload-not-json", HS, "any", lambda c: c.resign(HS, {"alg": HS}, b"not json"), TokenParseError),
    ("payload-array", HS, "any", lambda c: c.resign(HS, {"alg": HS}, [1, 2]), TokenParseError),
    ("payload-number", HS, "any", lambda c: c.resign(HS, {"alg": HS}, 42), TokenParseError),
    ("payload-null", HS, "any", lambda c: c.resign(HS, {"alg": HS}, None), TokenParseError),
    ("payload-invalid-utf8", HS, "any", lambda c: c.resign(HS, {"alg": HS}, b'{"sub":"\xc3"}'), TokenParseError),
    ("payload-nan", HS, "any", lambda c: c.resign(HS, {"alg": HS}, b'{"exp":NaN}'), TokenParseError),
    ("payload-infinity", HS, "any", lambda c: c.resign(HS, {"alg": HS}, b'{"x":Infinity}'), TokenParseError),
    ("payload-deep-nesting", HS, "any", lambda c: c.resign(HS, {"alg": HS}, b"[" * 100000 + b"]" * 100000), TokenParseError),
    ("exp-string", HS, "any", lambda c: c.mint(HS, {"exp": str(SEC + 60)}), TokenParseError),
    ("exp-true", HS, "any", lambda c: c.mint(HS, {"exp": True}), TokenParseError),
    ("exp-false", HS, "any", lambda c: c.mint(HS, {"exp": False}), TokenParseError),
    ("exp-null", HS, "any", lambda c: c.mint(HS, {"exp": None}), TokenParseError),
    ("exp-list", HS, "any", lambda c: c.mint(HS, {"exp": [SEC + 60]}), TokenParseError),
    ("exp-1e400", HS, "any", lambda c: c.resign(HS, {"alg": HS}, b'{"exp":1e400}'), TokenParseError),
    ("exp-past", HS, "any", lambda c: c.mint(HS, {"exp": SEC - 3600}), ExpiredError),
    ("exp-one-second-ago", HS, "any", lambda c: c.mint(HS, {"exp": SEC - 1}), ExpiredError),
    ("exp-half-second-ago", HS, "any", lambda c: c.mint(HS, {"exp": SEC - 0.5}), ExpiredError),
    ("exp-huge-negative", HS, "any", lambda c: c.mint(HS, {"exp": -(10**400)}), ExpiredError),
    ("exp-zero", HS, "any", lambda c: c.mint(HS, {"exp": 0}), ExpiredError),
    ("nbf-future", HS, "any", lambda c: c.mint(HS, {"nbf": SEC + 3600}), NotYetValidError),
    ("nbf-next-second", HS, "any", lambda c: c.mint(HS, {"nbf": SEC + 1}), NotYetValidError),
    ("nbf-string", HS, "any", lambda c: c.mint(HS, {"nbf": str(SEC)}), TokenParseError),
    ("nbf-bool", HS, "any", lambda c: c.mint(HS, {"nbf": False}), TokenParseError),
    ("nbf-null", HS, "any", lambda c: c.mint(HS, {"nbf": None}), TokenParseError),
    ("nbf-object", HS, "any", lambda c: c.mint(HS, {"nbf": {}}), TokenParseError),
]


@pytest.mark.parametrize(
    "key_alg,policy,build,error", [r[1:] for r in REJECT], ids=[r[0] for r in REJECT]
)
def test_rejected(ctx: Ctx, key_alg: str, policy: str, build: Callable, error: type) -> None:
    token = build(ctx)
    verifier = ctx.verifier(key_alg, policy)
    with pytest.raises(error):
        verifier.verify(token, NOW)
    # a refusal is never remembered as a success
    with pytest.raises(error):
        verifier.verify(token, NOW)
    assert len(verifier) == 0


@pytest.mark.parametrize(
    "key_alg,policy,build,error", [r[1:] for r in REJECT], ids=[r[0] for r in REJECT]
)
def test_check_now_gives_the_refusal_it_does_not_raise(ctx: Ctx, key_alg: str, policy: str,
                                                       build: Callable, error: type) -> None:
    """The request path's form: the same refusal as ``verify_now`` raises, returned (no
    traceback made), never remembered."""
    token = build(ctx)
    verifier = ctx.verifier(key_alg, policy)
    for _ in range(2):
        refused = verifier.check(token, NOW)
        assert type(refused) is error and refused.__traceback__ is None
    assert len(verifier) == 0


def test_check_now_gives_a_valid_token_and_remembers_it(ctx: Ctx) -> None:
    import time

    v = ctx.verifier(HS)
    token = ctx.mint(HS, {"sub": "a", "exp": int(time.time()) + 60})
    first = v.check_now(token)
    assert type(first) is Token and first.payload["sub"] == "a"
    assert v.check_now(token) is first and v.hits == 1 and len(v) == 1
    assert type(v.check_now(ctx.mint(HS, {"exp": int(time.time()) - 60}))) is ExpiredError


def test_table_is_large_enough() -> None:
    assert len(REJECT) >= 60


ACCEPT: list[tuple[str, dict, float]] = [
    ("no-exp", {"sub": "a"}, 0),
    ("exp-this-second", {"exp": SEC}, 0),
    ("exp-float-this-second", {"exp": SEC + 0.1}, 0),
    ("exp-next-second", {"exp": SEC + 1}, 0),
    ("exp-huge", {"exp": 10**400}, 0),
    ("exp-within-leeway", {"exp": SEC - 30}, 30),
    ("nbf-now", {"nbf": SEC}, 0),
    ("nbf-past", {"nbf": SEC - 100}, 0),
    ("nbf-float-past", {"nbf": SEC - 0.5}, 0),
    ("nbf-within-leeway", {"nbf": SEC + 20}, 30),
    ("empty-payload-object", {}, 0),
    ("unicode-claims", {"name": "Zoë ✓", "exp": SEC + 5}, 0),
]


@pytest.mark.parametrize("payload,leeway", [a[1:] for a in ACCEPT], ids=[a[0] for a in ACCEPT])
def test_accepted_boundaries(ctx: Ctx, payload: dict, leeway: float) -> None:
    result = ctx.verifier(HS, leeway=leeway).verify(ctx.mint(HS, payload), NOW)
    assert result.payload == payload


def test_crit_in_header_reason(ctx: Ctx) -> None:
    with pytest.raises(CriticalHeaderError) as info:
        ctx.verifier(HS).verify(ctx.mint(HS, headers={"crit": ["x"], "x": 1}), NOW)
    assert info.value.reason == "JWT: unsupported critical header"


def test_reasons_match_the_module() -> None:
    assert TokenParseError.reason == "JWT: failed to parse jwt"
    assert AlgorithmError.reason == "JWT: invalid algorithm"
    assert SignatureError.reason == "JWT: invalid signature"
    assert ExpiredError.reason == "JWT: the jwt has expired"


def test_input_types(ctx: Ctx) -> None:
    token = ctx.mint(HS)
    v = ctx.verifier(HS)
    assert v.verify(token.decode(), NOW).payload["sub"] == "user123"
    assert v.verify(bytearray(token), NOW).payload["sub"] == "user123"
    with pytest.raises(TokenParseError):
        v.verify("é." + token.decode(), NOW)


# --- key sets: kid selection, rotation ----------------------------------------------------


def test_kid_selection_and_fallback(ctx: Ctx) -> None:
    a = HMACKey(b"a" * 32, kid="a")
    b = HMACKey(b"b" * 32, kid="b")
    anon = HMACKey(b"c" * 32)
    v = Verifier([a, b])
    tok_b = pyjwt.encode({"x": 1}, b"b" * 32, algorithm="HS256", headers={"kid": "b"}).encode()
    assert v.verify(tok_b, NOW).payload == {"x": 1}
    tok_c = pyjwt.encode({"x": 1}, b"c" * 32, algorithm="HS256", headers={"kid": "zz"}).encode()
    with pytest.raises(UnknownKeyError):
        v.verify(tok_c, NOW)
    # a key without kid is tried when no kid matches
    assert Verifier([a, anon]).verify(tok_c, NOW).payload == {"x": 1}
    # no kid in the token: every key that fits the algorithm is tried
    tok_nokid = pyjwt.encode({"x": 2}, b"b" * 32, algorithm="HS256").encode()
    assert v.verify(tok_nokid, NOW).payload == {"x": 2}
    # a kid naming the wrong key never falls through to the right one
    tok_lie = pyjwt.encode({"x": 3}, b"b" * 32, algorithm="HS256", headers={"kid": "a"}).encode()
    with pytest.raises(SignatureError):
        v.verify(tok_lie, NOW)


def test_set_keys_drops_cached_decisions(ctx: Ctx) -> None:
    old = HMACKey(b"o" * 32, kid="old")
    new = HMACKey(b"n" * 32, kid="new")
    v = Verifier([old])
    tok = pyjwt.encode({"x": 1}, b"o" * 32, algorithm="HS256", headers={"kid": "old"}).encode()
    assert v.verify(tok, NOW)
    v.set_keys([new])
    with pytest.raises(UnknownKeyError):
        v.verify(tok, NOW)


def test_jwk_alg_restricts_key(keypairs: dict) -> None:
    key = public_key_to_key(keypairs["RSA"].public, alg="RS256")
    assert key.algorithms == frozenset({"RS256"})
    tok = pyjwt.encode({"x": 1}, keypairs["RSA"].private, algorithm="PS256").encode()
    with pytest.raises(AlgorithmError):
        Verifier([key]).verify(tok, NOW)


def test_verifier_arguments() -> None:
    with pytest.raises(ValueError):
        Verifier([HMACKey(b"k")], "none")
    with pytest.raises(ValueError):
        Verifier([HMACKey(b"k")], "HS257")
    with pytest.raises(ValueError):
        Verifier([HMACKey(b"k")], leeway=-1)
    with pytest.raises(TypeError):
        Verifier(["not a key"])


# --- the verified-token cache --------------------------------------------------------------


def test_cache_hit_returns_same_result_and_counts(ctx: Ctx) -> None:
    v = ctx.verifier("ES256")
    tok = ctx.mint("ES256")
    first = v.verify(tok, NOW)
    assert (v.hits, v.misses) == (0, 1)
    assert v.verify(tok, NOW) is first
    assert (v.hits, v.misses) == (1, 1)


def test_cache_never_serves_after_exp(ctx: Ctx) -> None:
    v = ctx.verifier(HS)
    tok = ctx.mint(HS, {"exp": SEC + 10})
    v.verify(tok, NOW)
    assert v.verify(tok, SEC + 10.99).payload["exp"] == SEC + 10  # same second as exp: valid
    with pytest.raises(ExpiredError):
        v.verify(tok, SEC + 11.0)
    assert len(v) == 0


def test_cache_respects_leeway_window(ctx: Ctx) -> None:
    v = ctx.verifier(HS, leeway=5)
    tok = ctx.mint(HS, {"exp": SEC + 10})
    v.verify(tok, NOW)
    assert v.verify(tok, SEC + 15.5)
    with pytest.raises(ExpiredError):
        v.verify(tok, SEC + 16)


def test_cache_respects_nbf_when_clock_goes_back(ctx: Ctx) -> None:
    v = ctx.verifier(HS)
    tok = ctx.mint(HS, {"nbf": SEC})
    v.verify(tok, NOW)
    with pytest.raises(NotYetValidError):
        v.verify(tok, SEC - 1.0)


def test_cache_is_bounded_lru(ctx: Ctx) -> None:
    v = ctx.verifier(HS, cache_size=3)
    toks = [ctx.mint(HS, {"i": i}) for i in range(4)]
    for t in toks[:3]:
        v.verify(t, NOW)
    v.verify(toks[0], NOW)  # touch 0: 1 is now the least recently used
    v.verify(toks[3], NOW)
    assert len(v) == 3
    hits = v.hits
    v.verify(toks[0], NOW)
    v.verify(toks[3], NOW)
    assert v.hits == hits + 2
    v.verify(toks[1], NOW)  # evicted: a miss
    assert v.hits == hits + 2


def test_cache_clock_gives_a_touched_entry_a_second_chance_only_once(ctx: Ctx) -> None:
    v = ctx.verifier(HS, cache_size=2)
    a, b, c, d = (ctx.mint(HS, {"i": i}) for i in range(4))
    v.verify(a, NOW)
    v.verify(b, NOW)
    v.verify(a, NOW)  # a used: the hand passes it and takes b
    v.verify(c, NOW)
    hits = v.hits
    v.verify(a, NOW)
    assert v.hits == hits + 1
    v.verify(d, NOW)  # a's second chance was spent on c's insertion, used again since
    v.verify(c, NOW)  # c (never read) went first
    assert v.hits == hits + 1 and len(v) == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.integers(0, 5), st.sampled_from([0.0, 20.0, -20.0])),
                    max_size=40),
       size=st.integers(1, 4))
def test_cache_stays_bounded_and_right_under_any_sequence(ctx: Ctx, ops: list, size: int) -> None:
    """Hits, misses, entries dropped for their validity (nbf/exp around the clock) and
    stored again: the cache never holds more than its size and never answers for another
    token or outside a token's validity."""
    toks = [ctx.mint(HS, {"i": i, "nbf": SEC - 10, "exp": SEC + 10}) for i in range(6)]
    v = ctx.verifier(HS, cache_size=size)
    for i, shift in ops:
        try:
            got = v.verify(toks[i], NOW + shift)
        except (ExpiredError, NotYetValidError):
            assert shift != 0.0
        else:
            assert shift == 0.0 and got.payload["i"] == i
        assert len(v) <= size


def test_token_keeps_claim_texts_and_parses_the_payload_on_demand(ctx: Ctx) -> None:
    v = ctx.verifier(HS)
    tok = ctx.mint(HS, {"sub": "u1", "role": "admin", "n": 7, "exp": SEC + 60})
    t = v.verify(tok, NOW)
    assert t.claim_text("role") == '"admin"'
    assert t.claim_text("sub") == '"u1"' and t.claim_text("n") == "7"
    assert t.claim_text("missing") == ""
    again = v.verify(tok, NOW)
    assert again is t
    assert again.claim_text("role") is t.claim_text("role")
    assert again.claim_text("n") is t.claim_text("n")
    assert t.payload == {"sub": "u1", "role": "admin", "n": 7, "exp": SEC + 60}
    assert t.payload is t.payload


def test_verify_now_reads_the_wall_clock(ctx: Ctx) -> None:
    import time

    v = ctx.verifier(HS)
    now = int(time.time())
    assert v.verify_now(ctx.mint(HS, {"sub": "a", "exp": now + 60})).payload["sub"] == "a"
    with pytest.raises(ExpiredError):
        v.verify_now(ctx.mint(HS, {"exp": now - 60}))
    with pytest.raises(NotYetValidError):
        v.verify_now(ctx.mint(HS, {"nbf": now + 60}))


def test_cache_off(ctx: Ctx) -> None:
    v = ctx.verifier(HS, cache_size=0)
    tok = ctx.mint(HS)
    assert v.verify(tok, NOW) is not v.verify(tok, NOW)
    assert len(v) == 0


# --- PyJWT as an oracle ---------------------------------------------------------------------

PAYLOADS = [
    {"sub": "user123", "role": "admin", "exp": SEC + 3600},
    {"sub": 42, "scopes": ["a", "b"], "nested": {"k": [1, 2.5, None, True]}},
    {"name": "Zoë", "emoji": "✓", "nbf": SEC - 10},
    {},
    {"exp": SEC + 1, "nbf": SEC, "iat": SEC},
]


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_differential_against_pyjwt(ctx: Ctx, alg: str, payload: dict) -> None:
    token = ctx.mint(alg, payload)
    ours = ctx.verifier(alg).verify(token, NOW)
    public = HMAC_SECRET if alg.startswith("HS") else ctx.kp[family_of(alg)].public
    theirs = pyjwt.api_jws.decode_complete(token, public, algorithms=[alg])
    assert ours.payload == json.loads(theirs["payload"])
    assert ours.header == theirs["header"]


def test_b64url_decode_matches_stdlib() -> None:
    import base64

    for n in range(0, 70):
        data = bytes(range(n))
        enc = base64.urlsafe_b64encode(data).rstrip(b"=")
        assert b64url_decode(enc) == data
        assert b64url_decode(enc.decode()) == data
    for bad in ["A", "AB==", "A+B_", "a/bc", "AB C", "AAB", "AAAAA", "AC"]:
        with pytest.raises(ValueError):
            b64url_decode(bad)


# --- property tests ------------------------------------------------------------------------


def _mutate(token: bytes, data: st.DataObject) -> bytes:
    ops = data.draw(st.lists(st.tuples(st.sampled_from("fidx"), st.integers(0, 10**6),
                                       st.integers(0, 255)), min_size=1, max_size=4))
    buf = bytearray(token)
    for op, pos, byte in ops:
        if not buf:
            buf.append(byte)
            continue
        i = pos % len(buf)
        if op == "f":
            buf[i] ^= (byte or 1)
        elif op == "i":
            buf.insert(i, byte)
        elif op == "d":
            del buf[i]
        else:
            buf[i] = data.draw(st.sampled_from(b"ABCabc019-_.="))
    return bytes(buf)


@pytest.mark.fuzz
@settings(max_examples=fuzz_examples(300), deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), alg=st.sampled_from(["HS256", "HS512", "RS256", "PS256", "ES256", "EdDSA"]))
def test_mutated_token_rejected_or_same_as_pyjwt(ctx: Ctx, data: st.DataObject, alg: str) -> None:
    token = ctx.mint(alg, {"sub": "user123", "exp": SEC + 3600, "role": "admin"})
    mutated = _mutate(token, data)
    public = HMAC_SECRET if alg.startswith("HS") else ctx.kp[family_of(alg)].public
    verifier = ctx.verifier(alg)
    checked = verifier.check(mutated, NOW)  # (the same decision: returned, not raised)
    try:
        ours = verifier.verify(mutated, NOW)
    except JWTError as e:
        assert type(checked) is type(e)
        return
    assert checked is ours  # (the first decision, remembered)
    theirs = pyjwt.decode(mutated, public, algorithms=[alg], options={"verify_exp": False})
    assert ours.payload == theirs


@pytest.mark.fuzz
@settings(max_examples=fuzz_examples(500), deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=300) | st.text(max_size=200).map(lambda s: s.encode()))
def test_arbitrary_bytes_only_raise_jwterror(ctx: Ctx, junk: bytes) -> None:
    for alg in ("HS256", "ES256"):
        try:
            ctx.verifier(alg).verify(junk, NOW)
        except JWTError:
            pass


@pytest.mark.fuzz
@settings(max_examples=fuzz_examples(300), deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.dictionaries(st.sampled_from(["alg", "kid", "crit", "typ", "x"]),
                           st.none() | st.booleans() | st.integers() | st.text(max_size=8)
                           | st.sampled_from(ALGORITHMS + ("none",))),
    payload=st.dictionaries(st.sampled_from(["exp", "nbf", "sub"]),
                            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                            | st.text(max_size=5)),
)
def test_structured_junk_only_raises_jwterror(ctx: Ctx, header: dict, payload: dict) -> None:
    token = raw_token(header, payload, b"\x00" * 32)
    with pytest.raises(JWTError):
        ctx.verifier(HS).verify(token, NOW)


# --- issuer and audience (auth_jwt_issuer, auth_jwt_audience) ----------------------------------


@pytest.mark.parametrize(
    "claims,ok",
    [({"iss": "a", "aud": "x"}, True), ({"iss": "b", "aud": ["y", "x"]}, True),
     ({"iss": "c", "aud": "x"}, False), ({"aud": "x"}, False), ({"iss": "a"}, False),
     ({"iss": "a", "aud": ["y"]}, False), ({"iss": ["a"], "aud": "x"}, False),
     ({"iss": "a", "aud": [1, "x"]}, True), ({"iss": "a", "aud": None}, False)],
)
def test_issuer_and_audience(ctx: Ctx, claims: dict, ok: bool) -> None:
    v = Verifier([HMACKey(HMAC_SECRET)], "HS256", issuers=["a", "b"], audiences=["x"])
    tok = ctx.resign(HS, {"alg": HS}, claims)  # PyJWT would refuse to mint some of these
    if ok:
        assert v.verify(tok, NOW).payload == claims
    else:
        with pytest.raises((IssuerError, AudienceError)):
            v.verify(tok, NOW)
        assert len(v) == 0
