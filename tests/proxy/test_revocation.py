"""auth_jwt_revocation: a verified token on the worker's revocation list (by jti, or by
sub for tokens issued before the entry's time) is refused with 401 "JWT: token
revoked" and reaches no upstream. In process, both engines, both exchange paths; the
list is the worker's copy (fastgate.proxy.revocation), filled here as the cluster link
fills it. And the list itself: entries, their decoding, expiry, merging."""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scenario import ENGINES, PATHS, Scenario

from fastgate.proxy.revocation import FOREVER, JTI, SUB, Denylist, Entry, EntryError

SECRET = "revocation-secret-0123456789abcdef0123"
HTTP = f"""
fastgate_cluster redis://127.0.0.1:1;
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080; auth_jwt_key "{SECRET}";
  location /api/ {{ auth_jwt on; auth_jwt_revocation on;
                   proxy_set_header X-User $jwt_claim_sub; proxy_pass http://be; }}
  location /open/ {{ auth_jwt on; proxy_pass http://be; }}
}}"""
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _token(key: str = SECRET, **claims: object) -> str:
    return pyjwt.encode({"exp": int(time.time()) + 600, **claims}, key, algorithm="HS256")


@pytest.fixture(params=[(e, p) for e in ENGINES for p in PATHS],
                ids=[f"{e}-{p}" for e in ENGINES for p in PATHS])
