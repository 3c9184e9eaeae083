"""auth_basic in the access phase, on both engines and both exchange paths: who gets
through, the challenge, the log lines, with auth_jwt under satisfy, and a password file
that changes or goes away. What matters most is what the upstream did not get."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import jwt as pyjwt
import pytest
from passlib import hash as hashes
from scenario import ENGINES, PATHS, Scenario, Sink

from fastgate.config import load_config

SECRET = "basic-test-secret-0123456789abcdef-0123"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def basic(user: str, password: str) -> bytes:
    return b"Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()) + b"\r\n"


def _http(users: Path) -> str:
    return f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080;
  location /admin/ {{ auth_basic "Admin area"; auth_basic_user_file {users};
    proxy_set_header X-User $remote_user; proxy_pass http://be;
    location /admin/open/ {{ auth_basic off; proxy_pass http://be; }} }}
  location /either/ {{ satisfy any; auth_basic "either"; auth_basic_user_file {users};
    auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256; proxy_pass http://be; }}
  location /both/ {{ auth_basic "both"; auth_basic_user_file {users};
    auth_jwt $http_x_token; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
    proxy_pass http://be; }}
}}"""


def _users(tmp: Path) -> Path:
    path = tmp / "htpasswd"
    path.write_text(f"alice:{hashes.apr_md5_crypt.hash('wonderland')}\n"
                    f"bob:{hashes.bcrypt.using(rounds=4).hash('builder')}\n")
    return path


def _run(tmp: Path, engine: str, path: str, request: bytes,
         users: Path | None = None) -> tuple[bytes, bytes, list[tuple[str, str]]]:
    users = users or _users(tmp)

    async def main() -> tuple[bytes, bytes, list[tuple[str, str]]]:
        sc = Scenario(tmp, engine, _http(users), path)
        try:
            client, upstream = await sc.exchange(request, OK)
            return client, upstream, sc.log
        finally:
            sc.close()

    return asyncio.run(main())


def _get(path: str, *headers: bytes) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: a\r\n".encode() + b"".join(headers) + b"\r\n"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("creds,logged", [
    (b"", None),
    (basic("alice", "looking-glass"), 'user "alice": password mismatch'),
    (basic("bob", "wrong"), 'user "bob": password mismatch'),
    (basic("carol", "x"), 'user "carol" was not found in "'),
    (b"Authorization: Basic !!!notbase64\r\n", None),
    (b"Authorization: Bearer abc\r\n", None),
])
def test_refused_without_the_right_password(tmp_path: Path, engine: str, path: str,
                                            creds: bytes, logged: str | None) -> None:
    client, upstream, log = _run(tmp_path, engine, path, _get("/admin/x", creds))
    assert client.startswith(b"HTTP/1.1 401 ")
    assert b'\r\nWWW-Authenticate: Basic realm="Admin area"\r\n' in client
    assert upstream == b""
    errors = [m for level, m in log if level == "error"]
    assert errors == ([] if logged is None else [e for e in errors if e.startswith(logged)])
    assert (logged is None) == (errors == [])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("user,password", [("alice", "wonderland"), ("bob", "builder")])
