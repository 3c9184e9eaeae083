"""Lexer, variable templates and maps."""

from __future__ import annotations

import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt as pyjwt
import pytest

from fastgate._wire import ConnectionInfo
from fastgate.config import ConfigError, load_config
from fastgate.config.lexer import tokenize
from fastgate.cookie_header import cookie_count, cookie_of
from fastgate.http.engine import UnreadLine
from fastgate.jwt import HMACKey, Verifier
from fastgate.variables import (
    BUILTIN,
    PREFIXES,
    SUBREQUEST_KEY,
    Registry,
    cookie_value,
    find_variable,
    found_though_empty,
    log_blanks,
    nested_claim,
    query_arg,
)

SECRET = b"variables-test-secret-0123456789abcdef"


def request(**kw: Any) -> SimpleNamespace:
    base = dict(
        method="GET", target="/p/a%20b?x=1&Y=2", uri="/p/a b", args="x=1&Y=2", version="1.1",
        headers=[("host", "example.com:8080"), ("cookie", "a=1; session_token=tok; b=2"),
                 ("x-token", "xt"), ("x-forwarded-for", "10.0.0.1")],
        host="example.com", scheme="http", remote_addr="127.0.0.1", remote_port=5555,
        server_addr="127.0.0.1", server_port=8080, server_name="example.com", status=200,
        start=time.time(), request_length=100, length=lambda: 100, body_bytes_sent=5,
        bytes_sent=105,
        upstream_addr="", upstream_status="", upstream_time=-1.0, upstream_tried=None,
        upstream_response_time=-1.0,
        upstream_connect_time=-1.0, upstream_bytes_received=0, upstream_bytes_sent=0,
        pipelined=False,
        proxy_host="",
        proxy_port="", request_id="rid", connection_id=1, connection_requests=1,
        token=None, jwt_plus=False, captures=(), memo={}, uri_changes=0,
        head=SimpleNamespace(method=b"GET", target=b"/p/a%20b?x=1&Y=2", headers=[]),
        connection=ConnectionInfo("http", "127.0.0.1", 5555, "127.0.0.1", 8080, 1),
    )
    base.update(kw)
    return SimpleNamespace(**base)


def token(payload: dict, headers: dict | None = None) -> Any:
    tok = pyjwt.encode(payload, SECRET, algorithm="HS256", headers=headers).encode()
    return Verifier([HMACKey(SECRET)]).verify(tok, time.time())


# --- lexer -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text,values",
    [
        ('a "\\"admin\\"" b;', ["a", '"admin"', "b", ";"]),
        ("a 'x y' \"z\";", ["a", "x y", "z", ";"]),
        (r"location ~ \.php$ {", ["location", "~", r"\.php$", "{"]),
        ('x "a\\tb\\nc\\\\d";', ["x", "a\tb\nc\\d", ";"]),
        ("x ${host}abc;", ["x", "${host}abc", ";"]),
        ("x a#b; # comment\ny;", ["x", "a#b", ";", "y", ";"]),
        ("x a\\ b;", ["x", "a\\ b", ";"]),  # nginx keeps the backslash: not one of its escapes
        ("x{y;}", ["x", "{", "y", ";", "}"]),
    ],
)
def test_lexer(text: str, values: list[str]) -> None:
    assert [t.value for t in tokenize(text, "t")] == values


def test_lexer_lines() -> None:
    toks = list(tokenize('a;\n\n"multi\nline" b;\n c;', "t"))
    assert [(t.value, t.line) for t in toks] == [
        ("a", 1), (";", 1), ("multi\nline", 3), ("b", 4), (";", 4), ("c", 5), (";", 5)]


def test_text_after_quote_is_an_error() -> None:
    with pytest.raises(ConfigError, match='unexpected "b"'):
        list(tokenize('a "x"b;', "t"))


