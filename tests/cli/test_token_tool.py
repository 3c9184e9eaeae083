"""``fastgate token decode`` and ``fastgate token verify`` (issue #15): the tool a user
reaches for instead of jwt.io, giving the gateway's own verdict and reason."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jwt as pyjwt
import pytest

SECRET = "a-secret-of-thirty-two-bytes-or-more-0123"


def tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastgate", "token", *args],
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    c = tmp_path / "g.conf"
    c.write_text(f"""http {{ access_log off;
  server {{ listen 127.0.0.1:1; server_name api.example.com;
    auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
    location /api/ {{ auth_jwt on; return 204; }}
    location /open/ {{ return 204; }} }}
  server {{ listen 127.0.0.1:1; server_name other.example.com;
    auth_jwt_key "another-secret-of-thirty-two-bytes-000"; auth_jwt_alg HS256;
    location / {{ auth_jwt on; return 204; }} }} }}
""")
    return c


def test_decode_shows_header_and_claims() -> None:
    token = pyjwt.encode({"sub": "u1", "exp": int(time.time()) - 10}, SECRET, "HS256",
                         headers={"kid": "k1"})
    run = tool("decode", token)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["header"]["kid"] == "k1" and out["payload"]["sub"] == "u1"
    assert "expired" in run.stderr and "not verified" in run.stderr


@pytest.mark.parametrize("token,message", [
    ("abc", "three parts"),
    ("e30.!!!.x", "payload is not base64url-encoded JSON"),
])
def test_decode_says_what_is_wrong(token: str, message: str) -> None:
    run = tool("decode", token)
    assert run.returncode == 1 and message in run.stderr and "Traceback" not in run.stderr


def test_verify_gives_the_gateways_verdict(conf: Path) -> None:
    good = pyjwt.encode({"sub": "u1", "exp": int(time.time()) + 60}, SECRET, "HS256")
    run = tool("verify", good, "-c", str(conf), "--location", "/api/x")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith('valid (HS256) for location "/api/"')
    expired = pyjwt.encode({"sub": "u1", "exp": int(time.time()) - 60}, SECRET, "HS256")
    run = tool("verify", expired, "-c", str(conf), "--location", "/api/x")
    assert run.returncode == 1 and run.stdout.startswith("401 JWT: the jwt has expired")
    forged = pyjwt.encode({"sub": "u1"}, "not-the-secret-at-all-but-long-enough!!", "HS256")
    run = tool("verify", forged, "-c", str(conf), "--location", "/api/x")
    assert run.returncode == 1 and "invalid signature" in run.stdout
    # another server, with its own key: the first server's token is refused there
    run = tool("verify", good, "-c", str(conf), "--host", "other.example.com")
    assert run.returncode == 1 and "invalid signature" in run.stdout
    run = tool("verify", good, "-c", str(conf), "--location", "/open/x")
    assert run.returncode == 0 and "does not verify tokens" in run.stdout


def test_verify_reports_a_bad_configuration(tmp_path: Path) -> None:
    c = tmp_path / "bad.conf"
    c.write_text("http { nonsense; }\n")
    run = tool("verify", "a.b.c", "-c", str(c))
    assert run.returncode == 1 and f'unknown directive "nonsense" in {c}:1' in run.stderr
