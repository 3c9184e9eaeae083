"""WebDAV's methods, random_index and flv in process, on both engines: what a token
check keeps out, what a body cut short or too large leaves behind (nothing), and the
directives' arguments. (Statuses and files compared with nginx: the parity test.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from scenario import Scenario

from fastgate.config import load_config
from fastgate.config.errors import ConfigError
from fastgate.proxy.static import FLV_HEADER

KEY = "0123456789abcdef0123456789abcdef"


def http(root: Path, extra: str = "") -> str:
    return f"""
server {{ listen 127.0.0.1:8080; root {root}; client_max_body_size 64;
  location /up/ {{ dav_methods put delete mkcol copy move; create_full_put_path on; }}
  location /locked/ {{ dav_methods put delete mkcol copy move;
                      auth_jwt on; auth_jwt_key "{KEY}"; }}
  location /pick/ {{ random_index on; }}
  location /v/ {{ flv; }}
  {extra}
}}"""


def request(method: str, path: str, *headers: str, body: bytes = b"") -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    if body:
        extra += f"Content-Length: {len(body)}\r\n"
    return f"{method} {path} HTTP/1.1\r\nHost: a\r\n{extra}\r\n".encode() + body


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


async def _ask(sc: Scenario, raw: bytes) -> bytes:
    sc.client_out.out.clear()
    sc.client.data_received(raw)
    await sc.settle(lambda: not sc.busy() and bool(sc.client_out.out), 2.0)
    await sc.settle(lambda: not sc.busy(), 2.0)
    return sc.client_out.bytes()


def ask(tmp: Path, engine: str, block: str, *raws: bytes) -> list[bytes]:
    async def main() -> list[bytes]:
        sc = Scenario(tmp, engine, block)
        try:
            return [await _ask(sc, r) for r in raws]
        finally:
            sc.close()
    return asyncio.run(main())


def files(root: Path) -> list[str]:
    """Every name under ``root``, hidden temporary files included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    for d in ("up", "locked", "pick", "v"):
        (root / d).mkdir(parents=True)
    (root / "locked" / "kept.txt").write_bytes(b"kept")
    (root / "locked" / "dir").mkdir()
    return root


def test_a_protected_location_changes_no_file_without_a_valid_token(
        tmp_path: Path, site: Path, engine: str) -> None:
    before = files(site)
    forged = pyjwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "another key " * 3,
                          algorithm="HS256")
    expired = pyjwt.encode({"sub": "x", "exp": int(time.time()) - 60}, KEY,
                           algorithm="HS256")
    asks = []
    for auth in ((), (f"Authorization: Bearer {forged}",),
                 (f"Authorization: Bearer {expired}",)):
        asks += [request("PUT", "/locked/new.txt", *auth, body=b"planted"),
                 request("PUT", "/locked/kept.txt", *auth, body=b"overwritten"),
                 request("DELETE", "/locked/kept.txt", *auth),
                 request("MKCOL", "/locked/made/", *auth),
                 request("COPY", "/locked/kept.txt", "Destination: /locked/copy.txt", *auth),
                 request("MOVE", "/locked/dir/", "Destination: /up/dir/", *auth)]
    answers = ask(tmp_path, engine, http(site), *asks)
    assert [status(a) for a in answers] == [401] * len(asks)
    assert files(site) == before
    assert (site / "locked" / "kept.txt").read_bytes() == b"kept"
    valid = pyjwt.encode({"sub": "x", "exp": int(time.time()) + 60}, KEY, algorithm="HS256")
    put, = ask(tmp_path, engine, http(site),
               request("PUT", "/locked/new.txt", f"Authorization: Bearer {valid}",
                       body=b"allowed"))
    assert status(put) == 201
    assert (site / "locked" / "new.txt").read_bytes() == b"allowed"


def test_a_put_body_too_large_or_cut_short_leaves_nothing(
        tmp_path: Path, site: Path, engine: str) -> None:
    before = files(site)
    big, = ask(tmp_path, engine, http(site),
               request("PUT", "/up/deep/big.bin", body=b"x" * 65))
    assert status(big) == 413
    chunked, = ask(tmp_path, engine, http(site),
                   request("PUT", "/up/c.bin", "Transfer-Encoding: chunked")
                   + b"40\r\n" + b"y" * 64 + b"\r\n1\r\nz\r\n0\r\n\r\n")
    assert status(chunked) == 413
    assert files(site) == before

    async def cut() -> None:
        sc = Scenario(tmp_path, engine, http(site))
        try:
            sc.client.data_received(request("PUT", "/up/half.txt", "Content-Length: 50")
                                    + b"only part")
            await sc.settle(lambda: any(p.name.endswith(".part")
                                        for p in (site / "up").iterdir()), 2.0)
            assert [p.name for p in (site / "up").iterdir()][0].startswith(".")
            sc.client.connection_lost(None)
            await sc.settle(lambda: not sc.busy(), 2.0)
        finally:
            sc.close()
    asyncio.run(cut())
    assert files(site) == before


