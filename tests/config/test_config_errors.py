"""Malformed configurations: each gives one exact message with FILE:LINE, in nginx's
words where nginx has them, and nothing but ConfigError ever escapes the loader."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import fuzz_examples
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgate.config import ConfigError, load_config
from fastgate.config.parser import parse_text

KEY = 'auth_jwt_key "secret-secret-secret-secret-secret!";'

# (id, config text, expected message, expected line); the file is "t.conf"
CASES = [
    ("unknown-directive", "events {}\nfoo bar;\n", 'unknown directive "foo"', 2),
    ("unknown-in-location", "http { server { location / {\n  proxy_passs http://a;\n} } }", 'unknown directive "proxy_passs"', 2),
    ("not-allowed-main", "auth_jwt on;\n", '"auth_jwt" directive is not allowed here', 1),
    ("not-allowed-listen-http", "http {\nlisten 80;\n}", '"listen" directive is not allowed here', 2),
    ("not-allowed-proxy-pass-server", "http { server {\nproxy_pass http://a;\n} }", '"proxy_pass" directive is not allowed here', 2),
    ("not-allowed-server-in-upstream", "http { upstream u {\nlisten 80;\n} }", '"listen" directive is not allowed here', 2),
    ("not-allowed-worker-conn", "http {\nworker_connections 10;\n}", '"worker_connections" directive is not allowed here', 2),
    ("args-auth-jwt", "http {\nauth_jwt;\n}", 'invalid number of arguments in "auth_jwt" directive', 2),
    ("args-auth-jwt-key", "http {\nauth_jwt_key a b c;\n}", 'invalid number of arguments in "auth_jwt_key" directive', 2),
    ("args-proxy-set-header", "http {\nproxy_set_header X;\n}", 'invalid number of arguments in "proxy_set_header" directive', 2),
    ("unexpected-close", "events {}\n}\n", 'unexpected "}"', 2),
    ("eof-in-block", "http {\n  server {\n", 'unexpected end of file, expecting "}"', 2),
    ("eof-no-semicolon", "events {}\nworker_processes 1", 'unexpected end of file, expecting ";" or "}"', 2),
    ("unclosed-quote", 'http {\nserver_name "abc;\n}\n', 'unexpected end of file, expecting "', 2),
    ("no-opening-brace", "events;\n", 'directive "events" has no opening "{"', 1),
    ("not-terminated", "http { server { listen 80 {\n} } }", 'directive "listen" is not terminated by ";"', 1),
    ("key-duplicate", f"http {{\n{KEY}\n{KEY}\n}}", '"auth_jwt_key" directive is duplicate', 3),
    ("auth-jwt-duplicate", "http {\nauth_jwt off;\nauth_jwt off;\n}", '"auth_jwt" directive is duplicate', 3),
    ("key-not-set", "http { server {\nlocation / {\n auth_jwt on;\n} } }", "JWT: key not set", 3),
    ("key-empty", 'http {\nauth_jwt_key "";\n}', "JWT: Invalid key", 2),
    ("key-hex-odd", "http {\nauth_jwt_key abc hex;\n}", "JWT: Invalid hex string", 2),
    ("key-hex-bad", "http {\nauth_jwt_key zz hex;\n}", "JWT: Failed to turn hex key into binary", 2),
    ("key-base64-bad", "http {\nauth_jwt_key @@@@ base64;\n}", "JWT: Failed to turn base64 key into binary", 2),
    ("key-encoding-bad", "http {\nauth_jwt_key abc rot13;\n}", 'JWT: invalid key encoding "rot13" (utf8, hex, base64 or file)', 2),
    ("auth-jwt-bad-token", "http {\nauth_jwt maybe token=nothing;\n}",
     'invalid token variable "nothing": "token=" names one variable, as $cookie_NAME or '
     "$arg_NAME", 2),
    ("alg-bad", "http {\nauth_jwt_alg HS999;\n}", 'invalid value "HS999"', 2),
    ("alg-none", "http {\nauth_jwt_alg none;\n}", 'invalid value "none"', 2),
    ("require-code", f"http {{ {KEY}\nauth_jwt_require $arg_a error=402;\n}}", "invalid error code 402", 2),
    ("require-single", "http {\nauth_jwt_require error=403;\n}", "error=403 cannot be the single element of jwt_auth_require directive", 2),
    ("require-not-last", "http {\nauth_jwt_require $arg_a error=401 $arg_b;\n}", "error=401 must be the last element of jwt_auth_require directive", 2),
    ("require-not-var", "http {\nauth_jwt_require admin=true;\n}", 'invalid variable name "admin=true"', 2),
    ("require-unknown-var", "http {\nauth_jwt_require $jwt_has_admin_role;\n}", 'unknown "jwt_has_admin_role" variable', 2),
    ("require-duplicate", "http {\nauth_jwt_require $arg_a;\nauth_jwt_require $arg_b;\n}", '"auth_jwt_require" directive is duplicate', 3),
    ("require-code-nan", "http {\nauth_jwt_require $arg_a error=abc;\n}", "failed to parse error code abc", 2),
    ("unknown-variable", "http {\nproxy_set_header X $nope;\n}", 'unknown "nope" variable', 2),
    ("var-brace-unclosed", 'http {\nproxy_set_header X "${host";\n}', "the closing bracket in variable is missing", 2),
    ("flag-bad", "http {\nauth_jwt_options yes;\n}", 'invalid value "yes" in "auth_jwt_options" directive, it must be "on" or "off"', 2),
    ("enum-satisfy", "http {\nsatisfy some;\n}", 'invalid value "some" in "satisfy" directive, it must be "all" or "any"', 2),
    ("enum-userid", "http {\nuserid maybe;\n}", 'invalid value "maybe" in "userid" directive, it must be "off", "log", "v1" or "on"', 2),
    ("enum-engine", "http_engine uv;\nhttp {\n}", 'invalid value "uv" in "http_engine" directive, it must be "auto", "h11" or "httptools"', 1),
    ("enum-autoindex", "http {\nautoindex_format yaml;\n}", 'invalid value "yaml" in "autoindex_format" directive, it must be "html", "xml", "json" or "jsonp"', 2),
    ("enum-ims", "http {\nif_modified_since later;\n}", 'invalid value "later" in "if_modified_since" directive, it must be "off", "exact" or "before"', 2),
    ("time-bad", "http {\nproxy_read_timeout 10x;\n}", '"proxy_read_timeout" directive invalid value', 2),
    ("size-bad", "http {\nclient_max_body_size 1t;\n}", '"client_max_body_size" directive invalid value', 2),
    ("return-code-bad", "http { server {\nreturn abc;\n} }", 'invalid return code "abc"', 2),
    ("error-page-range", "http {\nerror_page 200 /x;\n}", 'value "200" must be between 300 and 599', 2),
    ("upstream-duplicate", "http {\nupstream a { server 127.0.0.1:1; }\nupstream a { server 127.0.0.1:2; }\n}", 'duplicate upstream "a"', 3),
    ("upstream-empty", "http {\nupstream a { keepalive 2; }\n}", 'no servers are inside upstream "a"', 2),
    ("upstream-param", "http { upstream a {\nserver 127.0.0.1:1 heavy=3;\n} }", 'invalid parameter "heavy=3"', 2),
    ("listen-port-bad", "http { server {\nlisten 99999;\n} }", 'invalid port in "99999" of the "listen" directive', 2),
    ("proxy-pass-scheme", "http { server { location / {\nproxy_pass ftp://a;\n} } }", 'invalid URL prefix in "ftp://a"', 2),
    ("proxy-pass-uri-regex", "http { server { location ~ /a {\nproxy_pass http://a/x;\n} } }", '"proxy_pass" cannot have URI part in location given by regular expression, or inside named location, or inside "if" statement, or inside "limit_except" block', 2),
    ("location-duplicate", "http { server {\nlocation /a {}\nlocation /a {}\n} }", 'duplicate location "/a"', 3),
    ("location-outside", "http { server { location /a {\nlocation /b {}\n} } }", 'location "/b" is outside location "/a"', 2),
    ("location-outside-regex", "http { server { location ~ /a {\nlocation /b {}\n} } }", 'location "/b" is outside location "/a"', 2),
    ("location-regex-bad", "http { server {\nlocation ~ ( {}\n} }", "pcre2_compile() failed: missing ), unterminated subpattern at position 0 in \"(\"", 2),
    ("named-not-server-level", "http { server { location /a {\nlocation @x {}\n} } }", 'named location "@x" can be on the server level only', 2),
    ("map-var-name", "http {\nmap $host host {}\n}", 'invalid variable name "host"', 2),
    ("map-params", "http { map $host $m {\na b c;\n} }", "invalid number of the map parameters", 2),
    ("log-format-unknown", "http {\naccess_log /tmp/x.log fancy;\n}", 'unknown log format "fancy"', 2),
    ("http-duplicate", "http {}\nhttp {}\n", '"http" directive is duplicate', 2),
    ("alg-vs-key", "http {\nauth_jwt_key \"s3cr3t\";\nauth_jwt_alg RS256;\nserver { auth_jwt on; }\n}", 'JWT: the configured key (oct) cannot verify "RS256"', 3),
    ("worker-processes-bad", "worker_processes many;\n", 'invalid number "many" in "worker_processes" directive', 1),
    ("error-log-level", "error_log stderr loud;\n", 'invalid log level "loud"', 1),
    ("header-name-bad", 'http {\nadd_header "Bad Name" x;\n}', 'invalid header name "Bad Name"', 2),
    # (nginx -t's words: ngx_http_core_server_name)
    ("server-name-star", "http { server {\nserver_name *bad.com;\n} }", 'server name "*bad.com" is invalid', 2),
    ("server-name-dot", "http { server {\nserver_name a .;\n} }", 'server name "." is invalid', 2),
    ("server-name-empty-regex", "http { server {\nserver_name ~;\n} }", 'empty regex in server name "~"', 2),
    # (-t passed, and the worker's server table refused it at the start)
    ("server-name-bad-regex", "http { server {\nserver_name a ~^(?<x>.+$;\n} }",
     'pcre2_compile() failed: missing ), unterminated subpattern at position 1 in "^(?<x>.+$"',
     2),
    # (found by the fuzzer: "include \0;" reached open() and its ValueError)
    ("nul-byte", "\ninclude\n\n\0;", "unexpected NUL byte", 4),
]


@pytest.mark.parametrize("text,message,line", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed(tmp_path: Path, text: str, message: str, line: int) -> None:
    path = tmp_path / "t.conf"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == f"{message} in {path}:{line}"


def test_enough_cases() -> None:
    assert len(CASES) >= 25


def test_missing_key_file(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text('http {\nauth_jwt_key "keys/none.pem" file;\n}')
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == (f'JWT: cannot read key file "{tmp_path}/keys/none.pem": '
                               f"No such file or directory in {path}:2")


def test_empty_key_file(tmp_path: Path) -> None:
    (tmp_path / "empty.pem").write_bytes(b"")
    path = tmp_path / "t.conf"
    path.write_text('http {\nauth_jwt_key empty.pem file;\n}')
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == f'JWT: key file "{tmp_path}/empty.pem" is empty in {path}:2'


def test_non_key_pem(tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    path = tmp_path / "t.conf"
    path.write_text('http {\n\nauth_jwt_key k.pem file;\n}')
    with pytest.raises(ConfigError, match=r"not a PEM public key .* in .*t.conf:3$"):
        load_config(str(path))


def test_error_inside_include_names_included_file(tmp_path: Path) -> None:
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "a.conf").write_text("server {\n  listen 80;\n  bogus;\n}\n")
    path = tmp_path / "t.conf"
    path.write_text("http {\n  include inc/*.conf;\n}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == f'unknown directive "bogus" in {tmp_path}/inc/a.conf:3'


def test_missing_include(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http {\n  include nope.conf;\n}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == (f'open() "{tmp_path}/nope.conf" failed (2: No such file or '
                               f"directory) in {path}:2")


def test_include_cycle(tmp_path: Path) -> None:
    (tmp_path / "self.conf").write_text("include self.conf;\n")
    with pytest.raises(ConfigError, match="include nesting is too deep"):
        load_config(str(tmp_path / "self.conf"))


def test_missing_main_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "none.conf"))
    assert "failed (2: No such file or directory)" in str(info.value)


def test_deep_nesting_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.conf"
    path.write_text("a {" * 5000 + "}" * 5000)
    with pytest.raises(ConfigError):
        load_config(str(path))


def test_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.conf"
    path.write_bytes(b"events {}\n# \xff\xfe\n")
    with pytest.raises(ConfigError, match="invalid UTF-8 in configuration in .*:2"):
        load_config(str(path))


# --- fuzzing: only ConfigError, never a hang ---------------------------------------------

WORDS = ["http", "server", "location", "/", "{", "}", ";", "listen", "80", "auth_jwt", "on",
         "off", "auth_jwt_key", '"k"', "proxy_pass", "http://a", "map", "$host", "$m",
         "default", "~", "^~", "=", "upstream", "u", "return", "200", "#", "\n", "'", '"',
         "\\", "$", "${", "include", "*.conf", "error_page", "401", "@x", "events"]


@pytest.mark.fuzz
@settings(max_examples=fuzz_examples(400), deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(WORDS), max_size=40))
def test_token_soup_only_raises_config_error(tmp_path_factory: pytest.TempPathFactory,
                                             words: list[str]) -> None:
    d = tmp_path_factory.mktemp("fuzz")
    path = d / "f.conf"
    path.write_text(" ".join(words))
    try:
        load_config(str(path))
    except ConfigError:
        pass


@pytest.mark.fuzz
@settings(max_examples=fuzz_examples(400), deadline=None, derandomize=True)
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_config_error(tmp_path_factory: pytest.TempPathFactory,
                                              data: bytes) -> None:
    d = tmp_path_factory.mktemp("fuzzb")
    path = d / "f.conf"
    path.write_bytes(data)
    try:
        load_config(str(path))
    except ConfigError:
        pass


@pytest.mark.fuzz
@settings(max_examples=fuzz_examples(300), deadline=None, derandomize=True)
@given(st.text(max_size=300))
def test_parser_text_only_raises_config_error(text: str) -> None:
    try:
        parse_text(text, "x.conf", "/nonexistent")
    except ConfigError:
        pass
