"""``disable_symlinks`` beside nginx 1.22: the same tree of files and links, the same
configuration under both, and for each request the status, the body of what was
served, and the error log's messages compared — ``on`` (a link as the last component:
403; a linked directory on the way: 404), ``if_not_owner`` (a link whose owner owns its
target is followed; one owned by someone else is not), ``from=$document_root`` (a
linked document root itself is allowed), and where nginx applies it besides the static
module: the index module, try_files, and the rewrite module's ``-f``."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, wait_port
from e2e_util import NGINX, beside_nginx, log_messages, stop_process

BLOCK = """
http {
  access_log off;
  server {
    listen 127.0.0.1:PORT;
    root HOME/www;
    location /on/ { disable_symlinks on; }
    location /owner/ { disable_symlinks if_not_owner; }
    location /off/ { }
    location /tf/ { disable_symlinks on; try_files $uri /on/real.txt; }
    location /if/ { disable_symlinks on; root HOME/www/on; rewrite ^/if/(.*)$ /$1 break;
                    if (-f $request_filename) { return 200 "file\\n"; }
                    return 200 "no file\\n"; }
    location /idx/ { disable_symlinks on; }
  }
  server {
    listen 127.0.0.1:LINKED;
    root HOME/linked-root;
    location /strict/ { disable_symlinks on; alias HOME/linked-root/on/; }
    location / { disable_symlinks on from=$document_root; }
  }
}
"""


class Side:
    def __init__(self, kind: str, tmp: Path) -> None:
        self.port, self.linked = free_port(), free_port()
        home = tmp / kind
        home.mkdir()
        self.errors = home / "error.log"
        block = (BLOCK.replace("PORT", str(self.port)).replace("LINKED", str(self.linked))
                 .replace("HOME", str(tmp)))
        self.proc = beside_nginx(kind, home, block, "error")
        wait_port(self.port, self.proc)
        wait_port(self.linked, self.proc)

    def get(self, port: int, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, b"(error page)"

    def messages(self) -> list[str]:
        return log_messages(self.errors)

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Side, Side]]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    www = tmp_path / "www"
    for d in ("on/realdir", "owner", "off", "tf", "idx/sub"):
        (www / d).mkdir(parents=True)
    (www / "on" / "real.txt").write_text("real\n")
    (www / "on" / "realdir" / "f.txt").write_text("in dir\n")
    os.symlink("real.txt", www / "on" / "link.txt")
    os.symlink("realdir", www / "on" / "dirlink")
    (www / "owner" / "real.txt").write_text("owned\n")
    os.symlink("real.txt", www / "owner" / "link.txt")
    os.symlink("real.txt", www / "owner" / "stranger.txt")
    if os.geteuid() == 0:  # (a link owned by another user: root can make one)
        os.lchown(www / "owner" / "stranger.txt", 65534, 65534)
    (www / "off" / "real.txt").write_text("off\n")
    os.symlink("real.txt", www / "off" / "link.txt")
    os.symlink("../on/real.txt", www / "tf" / "link.txt")
    (www / "idx" / "sub" / "page.html").write_text("page\n")
    os.symlink("page.html", www / "idx" / "sub" / "index.html")
    os.symlink("www", tmp_path / "linked-root")
    made: list[Side] = []
    try:
        for kind in ("nginx", "fastgate"):
            made.append(Side(kind, tmp_path))
        yield made[0], made[1]
    finally:
        for side in made:
            side.stop()


PATHS = ["/on/real.txt", "/on/link.txt", "/on/dirlink/f.txt", "/on/realdir/f.txt",
         "/owner/link.txt", "/owner/stranger.txt", "/off/link.txt", "/tf/link.txt",
         "/tf/real.txt", "/if/real.txt", "/if/link.txt", "/idx/sub/"]
LINKED_PATHS = ["/on/real.txt", "/on/link.txt", "/strict/real.txt", "/off/link.txt"]


def test_as_nginx(sides: tuple[Side, Side]) -> None:
    nginx, fastgate = sides
    for port_of, paths in ((lambda s: s.port, PATHS), (lambda s: s.linked, LINKED_PATHS)):
        for path in paths:
            want = nginx.get(port_of(nginx), path)
            got = fastgate.get(port_of(fastgate), path)
            assert got == want, path
            assert fastgate.messages() == nginx.messages(), path


def test_the_refusals_are_refusals(sides: tuple[Side, Side]) -> None:
    """(what the comparison above holds, said outright)"""
    _, fastgate = sides
    assert fastgate.get(fastgate.port, "/on/link.txt")[0] == 403
    assert fastgate.get(fastgate.port, "/on/dirlink/f.txt")[0] == 404
    assert fastgate.get(fastgate.port, "/owner/link.txt") == (200, b"owned\n")
    if os.geteuid() == 0:
        assert fastgate.get(fastgate.port, "/owner/stranger.txt")[0] == 403
    assert fastgate.get(fastgate.port, "/off/link.txt") == (200, b"off\n")
    assert fastgate.get(fastgate.linked, "/on/real.txt") == (200, b"real\n")
    assert fastgate.get(fastgate.linked, "/strict/real.txt")[0] == 404