def ask(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine, path = request.param

    def go(target: str, token: str, entries: list[Entry], body: bytes = b""
           ) -> tuple[int, bytes, list[str]]:
        head = (f"{'POST' if body else 'GET'} {target} HTTP/1.1\r\nHost: a\r\n"
                f"Authorization: Bearer {token}\r\nX-User: admin\r\n"
                + (f"Content-Length: {len(body)}\r\n" if body else "") + "\r\n").encode()

        async def main() -> tuple[bytes, bytes, list[str]]:
            sc = Scenario(tmp_path, engine, HTTP, path)
            try:
                for e in entries:
                    sc.worker.denylist.add(e)
                client, upstream = await sc.exchange(head + body, OK)
                return client, upstream, [m for _, m in sc.log]
            finally:
                sc.close()

        client, upstream, log = asyncio.run(main())
        return int(client.split(b" ", 2)[1]), upstream, log

    return go


def _later(seconds: float = 600) -> float:
    return time.time() + seconds


def test_a_revoked_jti_is_refused_and_reaches_nothing(ask) -> None:  # type: ignore[no-untyped-def]
    token = _token(sub="alice", jti="t-1")
    status, upstream, log = ask("/api/x", token, [Entry(JTI, "t-1", _later())])
    assert status == 401 and upstream == b""
    assert "JWT: token revoked" in log
    status, upstream, _ = ask("/api/x", token, [Entry(JTI, "t-1", _later())], b"SECRET")
    assert status == 401 and upstream == b""  # with a body: the task path's read first


def test_other_tokens_pass_and_an_expired_entry_no_longer_counts(ask) -> None:  # type: ignore[no-untyped-def]
    status, upstream, _ = ask("/api/x", _token(sub="alice", jti="t-2"),
                              [Entry(JTI, "t-1", _later())])
    assert status == 200 and b'x-user: "alice"' in upstream.lower()
    assert b"admin" not in upstream
    status, _, _ = ask("/api/x", _token(sub="alice", jti="t-1"),
                       [Entry(JTI, "t-1", time.time() - 1)])
    assert status == 200


def test_revocation_is_per_location(ask) -> None:  # type: ignore[no-untyped-def]
    status, _, _ = ask("/open/x", _token(sub="alice", jti="t-1"), [Entry(JTI, "t-1", _later())])
    assert status == 200  # auth_jwt_revocation is off there


def test_a_sub_is_refused_for_tokens_issued_before_its_time(ask) -> None:  # type: ignore[no-untyped-def]
    now = time.time()
    entry = [Entry(SUB, "bob", _later(), now)]
    for claims, expected in (({"iat": int(now) - 60}, 401),
                             ({}, 401),  # no iat: it cannot show it came after
                             ({"iat": "yesterday"}, 401),
                             ({"iat": int(now) + 5}, 200)):
        status, upstream, _ = ask("/api/x", _token(sub="bob", **claims), entry)
        assert status == expected, claims
        assert (upstream == b"") == (expected == 401)


def test_a_numeric_sub_matches_its_text(ask) -> None:  # type: ignore[no-untyped-def]
    status, upstream, _ = ask("/api/x", _token(sub=42), [Entry(SUB, "42", _later(), _later())])
    assert status == 401 and upstream == b""


def test_a_forged_token_is_refused_for_its_signature_not_looked_up(ask) -> None:  # type: ignore[no-untyped-def]
    forged = _token("another-key-0123456789abcdef0123456789", sub="alice", jti="t-1")
    status, upstream, log = ask("/api/x", forged, [Entry(JTI, "t-1", _later())])
    assert status == 401 and upstream == b""
    assert "JWT: invalid signature" in log and "JWT: token revoked" not in log


def test_an_accepted_token_tells_how_long_tokens_live(tmp_path: Path) -> None:
    async def main() -> tuple[float, float]:
        sc = Scenario(tmp_path, "httptools", HTTP, "callback")
        try:
            now = int(time.time())
            head = (f"GET /open/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
                    f"{_token(sub='a', iat=now - 100, exp=now + 500)}\r\n\r\n").encode()
            await sc.exchange(head, OK)
            unchecked = sc.worker.denylist.longest  # revocation off there: not learnt
            head = (f"GET /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
                    f"{_token(sub='b', iat=now - 100, exp=now + 500)}\r\n\r\n").encode()
            await sc.exchange(head, OK)
            return unchecked, sc.worker.denylist.longest
        finally:
            sc.close()

    unchecked, longest = asyncio.run(main())
    assert unchecked == 0.0 and longest == 600.0


# --- the list ------------------------------------------------------------------------------


def test_the_longest_lifetime() -> None:
    d = Denylist()
    d.learn({"exp": 1300, "iat": 1000}, 1100.0, 0.0)
    assert d.longest == 300.0
    d.learn({"exp": 1200, "iat": 1000}, 1100.0, 0.0)  # shorter: kept the longest
    assert d.longest == 300.0
    d.learn({"exp": 1600}, 1100.0, 30.0)  # no iat: from now, leeway included
    assert d.longest == 530.0
    d.learn({"exp": 1600, "iat": 5000}, 1100.0, 0.0)  # an iat in the future: from now
    assert d.longest == 530.0
    d.learn({"sub": "x"}, 1100.0, 0.0)  # no exp: a revocation must never expire
    assert d.longest == FOREVER and Entry.decode(Entry(JTI, "a", FOREVER).encode())


def test_entries_only_widen() -> None:
    d = Denylist()
    d.add(Entry(SUB, "bob", 200.0, 100.0))
    d.add(Entry(SUB, "bob", 150.0, 50.0))  # an older message: changes nothing
    assert d.sub["bob"] == (100.0, 200.0)
    d.add(Entry(JTI, "t", 10.0))
    d.add(Entry(JTI, "t", 5.0))
    assert d.jti["t"] == 10.0


def test_a_merge_keeps_what_the_store_lost_until_it_expires() -> None:
    d = Denylist()
    d.add(Entry(JTI, "kept", 1000.0))
    d.add(Entry(JTI, "old", 10.0))
    d.merge([Entry(SUB, "bob", 1000.0, 5.0), Entry(JTI, "gone", 20.0)], now=50.0)
    assert d.jti == {"kept": 1000.0} and d.sub == {"bob": (5.0, 1000.0)}
    assert bool(d) and not Denylist()


def test_an_entry_round_trips() -> None:
    for e in (Entry(JTI, "a\"b", 12.5), Entry(SUB, "ü", 30.0, 20.0)):
        assert Entry.decode(e.encode()) == e
        assert Entry.decode(e.encode().encode()) == e


@pytest.mark.parametrize("raw", [
    b"", b"[]", b"{}", b'{"kind":"jti","id":"","until":1}', b'{"kind":"x","id":"a","until":1}',
    b'{"kind":"jti","id":"a","until":"1"}', b'{"kind":"jti","id":"a","until":true}',
    b'{"kind":"sub","id":"a","until":1}', b'{"kind":"jti","id":"a","until":NaN}',
    b'{"kind":"jti","id":5,"until":1}', b"\xff\xfe",
])
def test_what_is_not_an_entry_is_said_so(raw: bytes) -> None:
    with pytest.raises(EntryError):
        Entry.decode(raw)


@given(st.one_of(st.binary(max_size=80), st.builds(lambda d: json.dumps(d).encode(),
                 st.dictionaries(st.sampled_from(["kind", "id", "until", "before"]),
                                 st.one_of(st.none(), st.booleans(), st.integers(),
                                           st.floats(), st.text(max_size=5)), max_size=4))))
def test_decoding_anything_is_an_entry_or_an_entry_error(raw: bytes) -> None:
    try:
        e = Entry.decode(raw)
    except EntryError:
        return
    assert e.kind in (JTI, SUB) and e.id


@given(st.dictionaries(st.sampled_from(["jti", "sub", "iat", "exp"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                                 st.text(max_size=4), st.lists(st.integers(), max_size=2)),
                       max_size=4))
def test_checking_any_payload_is_a_verdict(payload: dict[str, object]) -> None:
    d = Denylist()
    d.add(Entry(JTI, "1", 1e12))
    d.add(Entry(SUB, "1", 1e12, 1e9))

    def is_one(v: object) -> bool:  # "1", or the number 1 (JSON writes it "1")
        return (isinstance(v, str) and v == "1") or (type(v) is int and v == 1)

    iat = payload.get("iat")
    after = type(iat) in (int, float) and math.isfinite(iat) and iat >= 1e9  # type: ignore[arg-type]
    expected = is_one(payload.get("jti")) or (is_one(payload.get("sub")) and not after)
    assert d.revoked(payload, 1e9) is expected
