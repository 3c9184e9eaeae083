"""auth_delay: every 401 of the access phase waits, whichever check refused; a 403
and a pass do not (nginx's ngx_http_core_auth_delay). In process, both engines, both
exchange paths; the upstream never sees a refused request."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from helpers import server_config_error
from scenario import ENGINES, PATHS, Scenario

SECRET = "delay-secret-0123456789abcdef0123456789"
DELAY = 0.4


def _http(tmp_path: Path) -> str:
    # "bob:secret" in plain text: nginx's {PLAIN} scheme
    (tmp_path / "users").write_text("bob:{PLAIN}secret\n")
    return f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080; auth_jwt_key "{SECRET}"; auth_delay {int(DELAY * 1000)}ms;
  location /jwt/ {{ auth_jwt on; proxy_pass http://be; }}
  location /forbidden/ {{ auth_jwt on; auth_jwt_require $jwt_claim_admin error=403;
                         proxy_pass http://be; }}
  location /deny/ {{ deny all; proxy_pass http://be; }}
  location /basic/ {{ auth_basic "area"; auth_basic_user_file {tmp_path}/users;
                     proxy_pass http://be; }}
  location /any/ {{ satisfy any; deny all; auth_jwt on; proxy_pass http://be; }}
  location /nodelay/ {{ auth_delay 0; auth_jwt on; proxy_pass http://be; }}
}}"""


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _token(**claims: object) -> str:
    return pyjwt.encode({"sub": "alice", "exp": int(time.time()) + 600, **claims}, SECRET,
                        algorithm="HS256")


@pytest.fixture(params=[(e, p) for e in ENGINES for p in PATHS],
                ids=[f"{e}-{p}" for e in ENGINES for p in PATHS])
def run(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine, path = request.param

    def go(target: str, extra: str = "") -> tuple[int, float, bytes, bool]:
        head = f"GET {target} HTTP/1.1\r\nHost: a\r\n{extra}\r\n".encode()

        async def main() -> tuple[bytes, bytes, float, bool]:
            sc = Scenario(tmp_path, engine, _http(tmp_path), path)
            try:
                start = time.monotonic()
                client, upstream = await sc.exchange(head, OK)
                delayed = any("delaying unauthorized request" in m for _, m in sc.log)
                return client, upstream, time.monotonic() - start, delayed
            finally:
                sc.close()

        client, upstream, took, delayed = asyncio.run(main())
        return int(client.split(b" ", 2)[1]), took, upstream, delayed

    return go


def test_a_missing_or_forged_token_is_answered_after_the_delay(run) -> None:  # type: ignore[no-untyped-def]
    for extra in ("", f"Authorization: Bearer {_token()}x\r\n"):
        status, took, upstream, delayed = run("/jwt/a", extra)
        assert (status, upstream, delayed) == (401, b"", True)
        assert took >= DELAY


def test_a_wrong_password_and_satisfy_any_are_delayed_too(run) -> None:  # type: ignore[no-untyped-def]
    wrong = base64.b64encode(b"bob:guess").decode()
    status, took, upstream, delayed = run("/basic/a", f"Authorization: Basic {wrong}\r\n")
    assert (status, upstream, delayed) == (401, b"", True) and took >= DELAY
    status, took, upstream, delayed = run("/any/a")
    assert (status, upstream, delayed) == (401, b"", True) and took >= DELAY


def test_a_403_a_pass_and_auth_delay_0_are_not_delayed(run) -> None:  # type: ignore[no-untyped-def]
    status, _, upstream, delayed = run("/forbidden/a", f"Authorization: Bearer {_token()}\r\n")
    assert (status, upstream, delayed) == (403, b"", False)
    status, _, upstream, delayed = run("/deny/a")
    assert (status, upstream, delayed) == (403, b"", False)
    status, _, upstream, delayed = run("/jwt/a", f"Authorization: Bearer {_token()}\r\n")
    assert status == 200 and upstream.startswith(b"GET /jwt/a ") and not delayed
    good = base64.b64encode(b"bob:secret").decode()
    status, _, upstream, delayed = run("/basic/a", f"Authorization: Basic {good}\r\n")
    assert status == 200 and upstream.startswith(b"GET /basic/a ") and not delayed
    status, _, upstream, delayed = run("/nodelay/a")
    assert (status, upstream, delayed) == (401, b"", False)


def test_auth_delay_takes_nginx_times(tmp_path: Path) -> None:
    assert "invalid value" in server_config_error(tmp_path, "auth_delay soon;")
