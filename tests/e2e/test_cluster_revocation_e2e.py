"""A fleet: three fastgate instances (one worker each) sharing a real redis-server through
fastgate_cluster. ``fastgate revoke`` reaches every gateway within a second; a revoked
token reaches no backend (pooled connections and the task path alike); the store killed
and started again mid-run fails no request, keeps every revocation, and the links come
back by themselves; a reload keeps the list."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from conftest import Backend, Gateway
from redis_server import RedisServer

SECRET = "fleet-secret-0123456789abcdef0123456789"
GATEWAYS = 3


def _config(port: int, redis: str, backend: int) -> str:
    return f"""error_log stderr info;
http {{ access_log off;
  fastgate_cluster {redis} timeout=300ms;
  limit_req_zone $jwt_claim_sub zone=users:1m rate=100000r/s sync;
  upstream be {{ server 127.0.0.1:{backend}; keepalive 8; }}
  server {{ listen 127.0.0.1:{port};
    location /api/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_revocation on;
                     limit_req zone=users burst=100000 nodelay;
                     proxy_set_header X-User $jwt_claim_sub; proxy_pass http://be; }}
    location = /status {{ fastgate_status; }}
  }} }}"""


def token(sub: str, jti: str, iat: float | None = None) -> str:
    claims: dict[str, Any] = {"sub": sub, "jti": jti, "exp": int(time.time()) + 600}
    if iat is not None:
        claims["iat"] = int(iat)
    return pyjwt.encode(claims, SECRET, algorithm="HS256")


def slow_store(redis: RedisServer, seconds: float) -> threading.Thread:
    """The store stops answering for ``seconds`` (it sleeps), in the background."""
    t = threading.Thread(target=redis.command, args=("DEBUG", "SLEEP", str(seconds)))
    t.start()
    return t


def told(redis: RedisServer) -> bool:
    """Whether a gateway has told the store how long the tokens it accepts live."""
    return not redis.command("GET", "fastgate:revoked:lifetime").startswith(b"$-1")


class Client:
    """One keep-alive connection to a gateway."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    def get(self, tok: str, path: str = "/api/x", body: bytes | None = None) -> int:
        headers = {"Authorization": f"Bearer {tok}"}
        try:
            self.c.request("POST" if body else "GET", path, body=body, headers=headers)
            r = self.c.getresponse()
            r.read()
            return r.status
        except (OSError, http.client.HTTPException):
            self.c.close()
            self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            raise

    def status_page(self) -> str:
        self.c.request("GET", "/status")
        r = self.c.getresponse()
        return r.read().decode()


