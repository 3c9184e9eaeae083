"""allow/deny and satisfy beside auth_jwt, in process on both engines and both exchange
paths (the harness's client is 127.0.0.1): what passes, and what never reaches the
upstream (issue #17, item 6)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from helpers import server_config_error
from scenario import ENGINES, PATHS, Scenario

SECRET = "access-secret-0123456789abcdef0123456"
HTTP = f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080; auth_jwt_key "{SECRET}";
  proxy_set_header X-Sub $jwt_claim_sub;
  location /all/ {{ allow 10.0.0.0/8; deny all; auth_jwt on; proxy_pass http://be; }}
  location /allin/ {{ allow 127.0.0.1; deny all; auth_jwt on; proxy_pass http://be; }}
  location /any/ {{ satisfy any; allow 127.0.0.0/8; deny all; auth_jwt on;
                   proxy_pass http://be; }}
  location /anyout/ {{ satisfy any; allow 10.0.0.0/8; deny all; auth_jwt on;
                      proxy_pass http://be; }}
  location /spoof/ {{ satisfy any; set_real_ip_from 192.0.2.1;
                     real_ip_header X-Forwarded-For; allow 10.0.0.0/8; deny all;
                     auth_jwt on; proxy_pass http://be; }}
  location /denyonly/ {{ deny 127.0.0.1; proxy_pass http://be; }}
  location /anyunnamed/ {{ satisfy any; allow 10.0.0.0/8; auth_jwt on;
                          proxy_pass http://be; }}
  location /anyrules/ {{ satisfy any; allow 10.0.0.0/8; proxy_pass http://be; }}
}}"""
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _token() -> str:
    return pyjwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, SECRET,
                        algorithm="HS256")


@pytest.fixture(params=[(e, p) for e in ENGINES for p in PATHS],
                ids=[f"{e}-{p}" for e in ENGINES for p in PATHS])
def run(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine, path = request.param

    def go(target: str, auth: str | None = None, extra: str = "") -> tuple[int, bytes]:
        head = f"GET {target} HTTP/1.1\r\nHost: a\r\n{extra}"
        if auth is not None:
            head += f"Authorization: Bearer {auth}\r\n"

        async def main() -> tuple[bytes, bytes]:
            sc = Scenario(tmp_path, engine, HTTP, path)
            try:
                return await sc.exchange((head + "\r\n").encode(), OK)
            finally:
                sc.close()

        client, upstream = asyncio.run(main())
        return int(client.split(b" ", 2)[1]), upstream

    return go


def test_satisfy_all_a_denied_address_is_403_even_with_a_token(run) -> None:  # type: ignore[no-untyped-def]
    assert run("/all/x", _token()) == (403, b"")
    assert run("/all/x") == (403, b"")


def test_satisfy_all_an_allowed_address_still_needs_its_token(run) -> None:  # type: ignore[no-untyped-def]
    assert run("/allin/x") == (401, b"")
    assert run("/allin/x", "forged." + _token()) == (401, b"")
    status, upstream = run("/allin/x", _token())
    assert status == 200 and b'X-Sub: "alice"\r\n' in upstream


def test_satisfy_any_an_allowed_address_passes_without_a_token(run) -> None:  # type: ignore[no-untyped-def]
    status, upstream = run("/any/x")
    assert status == 200 and b"X-Sub" not in upstream  # no token checked: no claims


def test_satisfy_any_a_denied_address_needs_a_valid_token(run) -> None:  # type: ignore[no-untyped-def]
    assert run("/anyout/x") == (401, b"")
    assert run("/anyout/x", "forged." + _token()) == (401, b"")
    status, upstream = run("/anyout/x", _token())
    assert status == 200 and b'X-Sub: "alice"\r\n' in upstream


def test_satisfy_any_an_address_no_rule_names_needs_a_valid_token(run) -> None:  # type: ignore[no-untyped-def]
    # (no "deny all": the rules say nothing of 127.0.0.1, which nginx's access handler
    # declines; the token decides — it used to pass as if an allow had named it)
    assert run("/anyunnamed/x") == (401, b"")
    assert run("/anyunnamed/x", "forged." + _token()) == (401, b"")
    status, upstream = run("/anyunnamed/x", _token())
    assert status == 200 and b'X-Sub: "alice"\r\n' in upstream


def test_satisfy_any_with_nothing_but_rules_that_name_no_one_goes_on(run) -> None:  # type: ignore[no-untyped-def]
    status, upstream = run("/anyrules/x")  # (every check declined: nginx lets it go on)
    assert status == 200 and upstream.startswith(b"GET /anyrules/x ")


def test_a_forwarded_address_from_an_untrusted_peer_grants_nothing(run) -> None:  # type: ignore[no-untyped-def]
    assert run("/spoof/x", extra="X-Forwarded-For: 10.0.0.1\r\n") == (401, b"")


def test_deny_without_auth(run) -> None:  # type: ignore[no-untyped-def]
    assert run("/denyonly/x") == (403, b"")


@pytest.mark.parametrize("body,message", [
    ("allow 10.0.0.300;", 'invalid parameter "10.0.0.300"'),
    ("deny unix:/run/x.sock;", 'invalid parameter "unix:/run/x.sock"'),
    ("satisfy some;", 'invalid value "some"'),
])
def test_refusals(tmp_path: Path, body: str, message: str) -> None:
    text = server_config_error(tmp_path, body)
    assert message in text and text.endswith(":2")


def test_a_unix_socket_client_matches_unix_and_all_only() -> None:
    """As nginx's: "unix:" (a listen unix: socket's client) matches allow/deny unix:
    and all, never an address or network; an address never matches unix:."""
    import ipaddress

    from fastgate.config.addresses import allows, matching_rule
    from fastgate.config.model import AccessRule

    unix, v4 = AccessRule(False, None, unix=True), ipaddress.ip_network("0.0.0.0/0")
    assert not allows("unix:", (unix,)) and allows("127.0.0.1", (unix,))
    assert allows("unix:", (AccessRule(False, v4), AccessRule(True, None, unix=True)))
    assert not allows("unix:", (AccessRule(True, v4), AccessRule(False, None)))
    # what satisfy any reads: the first rule naming the address, or none
    assert matching_rule("unix:", (AccessRule(True, v4),)) is None
    assert matching_rule("127.0.0.1", (unix, AccessRule(True, v4))) is True
    assert matching_rule("10.1.2.3", (AccessRule(False, v4),)) is False