def test_the_right_password_passes(tmp_path: Path, engine: str, path: str, user: str,
                                   password: str) -> None:
    client, upstream, _ = _run(tmp_path, engine, path, _get("/admin/x", basic(user, password)))
    assert client.startswith(b"HTTP/1.1 200 ")
    assert f"X-User: {user}\r\n".encode() in upstream
    # the credentials go upstream as the client sent them (as nginx passes them)
    assert upstream.startswith(b"GET /admin/x HTTP/1.1\r\n")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_off_below(tmp_path: Path, engine: str, path: str) -> None:
    client, upstream, _ = _run(tmp_path, engine, path, _get("/admin/open/x"))
    assert client.startswith(b"HTTP/1.1 200 ") and upstream


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_with_a_token(tmp_path: Path, engine: str, path: str) -> None:
    good = pyjwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    # satisfy any: a token or a password
    client, _, _ = _run(tmp_path, engine, path,
                        _get("/either/x", f"Authorization: Bearer {good}\r\n".encode()))
    assert client.startswith(b"HTTP/1.1 200 ")
    client, _, _ = _run(tmp_path, engine, path, _get("/either/x", basic("alice", "wonderland")))
    assert client.startswith(b"HTTP/1.1 200 ")
    client, upstream, _ = _run(tmp_path, engine, path, _get("/either/x"))
    assert client.startswith(b"HTTP/1.1 401 ") and upstream == b""
    # both schemes are offered, each on its own line (as nginx's modules push theirs)
    assert (b'WWW-Authenticate: Bearer realm="fastgate"\r\n'
            b'WWW-Authenticate: Basic realm="either"\r\n') in client
    # satisfy all: both
    client, upstream, _ = _run(tmp_path, engine, path,
                               _get("/both/x", basic("alice", "wonderland")))
    assert client.startswith(b"HTTP/1.1 401 ") and upstream == b""
    client, upstream, _ = _run(tmp_path, engine, path,
                               _get("/both/x", f"X-Token: {good}\r\n".encode()))
    assert client.startswith(b"HTTP/1.1 401 ") and upstream == b""
    client, upstream, _ = _run(tmp_path, engine, path,
                               _get("/both/x", f"X-Token: {good}\r\n".encode(),
                                    basic("alice", "wonderland")))
    assert client.startswith(b"HTTP/1.1 200 ") and upstream


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_a_file_gone_at_run_time_is_a_500(tmp_path: Path, engine: str, path: str) -> None:
    users = _users(tmp_path)
    http = _http(users)

    async def main() -> tuple[bytes, bytes, list[tuple[str, str]]]:
        sc = Scenario(tmp_path, engine, http, path)
        users.unlink()
        try:
            client, upstream = await sc.exchange(_get("/admin/x", basic("alice", "wonderland")),
                                                 OK)
            return client, upstream, sc.log
        finally:
            sc.close()

    client, upstream, log = asyncio.run(main())
    assert client.startswith(b"HTTP/1.1 500 ") and upstream == b""
    assert ("error", f'open() "{users}" failed (2: No such file or directory)') in log


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_a_file_missing_at_load_is_a_warning_then_a_500(tmp_path: Path, engine: str,
                                                        path: str) -> None:
    """nginx reads the file for the requests it checks: -t passes, and until the file
    can be read a request it checks is a 500 (never let through); once written, it
    is read."""
    users = tmp_path / "htpasswd"  # (where _users writes it)
    http = _http(users)
    conf = tmp_path / "w.conf"
    conf.write_text(f"http {{ {http} }}")
    assert any(f'open() "{users}" failed (2: No such file or directory): a request it '
               "checks is answered 500 until it can be read" in w
               for w in load_config(str(conf)).warnings)

    async def main() -> tuple[bytes, bytes, bytes]:
        sc = Scenario(tmp_path, engine, http, path)
        try:
            missing = await sc.exchange(_get("/admin/x", basic("alice", "wonderland")), OK)
            _users(tmp_path)
            # (a 500 ends its connection: the next request comes on a new one)
            sc.client_out = Sink()
            sc.client = sc.worker.connection(sc.worker.listens()[0])
            sc.client.connection_made(sc.client_out)  # type: ignore[arg-type]
            found = await sc.exchange(_get("/admin/x", basic("alice", "wonderland")), OK)
            return missing[0], missing[1], found[0]
        finally:
            sc.close()

    client, upstream, later = asyncio.run(main())
    assert client.startswith(b"HTTP/1.1 500 ") and upstream == b""
    assert later.startswith(b"HTTP/1.1 200 ")


def test_config(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("alice:{PLAIN}x\nbob:nothing-known\n")
    conf = tmp_path / "t.conf"
    conf.write_text(f"http {{ server {{ listen 127.0.0.1:8080;\nauth_basic_user_file {users};\n"
                    "location / { auth_basic on; return 200; } } }\n")
    config = load_config(str(conf))
    assert config.warnings == (
        f'[warn] line 2 of "{users}" (user "bob") has no password hash fastgate knows: that '
        f"user cannot log in in {conf}:2",)
    conf.write_text("http { server { listen 127.0.0.1:8080;\n"
                    "location / { auth_basic on; return 200; } } }\n")
    warnings = load_config(str(conf)).warnings
    assert len(warnings) == 1 and '"auth_basic" without "auth_basic_user_file" checks ' \
        "nothing" in warnings[0]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_a_user_file_named_by_variables(tmp_path: Path, engine: str, path: str) -> None:
    """auth_basic_user_file $VAR: the file for each request (relative to the
    configuration's directory); one that cannot be read is a 500, as nginx."""
    (tmp_path / "users-a").write_text("ann:{PLAIN}pw-a\n")
    (tmp_path / "users-b").write_text("bob:{PLAIN}pw-b\n")
    http = """
upstream be { server 127.0.0.1:9; keepalive 8; }
server { listen 127.0.0.1:8080;
  location / { auth_basic "per team"; auth_basic_user_file users-$http_x_team;
               proxy_pass http://be; } }"""

    def run(team: str, user: str, password: str) -> tuple[bytes, bytes]:
        async def main() -> tuple[bytes, bytes]:
            sc = Scenario(tmp_path, engine, http, path)
            try:
                return await sc.exchange(b"GET /x HTTP/1.1\r\nHost: a\r\nX-Team: "
                                         + team.encode() + b"\r\n" + basic(user, password)
                                         + b"\r\n", OK)
            finally:
                sc.close()

        return asyncio.run(main())

    client, upstream = run("a", "ann", "pw-a")
    assert client.startswith(b"HTTP/1.1 200") and upstream.startswith(b"GET /x ")
    client, upstream = run("b", "ann", "pw-a")  # ann is not in b's file
    assert client.startswith(b"HTTP/1.1 401") and upstream == b""
    assert run("b", "bob", "pw-b")[0].startswith(b"HTTP/1.1 200")
    client, upstream = run("c", "ann", "pw-a")  # no such file
    assert client.startswith(b"HTTP/1.1 500") and upstream == b""
