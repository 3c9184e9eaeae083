"""gzip on a protected location, both engines and both exchange paths: a request that
may have the answer compressed leaves the callback path for the task path's filters —
after the access phase, so without a valid token the upstream gets nothing, and with
one only the verified claim; one that may not keeps the callback path, its answer as
the upstream gave it. gzip_static's files and gunzip's inflating come after the access
phase too."""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from pathlib import Path

import jwt as pyjwt
import pytest
from helpers import dechunk
from scenario import ENGINES, PATHS, Scenario

SECRET = "gzip-exchange-secret-0123456789abcdef"
HTTP = f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080;
  gzip on; gzip_types application/json;
  location /api/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
    proxy_set_header X-Sub $jwt_claim_sub; proxy_pass http://be; }}
  location /files/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
    root ROOT; gzip_static always; }}
  location /inflated/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
    gunzip on; proxy_pass http://be; }}
}}"""
BODY = b'{"items": [' + b'"an item", ' * 40 + b'"last"]}'
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
          % len(BODY) + BODY)


@pytest.fixture(params=[(e, p) for e in ENGINES for p in PATHS],
                ids=[f"{e}-{p}" for e in ENGINES for p in PATHS])
def run(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine, path = request.param

    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.js.gz").write_bytes(gzip.compress(b"packed", mtime=0))

    def go(headers: str, target: str = "/api/items",
           answer: bytes = ANSWER) -> tuple[bytes, bytes]:
        raw = f"GET {target} HTTP/1.1\r\nHost: a\r\n{headers}\r\n".encode()

        async def main() -> tuple[bytes, bytes]:
            sc = Scenario(tmp_path, engine, HTTP.replace("ROOT", str(tmp_path)), path)
            try:
                return await sc.exchange(raw, answer)
            finally:
                sc.close()

        return asyncio.run(main())

    return go


def _token() -> str:
    return pyjwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, SECRET,
                        algorithm="HS256")


def test_no_token_no_upstream_whatever_it_accepts(run) -> None:  # type: ignore[no-untyped-def]
    for accept in ("", "Accept-Encoding: gzip\r\n"):
        client, upstream = run(accept + "X-Sub: mallory\r\n")
        assert client.startswith(b"HTTP/1.1 401 ") and upstream == b""


def test_compressed_with_the_verified_claim_only(run) -> None:  # type: ignore[no-untyped-def]
    client, upstream = run(f"Authorization: Bearer {_token()}\r\nX-Sub: mallory\r\n"
                           "Accept-Encoding: gzip, deflate\r\n")
    assert upstream.count(b"X-Sub:") == 1 and b'X-Sub: "alice"\r\n' in upstream
    head, _, body = client.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"\r\nContent-Encoding: gzip" in head
    assert b"Content-Length" not in head
    assert zlib.decompress(dechunk(body), 47) == BODY


def test_without_gzip_the_answer_goes_as_it_came(run) -> None:  # type: ignore[no-untyped-def]
    client, upstream = run(f"Authorization: Bearer {_token()}\r\n")
    assert b'X-Sub: "alice"\r\n' in upstream
    assert client.endswith(b"\r\n\r\n" + BODY) and b"Content-Encoding" not in client


def test_precompressed_files_and_inflated_answers_after_the_token(run) -> None:  # type: ignore[no-untyped-def]
    packed = gzip.compress(BODY, mtime=0)
    gzipped = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed) + packed)
    for target in ("/files/a.js", "/inflated/x"):
        client, upstream = run("Accept-Encoding: gzip\r\n", target, gzipped)
        assert client.startswith(b"HTTP/1.1 401 ") and b"packed" not in client
        assert upstream == b""
    client, _ = run(f"Authorization: Bearer {_token()}\r\n", "/files/a.js")
    assert client.startswith(b"HTTP/1.1 200 ") and client.endswith(gzip.compress(b"packed",
                                                                               mtime=0))
    client, upstream = run(f"Authorization: Bearer {_token()}\r\n", "/inflated/x", gzipped)
    head, _, body = client.partition(b"\r\n\r\n")
    assert upstream.startswith(b"GET /inflated/x HTTP/1.1\r\n")
    assert b"Content-Encoding" not in head and dechunk(body) == BODY
