"""valid_referers, secure_link, empty_gif and the browser module at load: what nginx refuses, and what a
level keeps (nginx's answers for the same requests are compared in
tests/e2e/test_nginx_parity_e2e.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import server_config_error

from fastgate.config import load_config
from fastgate.config.hostnames import HostTable, is_wildcard_ok


@pytest.mark.parametrize("body,message", [
    ('valid_referers "";', 'invalid referer ""'),
    ("valid_referers ~;", 'empty regex in "~"'),
    ("valid_referers w*w.example.com;", 'invalid hostname or wildcard "w*w.example.com"'),
    ("valid_referers *.example.*;", 'invalid hostname or wildcard "*.example.*"'),
    ("valid_referers none blocked;", 'the "none" or "blocked" referers are specified'),
    ("valid_referers ~(;", "pcre2_compile() failed"),
])
def test_refusals(tmp_path: Path, body: str, message: str) -> None:
    text = server_config_error(tmp_path, body)
    assert message in text and text.endswith(":2")


def test_levels_add_up_and_inner_ones_replace(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http { server { listen 127.0.0.1:8997; valid_referers none a.test;\n"
                    "valid_referers ~b; location /x/ { valid_referers c.test/p; }\n"
                    "location /y/ { } } }")
    server = load_config(str(path)).servers[0]
    y = server.locations.find("/y/")[0].settings.valid_referers
    x = server.locations.find("/x/")[0].settings.valid_referers
    assert y.names == (("a.test", ""),) and y.none and len(y.regexes) == 1
    assert x.names == (("c.test", "/p"),) and not x.none and not x.regexes


@pytest.mark.parametrize("name,ok", [
    ("example.com", True), ("*.example.com", True), ("www.example.*", True),
    (".example.com", True), ("*", False), ("*.", False), ("a*.example.com", False),
    ("*.*.example.com", False),
])
def test_wildcards(name: str, ok: bool) -> None:
    assert is_wildcard_ok(name) is ok


def test_host_table_precedence() -> None:
    t = HostTable([("*.example.com", "head"), ("www.example.*", "tail"),
                   ("www.example.com", "exact"), ("*.a.example.com", "longer"),
                   (".site.test", "dot")])
    assert t.find("www.example.com") == ("exact",)
    assert t.find("x.a.example.com") == ("longer",)
    assert t.find("b.example.com") == ("head",)
    assert t.find("www.example.org") == ("tail",)
    assert t.find("site.test") == ("dot",) and t.find("x.site.test") == ("dot",)
    assert t.find("example.com") is None


@pytest.mark.parametrize("body,message", [
    ("secure_link $arg_h; secure_link_secret x;", '"secure_link_secret" cannot be mixed'),
    ("secure_link_secret x; secure_link_md5 $uri;", '"secure_link_secret" cannot be mixed'),
    ("location / { empty_gif; stub_status; }", '"stub_status" and another content handler'),
    ("modern_browser netscape 4.0;", 'unknown browser name "netscape"'),
    ("modern_browser gecko 1.x;", 'invalid browser version "1.x"'),
    ("modern_browser listed;", 'invalid parameter "listed"'),
])
def test_secure_link_and_pages_refusals(tmp_path: Path, body: str, message: str) -> None:
    text = server_config_error(tmp_path, body)
    assert message in text and text.endswith(":2")


def test_secure_link_secret_and_the_new_form_do_not_inherit_each_other(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http { server { listen 127.0.0.1:8997; secure_link_secret s;\n"
                    "location /a/ { secure_link $arg_h; secure_link_md5 $uri; }\n"
                    "location /b/ { } } }")
    server = load_config(str(path)).servers[0]
    a = server.locations.find("/a/")[0].settings
    b = server.locations.find("/b/")[0].settings
    assert a.secure_link_secret is None and a.secure_link is not None
    assert b.secure_link_secret == "s" and b.secure_link is None