# --- templates ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "source,expected",
    [
        ("plain", "plain"),
        ("$host", "example.com"),
        ("${host}:$server_port", "example.com:8080"),
        ("$scheme://$host$request_uri", "http://example.com/p/a%20b?x=1&Y=2"),
        ("$uri|$args|$is_args", "/p/a b|x=1&Y=2|?"),
        ("$arg_x-$arg_y-$arg_missing.", "1-2-."),
        ("$http_x_token/$HTTP_X_TOKEN/$http_host", "xt/xt/example.com:8080"),
        ("$cookie_session_token", "tok"),
        ("$remote_addr:$remote_port", "127.0.0.1:5555"),
        ("$request_method $server_protocol", "GET HTTP/1.1"),
        ("$request", "GET /p/a%20b?x=1&Y=2 HTTP/1.1"),
        ("$proxy_add_x_forwarded_for", "10.0.0.1, 127.0.0.1"),
        ("$status $body_bytes_sent", "200 5"),
        ("$jwt_claim_sub", ""),
        ("$$", "$$"),
    ],
)
def test_render(source: str, expected: str) -> None:
    """Each variable as a request renders it."""
    reg = Registry()
    if source == "$$":
        with pytest.raises(ConfigError):
            reg.compile(source)
        return
    assert reg.compile(source).render(request()) == expected


def test_upstream_response_time() -> None:
    t = Registry().compile("[$upstream_response_time]")
    assert t.render(request()) == "[]"  # no upstream
    assert t.render(request(upstream_time=0.01234)) == "[0.012]"


def test_upstream_variables_list_the_servers_tried() -> None:
    t = Registry().compile("$upstream_addr|$upstream_status|$upstream_response_time")
    r = request(upstream_addr="b:2", upstream_status="200", upstream_time=0.002,
                upstream_tried=[("a:1", "502", 0.0014, -1.0, -1.0, 0, 0)])
    assert t.render(r) == "a:1, b:2|502, 200|0.001, 0.002"
    # every server failed (none left to try): the list alone
    r = request(upstream_tried=[("a:1", "502", 0.0, -1.0, -1.0, 0, 0),
                                ("b:2", "504", 1.0, 0.001, -1.0, 0, 90)])
    assert t.render(r) == "a:1, b:2|502, 504|0.000, 1.000"


def test_every_upstream_value_is_listed_per_try_as_nginx_does() -> None:
    # a try that never connected or never got a head writes "-" for those times, and
    # no response length (nginx's lists, one item per server tried)
    t = Registry().compile("$upstream_connect_time|$upstream_header_time|"
                           "$upstream_bytes_received|$upstream_bytes_sent|"
                           "$upstream_response_length")
    r = request(upstream_addr="b:2", upstream_status="200", upstream_time=0.002,
                upstream_connect_time=0.0005, upstream_bytes_received=82,
                upstream_bytes_sent=70, body_bytes_sent=2,
                upstream_tried=[("a:1", "502", 0.0, -1.0, -1.0, 0, 0),
                                ("c:3", "503", 0.01, 0.001, 0.009, 120, 70)])
    assert t.render(r) == "-, 0.001, 0.001|-, 0.009, 0.002|0, 120, 82|0, 70, 70|0, 0, 2"
    # the current try failed too: its times "-", its length 0 (the page is fastgate's)
    r = request(upstream_addr="b:2", upstream_status="502", body_bytes_sent=150,
                upstream_bytes_received=0, upstream_bytes_sent=0)
    assert t.render(r) == "-|-|0|0|0"


def test_jwt_variables_are_json() -> None:
    reg = Registry()
    t = reg.compile("$jwt_claim_sub|$jwt_claim_n|$jwt_claim_roles|$jwt_claim_none|$jwt_header_alg")
    r = request(token=token({"sub": "user123", "n": 42, "roles": ["a", "b"]}))
    assert t.render(r) == '"user123"|42|["a","b"]||"HS256"'
    assert reg.claims == {"sub", "n", "roles", "none"}
    assert reg.jwt_headers == {"alg"}
    whole = reg.compile("$jwt_payload").render(r)
    assert whole == '{"sub":"user123","n":42,"roles":["a","b"]}'


