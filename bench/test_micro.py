"""Micro benchmarks of the hot path, each beside its peers on the same token in the same run.

Per algorithm (one pytest-benchmark group each):
  fastgate-cold    Verifier.verify with the token cache off (full parse + crypto)
  fastgate-cached  Verifier.verify, token already verified (cache hit)
  pyjwt            jwt.decode with the same key and token
  raw              the bare primitive: hmac.digest, or cryptography's verify of the same
                   signature (DER-encoded once, outside the timing, for ECDSA)
bench/report.py turns the JSON into ratios.
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from fastgate.jwt import HMACKey, Verifier, b64url_decode, public_key_to_key

SECRET = b"bench-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef!!"
NOW = time.time()
PAYLOAD = {"sub": "user123", "role": "admin", "iss": "https://id.example.com",
           "exp": int(NOW) + 86400, "iat": int(NOW)}

_PRIVATE = {
    "RSA": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "P-256": ec.generate_private_key(ec.SECP256R1()),
    "Ed25519": ed25519.Ed25519PrivateKey.generate(),
}
ALGS = {"HS256": None, "HS512": None, "RS256": "RSA", "PS256": "RSA", "ES256": "P-256",
        "EdDSA": "Ed25519"}


def _raw(alg: str, token: bytes) -> Callable[[], Any]:
    signing_input, sig_b64 = token.rsplit(b".", 1)
    sig = b64url_decode(sig_b64)
    if alg.startswith("HS"):
        name = "sha" + alg[2:]
        return lambda: hmac.compare_digest(hmac.digest(SECRET, signing_input, name), sig)
    public = _PRIVATE[ALGS[alg]].public_key()
    if alg == "RS256":
        return lambda: public.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
    if alg == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return lambda: public.verify(sig, signing_input, pss, hashes.SHA256())
    if alg == "ES256":
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        algo = ec.ECDSA(hashes.SHA256())
        return lambda: public.verify(der, signing_input, algo)
    return lambda: public.verify(sig, signing_input)


def _setup(alg: str) -> tuple[bytes, Any, Any]:
    family = ALGS[alg]
    if family is None:
        token = pyjwt.encode(PAYLOAD, SECRET, algorithm=alg).encode()
        return token, HMACKey(SECRET), SECRET
    private = _PRIVATE[family]
    token = pyjwt.encode(PAYLOAD, private, algorithm=alg).encode()
    return token, public_key_to_key(private.public_key()), private.public_key()


@pytest.mark.parametrize("alg", list(ALGS))
@pytest.mark.parametrize("impl", ["fastgate-cold", "fastgate-cached", "pyjwt", "raw"])
def test_verify(benchmark: Any, alg: str, impl: str) -> None:
    token, key, peer_key = _setup(alg)
    benchmark.group = f"verify {alg}"
    benchmark.name = impl
    if impl == "fastgate-cold":
        v = Verifier([key], alg, cache_size=0)
        result = benchmark(v.verify, token, NOW)
        assert result.payload == PAYLOAD
    elif impl == "fastgate-cached":
        v = Verifier([key], alg)
        v.verify(token, NOW)
        result = benchmark(v.verify, token, NOW)
        assert result.payload == PAYLOAD and v.misses == 1
    elif impl == "pyjwt":
        assert benchmark(pyjwt.decode, token, peer_key, algorithms=[alg]) == PAYLOAD
    else:
        benchmark(_raw(alg, token))


def _std_b64url(seg: bytes) -> bytes:
    return base64.urlsafe_b64decode(seg + b"=" * (-len(seg) % 4))


@pytest.mark.parametrize("impl", ["fastgate", "stdlib"])
def test_base64url(benchmark: Any, impl: str) -> None:
    seg = pyjwt.encode(PAYLOAD, SECRET, algorithm="HS256").split(".")[1].encode()
    benchmark.group = "base64url decode (payload segment)"
    benchmark.name = impl
    fn = b64url_decode if impl == "fastgate" else _std_b64url
    assert benchmark(fn, seg) == _std_b64url(seg)


@pytest.mark.parametrize("impl", ["fastgate-claim_text", "json.dumps"])
def test_claim_extraction(benchmark: Any, impl: str) -> None:
    import json

    token = pyjwt.encode(PAYLOAD, SECRET, algorithm="HS256").encode()
    result = Verifier([HMACKey(SECRET)], "HS256").verify(token, NOW)
    benchmark.group = "claim extraction ($jwt_claim_sub on a cached token)"
    benchmark.name = impl
    if impl == "json.dumps":
        assert benchmark(lambda: json.dumps(result.payload["sub"])) == '"user123"'
    else:
        assert benchmark(result.claim_text, "sub") == '"user123"'


@pytest.mark.parametrize("impl", ["limit_req+limit_conn", "limit_req", "limit_req sync",
                                  "no limits"])
def test_preaccess_limits(benchmark: Any, impl: str, tmp_path: Any) -> None:
    """The pre-access phase's cost per request (issue #9: at most 2 us on top; issue
    #20: a zone the fleet shares at most 3 us over one it does not)."""
    from types import SimpleNamespace

    from fastgate.config import load_config
    from fastgate.ops.worker import Worker

    conf = tmp_path / "limits.conf"
    conf.write_text("""http { access_log off; fastgate_cluster redis://127.0.0.1:1;
      limit_req_zone $binary_remote_addr zone=r:10m rate=1000000r/s;
      limit_req_zone $binary_remote_addr zone=rs:10m rate=1000000r/s sync;
      limit_conn_zone $binary_remote_addr zone=c:10m;
      server { listen 127.0.0.1:1;
        location /limited/ { limit_req zone=r burst=1000000 nodelay; limit_conn c 1000000;
                             proxy_pass http://127.0.0.1:2; }
        location /req/ { limit_req zone=r burst=1000000 nodelay; proxy_pass http://127.0.0.1:2; }
        location /sync/ { limit_req zone=rs burst=1000000 nodelay;
                          proxy_pass http://127.0.0.1:2; }
        location /free/ { proxy_pass http://127.0.0.1:2; } } }""")
    worker = Worker(load_config(str(conf)))
    path = {"limit_req+limit_conn": "/limited/x", "limit_req": "/req/x",
            "limit_req sync": "/sync/x", "no limits": "/free/x"}
    loc, _ = worker.config.servers[0].locations.find(path[impl])

    def check() -> None:
        req = SimpleNamespace(remote_addr="203.0.113.7", token=None, limited=False,
                              conn_slots=None, limit_conn_status="", limit_req_status="",
                              memo={}, captures=())
        s = loc.settings
        if s.limit_req or s.limit_conn:
            assert worker.phases.limits.check(None, req, loc) == (0, 0.0)
            for table, key in req.conn_slots or ():
                table.release(key)

    benchmark.group = "pre-access limits (per request)"
    benchmark.name = impl
    benchmark(check)
