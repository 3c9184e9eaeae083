"""Upstream balancing and failover, server selection, error_page, try_files, return,
the command line's start-up errors and reload."""

from __future__ import annotations

import collections
import http.client
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SECRET = "routing-test-secret-0123456789abcdef"


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def test_weighted_round_robin_and_failover(backends, gateway, free) -> None:  # type: ignore[no-untyped-def]
    a, b = backends("a"), backends("b")
    dead = free()
    port = free()
    gateway(f"""http {{
      upstream pool {{ server 127.0.0.1:{a.port} weight=3; server 127.0.0.1:{b.port};
                      server 127.0.0.1:{dead} max_fails=1 fail_timeout=30s; }}
      server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://pool; }} }} }}""", port)
    statuses = [get(port, f"/r{i}")[0] for i in range(40)]
    assert statuses == [200] * 40  # the dead server's connect error goes to the next one
    counts = collections.Counter(r["backend"] for r in a.requests() + b.requests())
    assert counts["a"] + counts["b"] == 40
    assert 26 <= counts["a"] <= 34  # weight 3 : 1, give or take the failover


def test_backup_server(backends, gateway, free) -> None:  # type: ignore[no-untyped-def]
    main, spare = backends("main"), backends("spare")
    port = free()
    gateway(f"""http {{
      upstream pool {{ server 127.0.0.1:{main.port}; server 127.0.0.1:{spare.port} backup; }}
      server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://pool; }} }} }}""", port)
    for i in range(5):
        assert get(port, f"/x{i}")[0] == 200
    assert len(main.requests()) == 5 and spare.requests() == []
    main.stop()
    assert get(port, "/after")[0] == 200
    assert [r["target"] for r in spare.requests()] == ["/after"]