def test_jwt_variables_in_nginx_plus_encoding() -> None:
    reg = Registry()
    t = reg.compile("$jwt_claim_sub|$jwt_claim_n|$jwt_claim_roles|$jwt_claim_ok|"
                    "$jwt_claim_obj|$jwt_claim_nil|$jwt_claim_none|$jwt_header_alg")
    claims = {"sub": "user123", "n": 4.5, "roles": ["a", "b", 3], "ok": True,
              "obj": {"k": "v"}, "nil": None}
    plus = request(token=token(claims), jwt_plus=True)
    assert t.render(plus) == 'user123|4.5|a,b,3|true|{"k":"v"}|||HS256'
    seed = request(token=token(claims))
    assert t.render(seed) == '"user123"|4.5|["a","b",3]|true|{"k":"v"}|null||"HS256"'


def test_a_claim_without_a_token_is_empty_whatever_asks() -> None:
    """No token, no claim: the getter reads nothing else of what asks (a request, or any
    object with a token)."""
    class Tokenless:
        token = None

    assert Registry().compile("[$jwt_claim_sub]").render(Tokenless()) == "[]"  # type: ignore[arg-type]
    assert Registry().compile("[$jwt_claim_sub]").render(request()) == "[]"


def test_claim_names_are_case_sensitive() -> None:
    r = request(token=token({"userId": "u1", "userid": "u2"}))
    assert Registry().compile("$jwt_claim_userId $jwt_claim_userid").render(r) == '"u1" "u2"'


def test_unknown_variable() -> None:
    with pytest.raises(ConfigError, match='unknown "nope" variable'):
        Registry().compile("a $nope b")


def test_variables_found_by_a_name_known_only_at_run_time() -> None:
    """SSI's echo names variables in a page: the configuration's own first, then the
    built-ins and prefixed ones; an unknown name is None (nginx's not found)."""
    r = request(uri="/p", token=token({"sub": "u"}))
    defined = {"mine": lambda _: "own", "uri": lambda _: "shadowed"}
    assert find_variable("MINE", defined)(r) == "own"  # type: ignore[misc]
    assert find_variable("uri", defined)(r) == "shadowed"  # type: ignore[misc]
    assert find_variable("request_uri", {}) is not None
    assert find_variable("jwt_claim_sub", {})(r) == '"u"'  # type: ignore[misc]
    assert find_variable("nope", {}) is None and find_variable("http_", {}) is None
    assert find_variable("date_gmt", {})(r).endswith(" GMT")  # type: ignore[misc]
    # the registry's getter records the claims a configuration names; a run-time lookup
    # records nothing
    reg = Registry()
    reg.compile("$jwt_claim_role")
    assert reg.claims == {"role"} and reg.uses_jwt


def test_literal_template() -> None:
    t = Registry().compile("just text")
    assert t.is_literal and t.render(request()) == "just text"


def test_query_and_cookie_helpers() -> None:
    assert query_arg("a=1&b=&c", "b") == ""
    assert query_arg("a=1&A=2", "a") == "1"
    assert query_arg("", "a") == ""
    assert cookie_value([("cookie", "x=1"), ("cookie", "y=2")], "y") == "2"
    assert cookie_value([("cookie", "novalue; y=2")], "novalue") == ""


@pytest.mark.parametrize("value,name,found", [
    # (nginx's $cookie_NAME of each, read from nginx 1.22's answers but the ","
    # case, which is 1.23's: 1.22 also took "," for ";")
    ("a = 1", "a", "1"), ("a=1 ;b", "a", "1 "), ("A=1", "a", "1"), ("xa=1; a=2", "a", "2"),
    ("b=1; a=2; a=3", "a", "2"), ("b=1,a=2", "a", None), ("a", "a", None), ("a=;", "a", ""),
    ("a;a=2", "a", None), ("ab=1; a=2", "a", "2"), ("b=2;  a=3", "a", "3"),
    ("a b=1", "a", None), ("\u00c9=1", "\u00e9", None)])
