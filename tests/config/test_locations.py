"""Location matching: a table of URI → location, starting with the nginx documentation's
own example (configurations A-E)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastgate.config import load_config
from fastgate.config.model import Return

CONFIG = r"""
http { server { listen 127.0.0.1:1;
  location = / { return 200 A; }
  location / { return 200 B; }
  location /documents/ { return 200 C; }
  location ^~ /images/ { return 200 D; }
  location ~* \.(gif|jpg|jpeg)$ { return 200 E; }

  location = /exact { return 200 exact; }
  location /exact { return 200 exact-prefix; }
  location /api/ { return 200 api;
    location /api/v2/ { return 200 api-v2; }
    location ~ ^/api/v2/(\d+)$ { return 200 api-v2-num; }
    location ^~ /api/static/ { return 200 api-static; }
  }
  location /api/v1 { return 200 api-v1; }
  location ~ ^/users/(?<id>\d+)/(\w+)$ { return 200 users-re; }
  location /users/ { return 200 users; }
  location ~ \.php$ { return 200 php; }
  location ~ ^/case/ { return 200 case-sensitive; }
  location ~* ^/CASE/ { return 200 case-insensitive; }
  location ^~ /static/ { return 200 static; }
  location /static/deeper/ { return 200 static-deeper; }
  location ~ /static/.*\.css$ { return 200 css-regex; }
  location /a { return 200 a; }
  location /ab { return 200 ab; }
  location /abc/ { return 200 abc; }
  location ~ ^/first { return 200 first-regex; }
  location ~ ^/fir { return 200 second-regex; }
  location @named { return 200 named; }
} }
"""

# (uri, expected location return text, expected captures)
TABLE = [
    ("/", "A", ()),
    ("/index.html", "B", ()),
    ("/documents/document.html", "C", ()),
    ("/images/1.gif", "D", ()),
    ("/documents/1.jpg", "E", (".jpg", "jpg")),
    ("/documents/1.JPG", "E", (".JPG", "JPG")),
    ("/other/1.jpeg", "E", (".jpeg", "jpeg")),
    ("/exact", "exact", ()),
    ("/exact/", "exact-prefix", ()),
    ("/exactly", "exact-prefix", ()),
    ("/api/", "api", ()),
    ("/api/x", "api", ()),
    ("/api/v2/", "api-v2", ()),
    ("/api/v2/items", "api-v2", ()),
    ("/api/v2/42", "api-v2-num", ("/api/v2/42", "42")),
    ("/api/static/x.gif", "api-static", ()),
    ("/api/img.gif", "E", (".gif", "gif")),
    ("/api/v1", "api-v1", ()),
    ("/api/v1/x", "api-v1", ()),
    ("/api", "a", ()),
    ("/users/7/profile", "users-re", ("/users/7/profile", "7", "profile")),
    ("/users/x/profile", "users", ()),
    ("/users/", "users", ()),
    ("/x/index.php", "php", (".php",)),
    ("/case/x", "case-sensitive", ("/case/",)),
    ("/CASE/x", "case-insensitive", ("/CASE/",)),
    ("/Case/x", "case-insensitive", ("/Case/",)),
    ("/static/site.css", "static", ()),
    ("/static/deeper/site.css", "css-regex", ("/static/deeper/site.css",)),
    ("/static/deeper/page", "static-deeper", ()),
    ("/a", "a", ()),
    ("/ab", "ab", ()),
    ("/abc", "ab", ()),
    ("/abc/", "abc", ()),
    ("/abcd", "ab", ()),
    ("/first", "first-regex", ("/first",)),
    ("/fir", "second-regex", ("/fir",)),
    ("/named", "B", ()),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("loc") / "t.conf"
    path.write_text(CONFIG)
    return load_config(str(path)).servers[0]


def _text(loc) -> str:  # type: ignore[no-untyped-def]
    """The text of the location's return (each location of the table answers one)."""
    ret = loc.rewrites[0]
    assert isinstance(ret, Return) and ret.text is not None
    return ret.text.source


def test_table_size() -> None:
    assert len(TABLE) >= 30


@pytest.mark.parametrize("uri,expected,captures", TABLE, ids=[t[0] for t in TABLE])
def test_find(server, uri: str, expected: str, captures: tuple) -> None:  # type: ignore[no-untyped-def]
    loc, caps = server.locations.find(uri)
    assert loc is not None
    assert _text(loc) == expected
    assert caps == captures


def test_named_locations_only_by_name(server) -> None:  # type: ignore[no-untyped-def]
    assert _text(server.locations.named["@named"]) == "named"


def test_no_match_without_root_location(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http { server { listen 127.0.0.1:1; location /only/ { return 204; } } }")
    server = load_config(str(path)).servers[0]
    assert server.locations.find("/elsewhere") == (None, ())


@pytest.mark.parametrize("form,answers", [
    # what nginx 1.22 answered for /, /x, /a, /~x beside "location /a" (tried by hand)
    ("~", ("hit", "hit", "hit", "hit")),  # a regex that matches every URI
    ("~*", ("hit", "hit", "hit", "hit")),
    ('~ ""', ("hit", "hit", "hit", "hit")),
    ("^~", ("hit", "hit", "a", "hit")),  # a prefix every URI has (/a is longer)
    ('""', ("hit", "hit", "a", "hit")),
    ("=", (None, None, "a", None)),  # an exact URI no request has
    ('= ""', (None, None, "a", None)),
])
def test_an_empty_pattern_is_nginx_s(tmp_path: Path, form: str,
                                      answers: tuple[str | None, ...]) -> None:
    path = tmp_path / "t.conf"
    path.write_text(f"http {{ server {{ listen 127.0.0.1:1; location {form} {{ return 200 hit; }}"
                    " location /a { return 200 a; } } }")
    server = load_config(str(path)).servers[0]
    for uri, expected in zip(("/", "/x", "/a", "/~x"), answers, strict=True):
        loc, _ = server.locations.find(uri)
        assert (None if loc is None else _text(loc)) == expected, uri


def test_a_missing_named_location_is_said_once_per_place(tmp_path: Path) -> None:
    """nginx loads error_page and try_files naming a location that does not exist
    (answering 500 there, tests/e2e/test_nginx_parity_e2e.py); fastgate says it once per
    place it is written — a server's error_page is not said again for each location
    that inherits it."""
    path = tmp_path / "t.conf"
    path.write_text("""http { server { listen 127.0.0.1:1; error_page 404 @gone;
  location /a/ { }
  location /b/ { }
  location /c/ { try_files $uri @gone; }
  location /d/ { error_page 500 @elsewhere; }
} }""")
    warnings = [w for w in load_config(str(path)).warnings if "named location" in w]
    why = "a request sent there is answered 500, as nginx answers it"
    assert warnings == [
        f'[warn] could not find named location "@gone" (2 times): {why} in {path}:1',
        f'[warn] could not find named location "@elsewhere": {why} in {path}:5']
