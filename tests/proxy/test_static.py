"""Files served as nginx's static, index and autoindex modules serve them, try_files'
checks, and the not-modified and range filters — in process, on both engines."""

from __future__ import annotations

import asyncio
import os
from email.utils import formatdate
from pathlib import Path

import pytest
from scenario import ENGINES, Scenario

from fastgate.config import load_config
from fastgate.config.errors import ConfigError

MTIME = 1_700_000_000  # 2023-11-14 22:13:20 GMT


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "secret").mkdir()
    (root / "index.html").write_bytes(b"<h1>home</h1>\n")
    (root / "docs" / "index.htm").write_bytes(b"docs index\n")
    (root / "a.txt").write_bytes(b"0123456789")
    (root / "big.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB: streamed
    (root / "caf\u00e9.txt").write_bytes(b"accent")
    (root / "spa").mkdir()
    (root / "spa" / "app.html").write_bytes(b"spa shell")
    (root / "secret" / "key.txt").write_bytes(b"never served")
    for p in root.rglob("*"):
        os.utime(p, (MTIME, MTIME))
    return root


def http(root: Path, extra: str = "") -> str:
    return f"""
upstream be {{ server 127.0.0.1:9; }}
server {{ listen 127.0.0.1:8080; root {root};
  location /docs/ {{ index index.html index.htm; }}
  location /empty/ {{ autoindex on; }}
  location /i/ {{ alias {root}/docs/; }}
  location /j {{ alias {root}/docs/; }}
  location ~ ^/re/(.+)$ {{ alias {root}/$1; }}
  location /spa/ {{ try_files $uri $uri/ /spa/app.html; }}
  location /tf/ {{ try_files /nothing =418; }}
  location /secret/ {{ deny all; }}
  location /api/ {{ proxy_pass http://be; }}
  {extra}
}}"""


async def _ask(sc: Scenario, request: bytes) -> bytes:
    sc.client_out.out.clear()
    sc.client.data_received(request)
    await sc.settle(lambda: not sc.busy() and bool(sc.client_out.out), 2.0)
    await sc.settle(lambda: not sc.busy(), 2.0)
    return sc.client_out.bytes()


def ask(tmp: Path, engine: str, block: str, *requests: bytes) -> list[bytes]:
    async def main() -> list[bytes]:
        sc = Scenario(tmp, engine, block)
        try:
            return [await _ask(sc, r) for r in requests]
        finally:
            sc.close()
    return asyncio.run(main())


def get(path: str, *headers: str, method: str = "GET") -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"{method} {path} HTTP/1.1\r\nHost: a\r\n{extra}\r\n".encode("utf-8",
                                                                       "surrogateescape")


def split(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.lower()] = value.strip()
    return int(lines[0].split()[1]), fields, body


@pytest.mark.parametrize("engine", ENGINES)
def test_a_file_with_its_validators(tmp_path: Path, site: Path, engine: str) -> None:
    (r,) = ask(tmp_path, engine, http(site), get("/a.txt"))
    status, h, body = split(r)
    assert status == 200 and body == b"0123456789"
    assert h["content-length"] == "10" and h["content-type"] == "text/plain"
    assert h["last-modified"] == formatdate(MTIME, usegmt=True)
    assert h["etag"] == f'"{MTIME:x}-a"' and h["accept-ranges"] == "bytes"


@pytest.mark.parametrize("engine", ENGINES)
def test_index_autoindex_and_directories(tmp_path: Path, site: Path, engine: str) -> None:
    home, docs, listing, noslash, missing, forbidden, head = ask(
        tmp_path, engine, http(site),
        get("/"), get("/docs/?x=1"), get("/empty/"), get("/docs?x=1"), get("/nope/"),
        get("/secret/"), get("/a.txt", method="HEAD"))
    assert split(home)[0] == 200 and split(home)[2] == b"<h1>home</h1>\n"
    assert split(home)[1]["content-type"] == "text/html"
    assert split(docs)[2] == b"docs index\n"  # the second index name
    status, h, body = split(listing)
    assert status == 200 and body.startswith(b"<html>\r\n<head><title>Index of /empty/")
    assert b'<a href="../">../</a>\r\n</pre><hr></body>' in body
    status, h, _ = split(noslash)
    assert status == 301 and h["location"] == "http://a:8080/docs/?x=1"
    assert split(missing)[0] == 404 and split(forbidden)[0] == 403
    status, h, body = split(head)
    assert status == 200 and body == b"" and h["content-length"] == "10"


@pytest.mark.parametrize("engine", ENGINES)
def test_methods(tmp_path: Path, site: Path, engine: str) -> None:
    post, missing_post, delete = ask(
        tmp_path, engine, http(site),
        get("/a.txt", "Content-Length: 0", method="POST"),
        get("/none.txt", "Content-Length: 0", method="POST"), get("/a.txt", method="DELETE"))
    assert split(post)[0] == 405 and split(missing_post)[0] == 404
    assert split(delete)[0] == 405


@pytest.mark.parametrize("engine", ENGINES)
def test_alias_and_try_files(tmp_path: Path, site: Path, engine: str) -> None:
    alias, regex, spa_file, spa_dir, spa_fallback, code, traversal, accent = ask(
        tmp_path, engine, http(site),
        get("/i/index.htm"), get("/re/a.txt"), get("/spa/app.html"), get("/spa/"),
        get("/spa/deep/link"), get("/tf/x"), get("/j../secret/key.txt"),
        get("/caf%C3%A9.txt"))
    assert split(alias)[2] == b"docs index\n"
    assert split(regex)[2] == b"0123456789"
    assert split(spa_file)[2] == b"spa shell"
    assert split(spa_dir)[0] == 403  # $uri/ found the directory: no index.html in it
    assert split(spa_fallback)[2] == b"spa shell"
    assert split(code)[0] == 418
    # an alias that misses its location's slash never opens a path above it
    assert split(traversal)[0] == 404 and b"never served" not in traversal
    assert split(accent)[2] == b"accent"


@pytest.mark.parametrize("engine", ENGINES)
def test_try_files_keeps_the_method(tmp_path: Path, site: Path, engine: str) -> None:
    (post,) = ask(tmp_path, engine, http(site),
                  get("/spa/deep", "Content-Length: 0", method="POST"))
    assert split(post)[0] == 405  # the static file is not POSTed to: nginx keeps POST


@pytest.mark.parametrize("engine", ENGINES)
def test_conditional_requests(tmp_path: Path, site: Path, engine: str) -> None:
    date = formatdate(MTIME, usegmt=True)
    etag = f'"{MTIME:x}-a"'
    ims, inm, weak, other, both_stale = ask(
        tmp_path, engine, http(site),
        get("/a.txt", f"If-Modified-Since: {date}"),
        get("/a.txt", f"If-None-Match: {etag}"),
        get("/a.txt", f"If-None-Match: W/{etag}"),
        get("/a.txt", 'If-None-Match: "other"'),
        get("/a.txt", f"If-None-Match: {etag}", "If-Modified-Since: "
            f"{formatdate(MTIME - 10, usegmt=True)}"))
    for r in (ims, inm, weak):
        status, h, body = split(r)
        assert status == 304 and body == b"" and "content-type" not in h
        assert h["etag"] == etag and h["last-modified"] == date
    assert split(other)[0] == 200 and split(both_stale)[0] == 200
    # a 412 ends the connection, as nginx ends the request in error (that nothing
    # pipelined behind it is served: the parity test, over sockets)
    for condition in (f"If-Unmodified-Since: {formatdate(MTIME - 10, usegmt=True)}",
                      'If-Match: "other"', "If-Unmodified-Since: not a date"):
        (refused,) = ask(tmp_path, engine, http(site), get("/a.txt", condition))
        assert split(refused)[0] == 412 and b"Connection: close" in refused


@pytest.mark.parametrize("engine", ENGINES)
def test_ranges(tmp_path: Path, site: Path, engine: str) -> None:
    etag = f'"{MTIME:x}-a"'
    one, suffix, open_end, several, beyond, bad, if_range_no, if_range_yes = ask(
        tmp_path, engine, http(site),
        get("/a.txt", "Range: bytes=2-4"), get("/a.txt", "Range: bytes=-3"),
        get("/a.txt", "Range: bytes=7-"), get("/a.txt", "Range: bytes=0-1,5-6"),
        get("/a.txt", "Range: bytes=20-30"), get("/a.txt", "Range: bytes=x-1"),
        get("/a.txt", "Range: bytes=0-1", 'If-Range: "old"'),
        get("/a.txt", "Range: bytes=0-1", f"If-Range: {etag}"))
    status, h, body = split(one)
    assert status == 206 and body == b"234" and h["content-range"] == "bytes 2-4/10"
    assert split(suffix)[2] == b"789" and split(open_end)[2] == b"789"
    status, h, body = split(several)
    assert status == 206 and h["content-type"].startswith("multipart/byteranges; boundary=")
    boundary = h["content-type"].split("=", 1)[1].encode()
    assert body == (b"\r\n--" + boundary + b"\r\nContent-Type: text/plain\r\n"
                    b"Content-Range: bytes 0-1/10\r\n\r\n01\r\n--" + boundary
                    + b"\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-6/10\r\n\r\n"
                    b"56\r\n--" + boundary + b"--\r\n")
    assert int(h["content-length"]) == len(body)
    status, h, _ = split(beyond)
    assert status == 416 and h["content-range"] == "bytes */10"
    assert split(bad)[0] == 200 and split(if_range_no)[0] == 200
    assert split(if_range_yes)[0] == 206


@pytest.mark.parametrize("engine", ENGINES)
def test_a_large_file_streams_whole(tmp_path: Path, site: Path, engine: str) -> None:
    whole, part = ask(tmp_path, engine, http(site), get("/big.bin"),
                      get("/big.bin", "Range: bytes=300000-900000"))
    expected = bytes(range(256)) * 4096
    assert split(whole)[2] == expected
    assert split(part)[2] == expected[300000:900001]


@pytest.mark.parametrize("engine", ENGINES)
def test_error_page_to_a_file_keeps_the_status(tmp_path: Path, site: Path,
                                                engine: str) -> None:
    extra = "error_page 404 /a.txt; location /x/ { }"
    (r,) = ask(tmp_path, engine, http(site, extra), get("/x/missing"))
    status, _, body = split(r)
    assert status == 404 and body == b"0123456789"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_protected_location_serves_files_only_with_a_token(
        tmp_path: Path, site: Path, engine: str) -> None:
    extra = ('location /docs/private/ { auth_jwt on; '
             'auth_jwt_key "0123456789abcdef0123456789abcdef"; }')
    (site / "docs" / "private").mkdir()
    (site / "docs" / "private" / "p.txt").write_bytes(b"private bytes")
    no_token, bad = ask(tmp_path, engine, http(site, extra), get("/docs/private/p.txt"),
                        get("/docs/private/p.txt", "Authorization: Bearer a.b.c"))
    assert split(no_token)[0] == 401 and b"private bytes" not in no_token
    assert split(bad)[0] == 401 and b"private bytes" not in bad


def test_root_and_alias_in_one_location_is_an_error(tmp_path: Path) -> None:
    conf = tmp_path / "t.conf"
    conf.write_text("http { server { listen 127.0.0.1:8080;\n"
                    "location /a/ { root /tmp; alias /tmp/; } } }")
    with pytest.raises(ConfigError, match='"alias" directive is duplicate, "root" directive '
                                          'was specified earlier'):
        load_config(str(conf))
    conf.write_text("http { server { listen 127.0.0.1:8080;\n"
                    "location @n { alias /tmp/; } } }")
    with pytest.raises(ConfigError, match="cannot be used inside the named location"):
        load_config(str(conf))
    for given, message in (
            ("disable_symlinks on from=/srv;", None),
            ("disable_symlinks if_not_owner;", None),
            ("disable_symlinks maybe;", 'invalid parameter "maybe"'),
            ("disable_symlinks from=/srv;", '"disable_symlinks" must have "off", "on" or '
                                            '"if_not_owner" parameter'),
            ("disable_symlinks on off;", 'duplicate parameters "on off"'),
            ("disable_symlinks off from=/srv;", '"from=" cannot be used with "off" parameter'),
            ("disable_symlinks on; disable_symlinks on;", "is duplicate")):
        conf.write_text("http { server { listen 127.0.0.1:8080;\n"
                        f"location / {{ {given} }} }} }}")
        if message is None:
            load_config(str(conf))
            continue
        with pytest.raises(ConfigError, match=message):
            load_config(str(conf))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_client_that_takes_nothing_is_cut_after_send_timeout(
        tmp_path: Path, site: Path, engine: str) -> None:
    async def main() -> tuple[bool, list[tuple[str, str]], bytes]:
        sc = Scenario(tmp_path, engine, http(site, "send_timeout 200ms;"))
        try:
            sc.client.pause_writing()  # the client's socket buffer is full
            sc.client.data_received(get("/big.bin"))
            await sc.settle(lambda: not sc.busy(), 3.0)
            return sc.client_out.aborted, sc.log, sc.client_out.bytes()
        finally:
            sc.close()

    aborted, log, sent = asyncio.run(main())
    assert aborted and any("client timed out" in m for _, m in log)
    assert sent.startswith(b"HTTP/1.1 200 ") and len(sent) < 1024 * 1024  # cut, not whole