def test_a_cookie_is_found_as_nginx_s_parser_finds_it(value: str, name: str,
                                                       found: str | None) -> None:
    """Spaces may stand around a cookie's "=" and stay before the ";" that ends its
    value; the name is compared ASCII case-insensitively; a name followed by neither
    "=" nor a space takes the byte after it (so "a;a=2" holds no "a" for nginx)."""
    assert cookie_of([("x", "a=9"), ("cookie", value)], name) == found
    assert cookie_count([("cookie", value), ("cookie", value)], name) >= (2 if found else 0)


# --- maps ----------------------------------------------------------------------------------------

MAPS = r"""
http {
  map $jwt_claim_role $is_admin  { "\"admin\"" 1; "\"superuser\"" 1; default 0; }
  map $jwt_claim_role $is_editor { "\"admin\"" 1; "\"editor\"" 1; default 0; }
  map $uri $section {
    default          other;
    /exact           exact;
    ~^/api/v(\d+)/   api-$1;
    ~*^/IMG/         images;
  }
  map $http_host $site {
    hostnames;
    default        none;
    example.com    main;
    *.example.org  org-sub;
    .example.net   net-any;
    www.example.*  www-any;
  }
  map $section $chained { api-2 two; default not-two; }
  map $arg_x $no_default { a A; }
  server { listen 127.0.0.1:1;
    location / { proxy_set_header X "$is_admin$is_editor$section$site$chained$no_default"; } }
}
"""


@pytest.fixture(scope="module")
def maps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("maps") / "t.conf"
    path.write_text(MAPS)
    cfg = load_config(str(path))
    return {m.name: m for m in cfg.maps}


def _eval(maps: dict, name: str, **kw: Any) -> str:
    r = request(**kw)
    return maps[name].getter()(r)


@pytest.mark.parametrize(
    "role,admin,editor",
    [("admin", "1", "1"), ("superuser", "1", "0"), ("editor", "0", "1"), ("viewer", "0", "0"),
     (None, "0", "0"), ("ADMIN", "1", "1")],  # nginx map strings are case-insensitive
)
def test_rbac_maps(maps: dict, role: str | None, admin: str, editor: str) -> None:
    tok = token({"role": role} if role is not None else {"sub": "x"})
    assert _eval(maps, "is_admin", token=tok) == admin
    assert _eval(maps, "is_editor", token=tok) == editor


@pytest.mark.parametrize(
    "uri,expected",
    [("/exact", "exact"), ("/EXACT", "exact"), ("/api/v2/x", "api-2"), ("/api/v10/", "api-10"),
     ("/img/a.png", "images"), ("/IMG/a.png", "images"), ("/api/vx/", "other"), ("/", "other")],
)
def test_map_exact_regex_captures(maps: dict, uri: str, expected: str) -> None:
    assert _eval(maps, "section", uri=uri) == expected


@pytest.mark.parametrize(
    "host,expected",
    [("example.com", "main"), ("a.example.org", "org-sub"), ("example.org", "none"),
     ("x.y.example.net", "net-any"), ("example.net", "net-any"), ("www.example.io", "www-any"),
     ("other.com", "none")],
)
def test_map_hostnames(maps: dict, host: str, expected: str) -> None:
    assert _eval(maps, "site", headers=[("host", host)]) == expected


def test_map_of_map_and_memo(maps: dict) -> None:
    r = request(uri="/api/v2/")
    assert maps["chained"].getter()(r) == "two"
    assert r.memo == {"section": "api-2", "chained": "two"}


def test_map_without_default_is_empty(maps: dict) -> None:
    assert _eval(maps, "no_default", args="x=a") == "A"
    assert _eval(maps, "no_default", args="x=b") == ""