def test_all_down_is_502(gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    d1, d2 = free(), free()
    gateway(f"""http {{
      upstream pool {{ server 127.0.0.1:{d1}; server 127.0.0.1:{d2}; }}
      server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://pool; }} }} }}""", port)
    assert get(port, "/")[0] == 502
    assert get(port, "/")[0] == 502  # both marked down: "no live upstreams"


def test_server_name_selection(backends, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gateway(f"""http {{
      server {{ listen 127.0.0.1:{port}; server_name default.test; return 200 default; }}
      server {{ listen 127.0.0.1:{port}; server_name api.test; return 200 api; }}
      server {{ listen 127.0.0.1:{port}; server_name *.wild.test; return 200 wild; }}
      server {{ listen 127.0.0.1:{port}; server_name ~^re-\\d+\\.test$; return 200 regex; }} }}""",
            port)
    for host, body in [("api.test", b"api"), ("API.test:80", b"api"), ("x.wild.test", b"wild"),
                       ("re-42.test", b"regex"), ("other.test", b"default"),
                       ("api.test.", b"api"), ("x.wild.test.:8080", b"wild")]:
        assert get(port, "/", {"Host": host})[2] == body, host
    # an empty Host is invalid (nginx: "client sent invalid host header")
    assert get(port, "/", {"Host": ""})[0] == 400


def test_error_page_forms(backends, gateway, free) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    port = free()
    gateway(f"""http {{ server {{ listen 127.0.0.1:{port};
      auth_jwt_key "{SECRET}";
      location /keep/ {{ auth_jwt on; error_page 401 /denied; proxy_pass http://127.0.0.1:{be.port}; }}
      location /as200/ {{ auth_jwt on; error_page 401 =200 /denied; proxy_pass http://127.0.0.1:{be.port}; }}
      location /named/ {{ auth_jwt on; error_page 401 = @fallback; proxy_pass http://127.0.0.1:{be.port}; }}
      location /ext/ {{ auth_jwt on; error_page 401 https://login.example.com/; proxy_pass http://127.0.0.1:{be.port}; }}
      location = /denied {{ return 200 "please log in"; }}
      location @fallback {{ proxy_pass http://127.0.0.1:{be.port}; }}
      location /missing {{ return 404; }}
      error_page 404 /nf;
      location = /nf {{ return 200 "custom not found"; }}
    }} }}""", port)
    status, headers, body = get(port, "/keep/x")
    assert (status, body) == (401, b"please log in")
    assert headers["www-authenticate"].startswith("Bearer")
    assert get(port, "/as200/x")[:3:2] == (200, b"please log in")
    status, _, body = get(port, "/named/x")
    assert status == 200 and b'"/named/x"' in body  # the named location's own status
    status, headers, _ = get(port, "/ext/x")
    assert status == 302 and headers["location"] == "https://login.example.com/"
    assert get(port, "/missing")[:3:2] == (404, b"custom not found")
    assert [r["target"] for r in be.requests()] == ["/named/x"]


def test_try_files(backends, gateway, free, tmp_path) -> None:  # type: ignore[no-untyped-def]
    be = backends()
    port = free()
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "real.txt").write_bytes(b"a real file")
    gw = gateway(f"""http {{ server {{ listen 127.0.0.1:{port}; root {tmp_path};
      location /code/ {{ try_files $uri $uri/ =418; }}
      location /named/ {{ try_files $uri @app; }}
      location @app {{ proxy_pass http://127.0.0.1:{be.port}; }}
    }} }}""", port)
    assert get(port, "/code/x")[0] == 418
    assert get(port, "/named/y")[0] == 200
    assert [r["target"] for r in be.requests()] == ["/named/y"]
    status, _, body = get(port, "/code/real.txt")
    assert (status, body) == (200, b"a real file")
    assert "try_files" not in gw.stderr


def test_bad_config_exits_1_without_binding(tmp_path: Path, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    conf = tmp_path / "bad.conf"
    conf.write_text(f"http {{ server {{ listen 127.0.0.1:{port}; auth_jwt on; }} }}\n")
    run = subprocess.run([sys.executable, "-m", "fastgate", "-c", str(conf)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 1
    assert run.stderr.strip() == f"fastgate: [emerg] JWT: key not set in {conf}:1"


def test_port_in_use(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gateway(f"http {{ server {{ listen 127.0.0.1:{port}; return 200; }} }}", port)
    conf = tmp_path / "second.conf"
    conf.write_text(f"pid {tmp_path}/second.pid;\n"
                    f"http {{ server {{ listen 127.0.0.1:{port}; return 200; }} }}\n")
    run = subprocess.run([sys.executable, "-m", "fastgate", "-c", str(conf)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 1
    assert f"bind() to 127.0.0.1:{port} failed (98: Address already in use)" in run.stderr
    assert "Traceback" not in run.stderr


def test_reload_and_bad_reload(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gw = gateway(f"pid {tmp_path}/gw.pid;\nhttp {{ server {{ listen 127.0.0.1:{port}; "
                 f"return 200 one; }} }}", port)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/")
    assert c.getresponse().read() == b"one"
    gw.conf.write_text(f"pid {tmp_path}/gw.pid;\nhttp {{ server {{ listen 127.0.0.1:{port}; "
                       f"return 200 two; }} }}")
    run = subprocess.run([sys.executable, "-m", "fastgate", "-s", "reload", "-c", str(gw.conf)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    deadline = time.time() + 5
    while time.time() < deadline and get(port, "/")[2] != b"two":
        time.sleep(0.05)
    assert get(port, "/")[2] == b"two"
    gw.conf.write_text("http { server { bogus; } }")
    gw.signal(signal.SIGHUP)
    time.sleep(0.5)
    assert get(port, "/")[2] == b"two"  # a bad config is logged; the old one keeps serving
    assert 'unknown directive "bogus"' in gw.stderr


@pytest.mark.parametrize("sig", ["stop", "reload", "quit", "reopen"])
def test_signal_without_instance(tmp_path: Path, sig: str) -> None:
    conf = tmp_path / "x.conf"
    conf.write_text(f"pid {tmp_path}/none.pid;\n")
    run = subprocess.run([sys.executable, "-m", "fastgate", "-s", sig, "-c", str(conf)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "is fastgate running?" in run.stderr


def test_token_tool_roundtrip(tmp_path: Path, keypairs) -> None:  # type: ignore[no-untyped-def]
    from fastgate.jwt import Verifier, key_from_value, public_key_to_key

    run = subprocess.run([sys.executable, "-m", "fastgate", "token", "--alg", "HS384",
                          "--key", "0123abcd", "--key-encoding", "hex", "--claim", "sub=u1",
                          "--claim", "n=42", "--claim-json", "m=42", "--exp", "60"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "[warn] the HS384 key is 4 bytes; at least 48" in run.stderr
    t = Verifier([key_from_value("0123abcd", "hex")]).verify(run.stdout.strip(), time.time())
    assert t.payload["sub"] == "u1" and t.payload["n"] == "42" and t.payload["m"] == 42
    pem = tmp_path / "p.pem"
    pem.write_bytes(keypairs["P-384"].private_pem)
    run = subprocess.run([sys.executable, "-m", "fastgate", "token", "--alg", "ES384",
                          "--key", str(pem)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    v = Verifier([public_key_to_key(keypairs["P-384"].public)])
    assert v.verify(run.stdout.strip(), time.time()).header["alg"] == "ES384"
    run = subprocess.run([sys.executable, "-m", "fastgate", "token", "--alg", "RS256",
                          "--key", str(pem)], capture_output=True, text=True)
    assert run.returncode == 1 and "cannot sign RS256" in run.stderr