def metric(page: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", page, re.M)
    assert m is not None, name
    return float(m.group(1))


def revoke(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastgate", "revoke", *args, "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)


def wait_until(check: Callable[[], bool], limit: float) -> float:
    """Seconds until ``check()`` held (AssertionError past ``limit``)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > limit:
            raise AssertionError(f"not within {limit}s")
        time.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
def fleet(tmp_path: Path, gateway, free, backends  # type: ignore[no-untyped-def]
          ) -> Iterator[tuple[RedisServer, Backend, list[Gateway], list[Client]]]:
    redis = RedisServer(tmp_path, free())
    backend = backends("be")
    gws = []
    for _ in range(GATEWAYS):
        port = free()
        gws.append(gateway(_config(port, redis.url, backend.port), port))
    clients = [Client(g.port) for g in gws]
    for c in clients:  # each link has loaded the (empty) list
        wait_until(lambda c=c: metric(c.status_page(), "fastgate_cluster_up") == 1, 5)
    yield redis, backend, gws, clients
    redis.stop()


def _reached(backend: Backend, tok: str) -> int:
    return sum(1 for r in backend.requests()
               for k, v in r["headers"] if k.lower() == "authorization" and tok in v)


def test_a_revocation_reaches_every_gateway_within_a_second(fleet) -> None:  # type: ignore[no-untyped-def]
    redis, backend, gws, clients = fleet
    stolen, other = token("alice", "t-1"), token("alice", "t-2")
    assert [c.get(stolen) for c in clients] == [200] * GATEWAYS
    wait_until(lambda: told(redis), 2)  # how long their tokens live (600 s here, no iat)
    done = revoke(gws[0].conf, "--jti", "t-1")
    assert done.returncode == 0, done.stderr
    assert 'revoked jti "t-1"' in done.stdout and f"({GATEWAYS} gateway worker" in done.stdout
    assert "(the longest a token the fleet accepted lives)" in done.stdout
    kept = json.loads(redis.command("HGET", "fastgate:revoked:jti", "t-1").split(b"\r\n")[1])
    assert 590 + 60 < kept["until"] - time.time() < 600 + 60 + 5  # until the token expires
    for c in clients:
        assert wait_until(lambda c=c: c.get(stolen) == 401, 1.0) < 1.0
    seen = _reached(backend, stolen)
    for c in clients:  # pooled upstream connections, and a body (the task path)
        assert c.get(stolen) == 401 and c.get(stolen, body=b"SECRET") == 401
        assert c.get(other) == 200
    assert _reached(backend, stolen) == seen  # nothing more of it got through
    for g in gws:  # (the error log is written a moment later)
        wait_until(lambda g=g: "JWT: token revoked" in g.stderr, 3)
    assert b"t-1" in redis.command("HKEYS", "fastgate:revoked:jti")

    # every token of a user issued before a logout
    before = token("bob", "b-1", time.time() - 30)
    assert all(c.get(before) == 200 for c in clients)
    done = revoke(gws[1].conf, "--sub", "bob")
    assert done.returncode == 0, done.stderr
    for c in clients:
        assert wait_until(lambda c=c: c.get(before) == 401, 1.0) < 1.0
        assert c.get(token("bob", "b-2")) == 401  # no iat: cannot show it came after
    time.sleep(1.1)  # iat counts seconds: a token of the next second is after the logout
    after = token("bob", "b-3", time.time())
    assert all(c.get(after) == 200 for c in clients)
    page = clients[2].status_page()
    assert metric(page, 'fastgate_revocation_entries{kind="jti"}') == 1
    assert metric(page, 'fastgate_revocation_entries{kind="sub"}') == 1
    assert metric(page, 'fastgate_jwt_total{outcome="revoked"}') >= 1


def test_the_store_going_away_fails_no_request_and_loses_no_revocation(fleet) -> None:  # type: ignore[no-untyped-def]
    redis, backend, gws, clients = fleet
    revoked, valid = token("carol", "c-1"), token("dave", "d-1")
    assert revoke(gws[0].conf, "--jti", "c-1").returncode == 0
    for c in clients:
        wait_until(lambda c=c: c.get(revoked) == 401, 1.0)

    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    latencies: list[float] = []

    def steady(port: int) -> None:
        c = Client(port)
        while not stop.is_set():
            try:
                began = time.monotonic()
                status = c.get(valid)
                latencies.append(time.monotonic() - began)
            except Exception as e:  # noqa: BLE001 — every failure is the test's finding
                failures.append(repr(e))
                continue
            answered[0] += 1
            if status != 200:
                failures.append(str(status))

    threads = [threading.Thread(target=steady, args=(g.port,)) for g in gws]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        slow_store(redis, 2.0).join()  # slow first: nothing waits on it either
        for g in gws:  # an outage of its own (the links time out), over once it answers
            wait_until(lambda g=g: g.stderr.count("reached again") == 1, 5)
        wait_until(lambda: told(redis), 2)  # how long the tokens live, told after it
        time.sleep(1.2)  # by every gateway (a probe each 0.5 s)
        redis.kill()
        for c in clients:
            wait_until(lambda c=c: metric(c.status_page(), "fastgate_revocation_stale") == 1, 3)
            assert c.get(revoked) == 401  # the last known list holds
        refused = revoke(gws[0].conf, "--jti", "c-2")
        assert refused.returncode == 1 and "nothing was revoked" in refused.stderr
        assert "Traceback" not in refused.stderr
        time.sleep(0.5)
        redis.start()  # empty: it kept nothing
        for c in clients:
            wait_until(lambda c=c: metric(c.status_page(), "fastgate_cluster_up") == 1, 5)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert failures == [] and answered[0] > 50
    assert max(latencies) < 1.2, max(latencies)  # none waited on the store (2 s asleep)
    for g in gws:  # two outages, each said once when it begins and once when it ends
        wait_until(lambda g=g: g.stderr.count("reached again") == 2, 3)
        assert g.stderr.count("out of reach") == 2, g.stderr
    for c in clients:  # the store lost it; the gateways did not
        assert c.get(revoked) == 401
    wait_until(lambda: told(redis), 2)  # and told again to the store that forgot it
    assert revoke(gws[2].conf, "--jti", "d-1").returncode == 0
    for c in clients:
        assert wait_until(lambda c=c: c.get(valid) == 401, 1.0) < 1.0
    page = clients[0].status_page()
    assert metric(page, "fastgate_cluster_store_errors_total") >= 1
    assert metric(page, "fastgate_revocation_stale") == 0


def test_a_reload_keeps_the_list(tmp_path: Path, gateway, free, backends) -> None:  # type: ignore[no-untyped-def]
    redis = RedisServer(tmp_path, free())
    try:
        backend = backends("be")
        port = free()
        g = gateway(_config(port, redis.url, backend.port), port)
        c = Client(port)
        wait_until(lambda: metric(c.status_page(), "fastgate_cluster_up") == 1, 5)
        tok = token("erin", "e-1")
        assert revoke(g.conf, "--jti", "e-1").returncode == 0
        wait_until(lambda: c.get(tok) == 401, 1.0)
        redis.kill()  # the new configuration's worker cannot load it from the store
        g.signal(signal.SIGHUP)
        wait_until(lambda: "reload" in g.stderr.lower() or "configuration" in g.stderr, 5)
        time.sleep(0.5)
        for _ in range(5):
            assert Client(port).get(tok) == 401
    finally:
        redis.stop()


def test_the_command_says_what_is_wrong(tmp_path: Path) -> None:
    plain = tmp_path / "plain.conf"
    plain.write_text("http { server { listen 127.0.0.1:1; } }")
    out = revoke(plain, "--jti", "x")
    assert out.returncode == 1 and 'has no "fastgate_cluster"' in out.stderr
    down = tmp_path / "down.conf"
    down.write_text("http { fastgate_cluster redis://127.0.0.1:1 timeout=200ms; }")
    out = revoke(down, "--sub", "x", "--before", "2026-01-01T00:00:00Z")
    assert out.returncode == 1 and "redis://127.0.0.1:1" in out.stderr
    assert "nothing was revoked" in out.stderr
    for args, words in ((["--jti", "a", "--sub", "b"], "one of --jti ID and --sub SUB"),
                        (["--jti", "a", "--before", "now"], "--before goes with --sub"),
                        (["--sub", "a", "--before", "soon"], 'invalid time "soon"'),
                        (["--sub", "a", "--before", "2026-01-01T00:00:00"], "no time zone"),
                        (["--jti", "a", "--ttl", "forever"], 'invalid --ttl "forever"'),
                        (["--jti", ""], "--jti is empty"),
                        (["--what"], 'invalid option: "--what"')):
        out = revoke(down, *args)
        assert out.returncode == 1 and words in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "fastgate", "revoke", "--jti", "a"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and '"-c FILE" is required' in out.stderr


def test_the_store_over_tls(tmp_path: Path, gateway, free, backends) -> None:  # type: ignore[no-untyped-def]
    """rediss:// with ca=FILE: the store's certificate checked against the file's CAs;
    a store whose certificate is not from them is out of reach, never used."""
    from helpers import self_signed

    cert, key = self_signed(tmp_path, "localhost")
    redis = RedisServer(tmp_path, free(), (cert, key))
    try:
        backend = backends("be")
        port = free()
        conf = _config(port, redis.url, backend.port).replace(
            "timeout=300ms;", f"timeout=300ms ca={cert};")
        g = gateway(conf, port)
        c = Client(port)
        wait_until(lambda: metric(c.status_page(), "fastgate_cluster_up") == 1, 5)
        tok = token("tls", "tls-1")
        assert c.get(tok) == 200
        done = revoke(g.conf, "--jti", "tls-1")
        assert done.returncode == 0, done.stderr
        assert wait_until(lambda: c.get(tok) == 401, 1.0) < 1.0
        other, _ = self_signed(tmp_path, "localhost", stem="other-")
        port2 = free()
        g2 = gateway(_config(port2, redis.url, backend.port).replace(
            "timeout=300ms;", f"timeout=300ms ca={other};"), port2)
        c2 = Client(port2)
        time.sleep(1.0)
        assert metric(c2.status_page(), "fastgate_cluster_up") == 0
        wait_until(lambda: "certificate verify failed" in g2.stderr, 3)
    finally:
        redis.stop()