def test_map_tries_no_regex_on_an_empty_value(tmp_path: Path) -> None:
    """As nginx's ngx_http_map_find: an empty value meets the exact keys ('' among
    them) and the default, never a regex (not even ``~^$``)."""
    path = tmp_path / "t.conf"
    path.write_text("http { map $arg_x $m { default d; ~^$ empty; ~.* any; }\n"
                    "map $arg_x $n { '' blank; ~.* any; } server { listen 127.0.0.1:1; } }")
    got = {m.name: m for m in load_config(str(path)).maps}
    assert [got["m"].getter()(request(args=a)) for a in ("", "x=", "x=1")] == ["d", "d", "any"]
    assert [got["n"].getter()(request(args=a)) for a in ("", "x=1")] == ["blank", "any"]


@pytest.mark.parametrize(("keys", "error"), [
    (".example.com x; example.com y;", 'conflicting parameter "example.com"'),
    ("example.com y; .example.com x;", 'conflicting parameter ".example.com"'),
    ("*.example.com x; .example.com y;", 'conflicting parameter ".example.com"'),
    ("WWW.Example.* x; www.example.* y;", 'conflicting parameter "www.example.*"'),
    ("Ab x; aB y;", 'conflicting parameter "ab"'),
    ("*example.com x;", 'invalid hostname or wildcard "*example.com"'),
    ("*.example.* x;", 'invalid hostname or wildcard "*.example.*"'),
    ("a..b x;", 'invalid hostname or wildcard "a..b"'),
    ("*. x;", 'invalid hostname or wildcard "*."'),
    ("*.com x; *.example.com y; .org z; www.example.* w; www.example.com v;", None),
])
def test_hostnames_map_keys_load_as_nginx_loads_them(tmp_path: Path, keys: str,
                                                     error: str | None) -> None:
    """nginx's ngx_hash_add_key: the wildcard forms, a name given twice in any of them
    (case aside; ".example.com" is "example.com" too) and what is no wildcard (compared
    by hand with nginx 1.22's -t, message for message)."""
    path = tmp_path / "t.conf"
    path.write_text(f"http {{ map $host $m {{ hostnames; {keys} }} "
                    "server { listen 127.0.0.1:1; } }")
    if error is None:
        load_config(str(path))
        return
    with pytest.raises(ConfigError, match=re.escape(error)):
        load_config(str(path))


@pytest.mark.parametrize(("host", "expected"), [
    ("example.com", "dot"), ("a.example.com", "dot"), ("badexample.com", "none"),
    ("x.b.example.com", "star-b"), ("b.example.com", "dot"), ("example.com.", "dot"),
    ("www.example.io", "tail"), ("www.example", "none"), ("wwwxexample.io", "none")])