def test_put_chunked_and_with_continue(tmp_path: Path, site: Path, engine: str) -> None:
    chunked, = ask(
        tmp_path, engine, http(site),
        request("PUT", "/up/a/b/c.txt", "Transfer-Encoding: chunked")
        + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert status(chunked) == 201
    assert b"\r\nLocation: http://a:8080/up/a/b/c.txt\r\n" in chunked
    assert (site / "up" / "a" / "b" / "c.txt").read_bytes() == b"hello world"

    async def expecting() -> bytes:
        sc = Scenario(tmp_path, engine, http(site))
        try:
            sc.client.data_received(request("PUT", "/up/e.txt", "Expect: 100-continue",
                                            "Content-Length: 8"))
            await sc.settle(lambda: bool(sc.client_out.out), 2.0)
            assert sc.client_out.bytes() == b"HTTP/1.1 100 Continue\r\n\r\n"
            return await _ask(sc, b"expected")
        finally:
            sc.close()
    assert status(asyncio.run(expecting())) == 201
    assert (site / "up" / "e.txt").read_bytes() == b"expected"


def test_random_index_picks_every_file(tmp_path: Path, site: Path, engine: str) -> None:
    for name in ("a.html", "b.html", "c.html"):
        (site / "pick" / name).write_bytes(name.encode())
    (site / "pick" / ".hidden.html").write_bytes(b"hidden")
    (site / "pick" / "sub").mkdir()
    answers = ask(tmp_path, engine, http(site), *[request("GET", "/pick/")] * 60)
    bodies = {a.rsplit(b"\r\n\r\n", 1)[1] for a in answers}
    assert bodies == {b"a.html", b"b.html", b"c.html"}


def test_random_index_of_an_empty_or_missing_directory(
        tmp_path: Path, site: Path, engine: str) -> None:
    empty, missing = ask(tmp_path, engine, http(site), request("GET", "/pick/"),
                         request("GET", "/pick/none/"))
    assert status(empty) == 403  # on to index, which finds none
    assert status(missing) == 404


def test_flv_from_an_offset(tmp_path: Path, site: Path, engine: str) -> None:
    video = b"FLV" + bytes(range(200)) * 2000  # streamed in pieces
    (site / "v" / "a.flv").write_bytes(video)
    whole, part, head = ask(tmp_path, engine, http(site), request("GET", "/v/a.flv"),
                            request("GET", "/v/a.flv?start=300000"),
                            request("HEAD", "/v/a.flv?start=300000"))
    assert whole.endswith(b"\r\n\r\n" + video)
    body = FLV_HEADER + video[300000:]
    assert f"content-length: {len(body)}\r\n".encode() in part.lower()
    assert f"content-length: {len(body)}\r\n".encode() in head.lower()
    assert head.endswith(b"\r\n\r\n")
    assert part.endswith(b"\r\n\r\n" + body)


@pytest.mark.parametrize("directive,message", [
    ("dav_methods get;", 'invalid value "get"'),
    ("dav_methods put; dav_methods delete;", '"dav_methods" directive is duplicate'),
    ("dav_access user:rwx;", 'invalid value "user:rwx"'),
    ("dav_access other:r;", 'invalid value "other:r"'),
    ("create_full_put_path yes;", 'it must be "on" or "off"'),
    ("min_delete_depth -1;", 'invalid number "-1"'),
])
def test_dav_directive_errors(tmp_path: Path, directive: str, message: str) -> None:
    path = tmp_path / "t.conf"
    path.write_text(f"http {{ server {{ listen 127.0.0.1:8080;\nlocation / {{ {directive} }} }} }}")
    with pytest.raises(ConfigError, match=message) as e:
        load_config(str(path))
    assert f"{path}:2" in str(e.value)


def test_dav_settings_are_inherited(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http { dav_methods PUT mkcol; dav_access user:r group:rw;\n"
                    "server { listen 127.0.0.1:8080; location / { } "
                    "location /x/ { dav_methods off; random_index on; } } }")
    server = load_config(str(path)).servers[0]
    top, off = server.locations.find("/")[0], server.locations.find("/x/")[0]
    assert top.settings.dav_methods == frozenset({"PUT", "MKCOL"})
    assert top.settings.dav_access == 0o460
    assert off.settings.dav_methods == frozenset() and off.settings.random_index
    assert not top.settings.random_index


def test_delete_removes_a_link_and_never_what_it_points_to(
        tmp_path: Path, site: Path, engine: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_bytes(b"keep me")
    (site / "up" / "link").symlink_to(outside)
    (site / "up" / "flink").symlink_to(outside / "precious.txt")
    as_dir, as_file = ask(tmp_path, engine, http(site), request("DELETE", "/up/link/"),
                          request("DELETE", "/up/flink"))
    assert status(as_dir) == 204 and status(as_file) == 204
    assert not (site / "up" / "link").exists() and not (site / "up" / "flink").exists()
    assert (outside / "precious.txt").read_bytes() == b"keep me"
