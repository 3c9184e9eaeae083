"""The rewrite module's directives at load: conditions as nginx parses them, the
programs they build, and the errors (FILE:LINE) for what nginx refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastgate.config import load_config
from fastgate.config.errors import ConfigError
from fastgate.config.model import Break, If, Return, Rewrite, SetVar
from fastgate.config.parser import parse_text


def _load(tmp_path: Path, server_body: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.conf"
    path.write_text("http {\n  server { listen 127.0.0.1:8997;\n" + server_body + "\n} }\n")
    return load_config(str(path)), str(path)


def _error(tmp_path: Path, server_body: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, server_body)
    return str(info.value)


@pytest.mark.parametrize("condition,op", [
    ("($request_method = 'OPTIONS')", "="),
    ("( $request_method != POST )", "!="),
    ("($http_x)", ""),
    ("($uri ~ ^/a/(.*)$)", "~"),
    ("($uri ~* ^/A/)", "~*"),
    ("($uri !~ ^/a)", "!~"),
    ("($uri !~* ^/a)", "!~*"),
    ("(-f /etc/hostname)", "-f"),
    ("(!-d $uri)", "!-d"),
    ("(-e /x)", "-e"),
    ("(!-x /x)", "!-x"),
    ("($arg_x = '')", "="),
])
def test_conditions(tmp_path: Path, condition: str, op: str) -> None:
    cfg, _ = _load(tmp_path, f"location / {{ if {condition} {{ return 204; }} }}")
    loc, _ = cfg.servers[0].locations.find("/")
    first = loc.rewrites[0]
    assert isinstance(first, If) and first.condition.op == op
    assert isinstance(first.body[0], Return) and first.body[0].code == 204
    assert first.location is not None and first.location.rewrites == ()


@pytest.mark.parametrize("condition,message", [
    ("$arg_a = b", 'invalid condition "$arg_a"'),
    ("($arg_a = b", 'invalid condition "b"'),
    ("($arg_a b)", 'invalid condition "$arg_a b"'),
    ("($arg_a <> b)", 'unexpected "<>" in condition'),
    ("(-z /x)", 'invalid condition "-z /x"'),
    ("(plain)", 'invalid condition "plain"'),
    ("($arg_a ~ ([)", "pcre2_compile() failed"),
])
def test_invalid_conditions(tmp_path: Path, condition: str, message: str) -> None:
    text = _error(tmp_path, f"location / {{ if {condition} {{ return 204; }} }}")
    assert message in text and text.endswith(":3")


def test_program_order_and_types(tmp_path: Path) -> None:
    cfg, _ = _load(tmp_path, """location / {
        set $mine 1; rewrite ^/x$ /y last; rewrite ^/p$ http://h/ permanent; break;
        return 200 "x"; }""")
    loc, _ = cfg.servers[0].locations.find("/")
    kinds = [type(op) for op in loc.rewrites]
    assert kinds == [SetVar, Rewrite, Rewrite, Break, Return]
    assert loc.rewrites[1].flag == "last" and loc.rewrites[1].redirect == 0
    assert loc.rewrites[2].redirect == 301


def test_an_absolute_replacement_is_a_302(tmp_path: Path) -> None:
    cfg, _ = _load(tmp_path, "rewrite ^ https://example.com/;")
    op = cfg.servers[0].rewrites[0]
    assert isinstance(op, Rewrite) and op.redirect == 302


@pytest.mark.parametrize("replacement,uri,args,keep,question", [
    ("/b", "/b", None, True, False),
    ("/b?", "/b", None, False, False),
    ("/b?x=$1", "/b", "x=$1", True, True),
    ("/b?x=$1?", "/b", "x=$1", False, True),
    ("/b?x=1?y=2", "/b", "x=1?y=2", True, True),
    ("/$1$is_args$args", "/$1$is_args$args", None, True, False),
    ("https://h/$1?a=b", "https://h/$1?a=b", None, True, True),
    ("https://h$request_uri?", "https://h$request_uri", None, False, False),
])
def test_a_replacement_is_split_at_its_first_written_question_mark(
        tmp_path: Path, replacement: str, uri: str, args: str | None, keep: bool,
        question: bool) -> None:
    # (ngx_http_rewrite: a last "?" is cut; then the first "?" of the text begins the
    # arguments, unless the replacement is a redirect's URL)
    cfg, _ = _load(tmp_path, f"rewrite ^/(.*) {replacement};")
    op = cfg.servers[0].rewrites[0]
    assert isinstance(op, Rewrite)
    assert op.replacement.source == uri
    assert (op.args.source if op.args is not None else None) == args
    assert (op.keep_args, op.question) == (keep, question)


@pytest.mark.parametrize("body,message", [
    ("rewrite ^/a /b sideways;", 'invalid parameter "sideways"'),
    ("rewrite ^/a( /b;", "pcre2_compile() failed"),
    ('rewrite ^/a "";', "empty replacement"),
    ("set a 1;", 'invalid variable name "a"'),
    ("set $host x;", 'the duplicate "host" variable'),
    ("location / { if ($arg_a) { try_files $uri =404; } }", '"try_files" directive is not allowed'),
    ("location / { if ($arg_a) { proxy_pass http://127.0.0.1:1/x; } }",
     '"proxy_pass" cannot have URI part'),
    ("if ($arg_a) { add_header X y; }", '"add_header" directive is not allowed here'),
    ("location / { if ($arg_a) { if ($arg_b) { } } }", '"if" directive is not allowed here'),
])
def test_refusals(tmp_path: Path, body: str, message: str) -> None:
    text = _error(tmp_path, body)
    assert message in text and ":3" in text


@pytest.mark.parametrize("body", [
    "set $http_host_with_default a;", "set $arg_x 1;", "set $cookie_y 2;",
    "set $sent_http_z 3;", "set $jwt_claim_sub 4;", "set $ssl_protocol a;",
    "set $invalid_referer b;", "set $args c;", "location ~ (?<http_q>.) { }"])
def test_a_name_only_a_prefix_gives_or_nginx_lets_change_may_be_set(
        tmp_path: Path, body: str) -> None:
    # (nginx looks its named variables up before the prefixed ones, and lets a
    # configuration define again those it flags NGX_HTTP_VAR_CHANGEABLE)
    assert _load(tmp_path, body)[0].servers


@pytest.mark.parametrize("http_body,name", [
    ("map $uri $host { default x; }", "host"),
    ("map $uri $remote_addr { default x; }", "remote_addr"),
    ("geo $request_uri { default 1; }", "request_uri"),
])
def test_a_map_of_nginx_s_own_variable_is_refused(tmp_path: Path, http_body: str,
                                                  name: str) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http {\n  " + http_body + "\n  server { listen 127.0.0.1:8997; }\n}\n")
    with pytest.raises(ConfigError, match=f'the duplicate "{name}" variable in .*:2'):
        load_config(str(path))


def test_if_and_set_are_not_http_level(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http {\n  set $mine 1;\n}\n")
    with pytest.raises(ConfigError, match=r'"set" directive is not allowed here in .*:2'):
        load_config(str(path))


def test_set_variables_exist_everywhere(tmp_path: Path) -> None:
    # used in a server before the location that sets it: known at load, as in nginx
    cfg, _ = _load(tmp_path, "add_header X $later; location / { set $later 1; }")
    assert cfg.servers[0]


def test_the_if_configuration_inherits(tmp_path: Path) -> None:
    cfg, _ = _load(tmp_path, """location / { add_header A a; proxy_read_timeout 7s;
        proxy_pass http://127.0.0.1:1; if ($arg_x) { add_header B b; } }""")
    loc, _ = cfg.servers[0].locations.find("/")
    nested = loc.rewrites[0].location
    assert nested.proxy_pass == loc.proxy_pass
    assert nested.settings.proxy_read_timeout == 7.0
    assert [h[0] for h in nested.settings.add_header] == ["B"]


def test_quote_then_parenthesis_and_empty_map_key(tmp_path: Path) -> None:
    d = parse_text("if ($request_method = 'OPTIONS') { }", "t")[0]
    assert d.args == ("($request_method", "=", "OPTIONS", ")")
    path = tmp_path / "t.conf"
    path.write_text("http { map $http_upgrade $c { default upgrade; '' close; } }")
    assert load_config(str(path)).maps[0].exact[""].source == "close"


def test_two_named_locations_of_one_name(tmp_path: Path) -> None:
    cfg, path = _load(tmp_path, "location @a { return 200 one; }\nlocation @a { return 200 two; }")
    named = cfg.servers[0].locations.named["@a"]
    assert named.rewrites[0].text.source == "one"
    assert f'[warn] duplicate named location "@a": the first one answers in {path}:4' \
        in cfg.warnings


def test_the_return_warning_spares_named_locations(tmp_path: Path) -> None:
    cfg, _ = _load(tmp_path, 'auth_jwt_key "k-0123456789abcdef0123456789abcdef"; auth_jwt on;'
                   "location @n { return 401; } location /r/ { return 200; }")
    warned = [w for w in cfg.warnings if "runs before auth_jwt" in w]
    assert len(warned) == 1 and '"/r/"' in warned[0]


@given(st.lists(st.sampled_from(["(", ")", "$a", "$b", "=", "!=", "~", "~*", "!~", "-f",
                                 "!-e", "x", "'y'", "[", "(a"]), min_size=1, max_size=6))
def test_any_condition_is_loaded_or_refused_cleanly(words: list[str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.conf"
        path.write_text("http { server { listen 127.0.0.1:8997; location / { if "
                        + " ".join(words) + " { return 204; } } } }")
        try:
            load_config(str(path))
        except ConfigError as e:
            assert e.file == str(path)


def test_a_set_may_write_a_map_s_variable(tmp_path: Path) -> None:
    # nginx's map, geo and split_clients variables are changeable (Nginx Proxy Manager's
    # server-level `set $forward_scheme http;` over `map $host $forward_scheme`)
    path = tmp_path / "t.conf"
    path.write_text("http {\n  map $host $forward_scheme { default http; }\n"
                    "  geo $zone { default a; }\n"
                    "  split_clients $remote_addr $half { 50% x; * y; }\n"
                    "  server { listen 127.0.0.1:8997; set $forward_scheme https;\n"
                    "    set $zone b; location / { set $half z; } }\n}\n")
    cfg = load_config(str(path))
    assert not [w for w in cfg.warnings if "capture" in w]


def test_a_named_capture_after_a_map_takes_its_variable_over(tmp_path: Path) -> None:
    # (ngx_http_regex_compile gives the variable its own handler; a map later in the
    # file gives it the map's again)
    path = tmp_path / "t.conf"
    path.write_text("http {\n  map $uri $early { default e; }\n"
                    "  server { listen 127.0.0.1:8997;\n"
                    "    location ~ ^/(?<early>a)(?<late>b)$ { } }\n"
                    "  map $uri $late { default l; }\n}\n")
    cfg = load_config(str(path))
    assert [w for w in cfg.warnings if "capture" in w] == [
        f'[warn] the named capture "early" takes the variable over from its map: "$early" '
        f"is only what a capture or set gives in {path}:4"]


def test_rewrite_log_is_inherited_and_names_regexes_as_written(tmp_path: Path) -> None:
    """rewrite_log: off by default, set at any level down to an if's; the regexes it
    names are the patterns as written (``~*``'s without a flag added)."""
    cfg, _ = _load(tmp_path, """rewrite_log on; rewrite ^/(a)$ /b;
      location /x/ { if ($http_y ~* "^Z(.)$") { return 204; } }
      location /y/ { rewrite_log off; if ($uri) { rewrite_log on; } }""")
    server = cfg.servers[0]
    x, y = (server.locations.find(uri)[0] for uri in ("/x/", "/y/"))
    assert x is not None and y is not None
    assert server.fallback is not None
    assert server.fallback.settings.rewrite_log and x.settings.rewrite_log
    assert not y.settings.rewrite_log
    op = server.rewrites[0]
    assert isinstance(op, Rewrite) and op.pattern == "^/(a)$"
    cond = x.rewrites[0]
    assert isinstance(cond, If) and cond.condition.pattern == "^Z(.)$"
    nested = y.rewrites[0]
    assert isinstance(nested, If) and nested.location is not None
    assert nested.location.settings.rewrite_log
    plain, _ = _load(tmp_path, "location / { }")
    found = plain.servers[0].locations.find("/")[0]
    assert found is not None and not found.settings.rewrite_log