def test_hostnames_map_wildcards_match_whole_labels(tmp_path: Path, host: str,
                                                    expected: str) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http { map $http_x $m { hostnames; default none; .example.com dot;\n"
                    "*.b.example.com star-b; www.example.* tail; }\n"
                    "server { listen 127.0.0.1:1; } }")
    m = load_config(str(path)).maps[0]
    assert m.getter()(request(headers=[("x", host)])) == expected


def test_map_is_lazy(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http { map $http_x $m { default 1; } server { listen 127.0.0.1:1; } }")
    cfg = load_config(str(path))
    r = request()
    assert r.memo == {}  # nothing evaluated until asked
    assert cfg.maps[0].getter()(r) == "1"


def test_maps_over_claims_are_checked_against_the_dialects_in_use(tmp_path: Path) -> None:
    from fastgate.config import load_config

    path = tmp_path / "t.conf"

    def warnings(locations: str) -> list[str]:
        path.write_text('http { map $jwt_claim_role $is_admin { default 0; "\\"admin\\"" 1; }\n'
                        "map $jwt_claim_team $team_ok { default 0; platform 1; 42 1; }\n"
                        'server { listen 127.0.0.1:8999; auth_jwt_key '
                        '"0123456789abcdef0123456789abcdef";\n' + locations + "} }")
        return [w for w in load_config(str(path)).warnings if "compares" in w]

    seed = warnings("location / { auth_jwt on; auth_jwt_require $is_admin $team_ok; }")
    assert len(seed) == 1 and '"$team_ok" compares $jwt_claim_team with platform' in seed[0]
    plus = warnings('location / { auth_jwt "api"; auth_jwt_require $is_admin $team_ok; }')
    assert len(plus) == 1 and "JSON text \"admin\"" in plus[0]
    assert plus[0].endswith("t.conf:1")
    assert len(warnings("location /a/ { auth_jwt on; } location /b/ { auth_jwt x; }")) == 2


def test_request_keeps_the_method_the_line_came_with() -> None:
    """An error page's URI makes a POST a GET ($request_method); $request is the line
    as it came, as nginx's r->request_line."""
    r = request(method="GET", head=SimpleNamespace(method=b"POST", target=b"/p/a%20b?x=1&Y=2",
                                                   headers=[]))
    assert _get("request")(r) == "POST /p/a%20b?x=1&Y=2 HTTP/1.1"
    assert _get("request_method")(r) == "GET"
    assert _get("request")(request(head=SimpleNamespace(method=b"", headers=[]))) == ""


def test_request_is_the_target_as_it_came() -> None:
    """$request keeps an absolute-form target whole (its $request_uri is the path on),
    and a target refused once read (its $request_uri is empty), as nginx's
    r->request_line."""
    absolute = request(target="/x?a=1", head=SimpleNamespace(
        method=b"GET", target=b"http://h.example/x?a=1", headers=[]))
    assert _get("request")(absolute) == "GET http://h.example/x?a=1 HTTP/1.1"
    assert _get("request_uri")(absolute) == "/x?a=1"
    refused = request(target="", head=SimpleNamespace(
        method=b"GET", target=b"/%2e%2e/x\xff", headers=[]))
    assert _get("request")(refused).encode("utf-8", "surrogateescape") == \
        b"GET /%2e%2e/x\xff HTTP/1.1"


def test_a_line_the_http_layer_could_not_read_is_its_bytes() -> None:
    r = request(head=UnreadLine(b"GARBAGE \x16\xff"))
    assert _get("request")(r).encode("utf-8", "surrogateescape") == b"GARBAGE \x16\xff"


def test_a_subrequests_method_is_its_main_requests() -> None:
    """nginx's $request_method reads r->main: an auth_request's or SSI's subrequest
    (a GET on the wire) says its main request's method."""
    main = request(method="POST")
    sub = request(method="GET", uri_changes=1, memo={SUBREQUEST_KEY: main})
    assert _get("request_method")(sub) == "POST"
    # an internal redirect's request is no subrequest: its own method (a GET, after
    # error_page)
    assert _get("request_method")(request(method="GET", uri_changes=1)) == "GET"


def test_an_http2_stream_says_so() -> None:
    """$server_protocol, $request and $http2 of a stream that came over HTTP/2 (it
    reaches the phases as an HTTP/1.1 request: fastgate.http.http2)."""
    for label in ("h2", "h2c"):
        r = request(connection=ConnectionInfo("https", "127.0.0.1", 5555, "127.0.0.1", 8080,
                                              1, http2=label))
        assert _get("server_protocol")(r) == "HTTP/2.0"
        assert _get("request")(r) == "GET /p/a%20b?x=1&Y=2 HTTP/2.0"
        assert _get("http2")(r) == label
    assert _get("http2")(request()) == ""
    assert _get("server_protocol")(request()) == "HTTP/1.1"


def _get(name: str) -> Any:
    found = find_variable(name, {})
    assert found is not None
    return found


@pytest.mark.parametrize("lines,name,value", [
    ([b"sid=abc; Path=/"], "sid", "abc"),
    ([b"SID=abc"], "sid", "abc"),  # (names match case-insensitively, as nginx's)
    ([b"sid = x y ;"], "sid", "x y "),  # (spaces before the value go, after it stay)
    ([b"sidx=1", b"sid=2"], "sid", "2"),  # (a longer name is another cookie)
    ([b"sid", b"sid=", b"sid=3"], "sid", ""),  # (an empty value is a value)
    ([b"other=1"], "sid", ""),
    ([], "sid", ""),
])
def test_upstream_cookie_is_nginx_set_cookie_parser(lines: list[bytes], name: str,
                                                    value: str) -> None:
    get = Registry().getter(f"upstream_cookie_{name}")
    r = request(upstream_headers=[(b"Set-Cookie", v) for v in lines])
    assert get(r) == value


def test_connection_measures_without_a_socket() -> None:
    r = request()
    reg = Registry()
    assert reg.getter("tcpinfo_rtt")(r) == ""  # (no socket: nothing to ask the kernel)
    assert reg.getter("connection_time")(r) == "0.000"
    assert reg.getter("gzip_ratio")(r) == reg.getter("upstream_cache_status")(r) == ""



def test_which_empty_values_nginx_finds() -> None:
    """An empty ``set`` or map value is found (SSI's echo prints nothing), a claim's or
    an absent header's is not ("(none)"): nginx's not_found, as its access log's "-"."""
    def mine(r: object) -> str:
        return ""

    claim = nested_claim(("role",))
    defined = {"mine": mine, "role": claim}
    plain = SimpleNamespace(connection=SimpleNamespace(tls=None), args_found=False)
    secure = SimpleNamespace(connection=SimpleNamespace(tls=object()))
    rewritten = SimpleNamespace(connection=plain.connection, args_found=True)  # (to "/x?")
    header = PREFIXES["http_"]("x_none")
    assert found_though_empty("mine", mine, defined, plain)
    assert not found_though_empty("role", claim, defined, plain)
    assert found_though_empty("is_args", BUILTIN["is_args"], defined, plain)
    assert not found_though_empty("args", BUILTIN["args"], defined, plain)
    assert found_though_empty("args", BUILTIN["args"], defined, rewritten)
    assert found_though_empty("query_string", BUILTIN["query_string"], defined, rewritten)
    assert not found_though_empty("http_x_none", header, defined, plain)
    tls = BUILTIN["ssl_protocol"]
    assert found_though_empty("ssl_protocol", tls, defined, secure)
    assert not found_though_empty("ssl_protocol", tls, defined, plain)


@pytest.mark.parametrize("zone,iso,local", [
    ("UTC0", r"\+00:00", r"\+0000"), ("EST5EDT", r"-0[45]:00", r"-0[45]00"),
    ("<+0530>-5:30", r"\+05:30", r"\+0530")])
def test_times_are_nginx_s_read_when_asked(monkeypatch: pytest.MonkeyPatch, zone: str,
                                           iso: str, local: str) -> None:
    # nginx's $time_iso8601 writes its offset as +HH:MM, and both are the time of
    # reading (an access log's line: the request's end), not the request's start
    import re

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        r = request(start=time.time() - 3600)
        before = time.time()
        shown = BUILTIN["time_iso8601"](r)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d" + iso, shown), shown
        stamp = time.mktime(time.strptime(shown[:19], "%Y-%m-%dT%H:%M:%S"))
        assert abs(stamp - before) < 2
        local_shown = BUILTIN["time_local"](r)
        assert re.fullmatch(r"\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d " + local, local_shown), \
            local_shown
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("args,found", [
    ("a=", True), ("a=1", True), ("A=", True), ("b=1&a=", True), ("a", False),
    ("ba=1", False), ("", False), ("b=a=", False), ("a&a=3", True)])
def test_an_argument_is_found_where_its_name_and_equals_are(args: str, found: bool) -> None:
    """``$arg_a``, as nginx's ngx_http_arg finds it: "a=" in the query string, its value
    empty or not (an access log then writes nothing, SSI's echo takes no default); "a"
    without "=" is not found (the log's "-")."""
    r = SimpleNamespace(args=args, connection=SimpleNamespace(tls=None))
    get = PREFIXES["arg_"]("a")
    assert found_though_empty("arg_a", get, {}, r) is found
    assert log_blanks("$arg_a", set())[0](r) == (b"" if found else b"-")
    assert get(r) == {"a=1": "1", "a&a=3": "3"}.get(args, "")  # ("a" alone: read past)
