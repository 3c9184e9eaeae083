"""proxy_store in process, on both engines: what is kept (a whole 200) and what is not
(a body cut short by the upstream or the client, a HEAD, another status, a path with a
".." segment) — and that nothing half-written is ever left beside it. (The files
compared with nginx's: the parity test.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

from scenario import Scenario


def block(root: Path) -> str:
    return f"""upstream be {{ server 127.0.0.1:9; }}
server {{ listen 127.0.0.1:8080; root {root};
  location / {{ proxy_pass http://be; proxy_store on; }}
  location /args/ {{ proxy_pass http://be; proxy_store {root}/by-arg/$arg_name; }} }}"""


def names(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def run(tmp: Path, engine: str, root: Path, *steps: tuple[bytes, bytes | None]) -> list[bytes]:
    async def main() -> list[bytes]:
        out = []
        for request, answer in steps:  # (one connection each: a cut one takes no more)
            sc = Scenario(tmp, engine, block(root))
            try:
                out.append((await sc.exchange(request, answer))[0])
            finally:
                sc.close()
        return out
    return asyncio.run(main())


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode()


def test_a_whole_200_is_kept_and_nothing_else(tmp_path: Path, engine: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    answers = run(tmp_path, engine, root,
                  (get("/a/kept.txt"), OK),
                  (get("/b/short.txt"), b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhal"),
                  (get("/c/head.txt", "HEAD"), b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
                  (get("/d/404.txt"), b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"),
                  (get("/args/x?name=..%2Fescaped"), OK),
                  (get("/args/x?name=../escaped"), OK))
    assert all(a.startswith(b"HTTP/1.1 ") for a in answers)
    assert (root / "a" / "kept.txt").read_bytes() == b"hello"
    # no temporary file left; "..%2F" is a name (arguments are not decoded), not a step up
    assert names(root) == ["a", "a/kept.txt", "by-arg", "by-arg/..%2Fescaped"]
    assert not (tmp_path / "escaped").exists()


def test_a_client_that_leaves_mid_body_keeps_nothing(tmp_path: Path, engine: str) -> None:
    root = tmp_path / "root"
    root.mkdir()

    async def main() -> None:
        sc = Scenario(tmp_path, engine, block(root))
        try:
            sc.pool()
            assert sc.upstream is not None and sc.upstream_out is not None
            sc.client.data_received(get("/gone/file.bin"))
            await sc.settle(lambda: bool(sc.upstream_out.out))  # type: ignore[union-attr]
            sc.upstream.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
                                      + b"x" * 1000)
            await sc.settle(lambda: any(p.name.endswith(".part") for p in root.rglob("*")))
            assert any(p.name.startswith(".") for p in root.rglob("*"))  # being written
            sc.client.connection_lost(None)
            await sc.settle(lambda: not sc.busy())
        finally:
            sc.close()
    asyncio.run(main())
    assert names(root) == []
