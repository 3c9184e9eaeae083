"""The proxy module's directives at load: what proxy_redirect, proxy_hide_header and
proxy_ignore_headers take and refuse (FILE:LINE)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import server_config_error

from fastgate.config import load_config
from fastgate.config.errors import ConfigError
from fastgate.config.model import Settings
from fastgate.proxy.headers import RESPONSE_DROP, redirect_rules, response_drop


def _load(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.conf"
    path.write_text("http { upstream be { server 127.0.0.1:1; }\n server { listen "
                    "127.0.0.1:8997;\n" + body + "\n} }")
    return load_config(str(path)), str(path)


@pytest.mark.parametrize("body,message", [
    ("proxy_redirect sometimes;", 'invalid parameter "sometimes"'),
    ("proxy_redirect ~^http://(.*( /$1;", "pcre2_compile() failed"),
    ("proxy_redirect default;", '"proxy_redirect default" should be placed after the '
                                '"proxy_pass" directive'),
    ("location /v/ { proxy_pass http://$host; proxy_redirect default; }",
     '"proxy_redirect default" cannot be used with "proxy_pass" directive with variables'),
    ("proxy_ignore_headers X-Powered-By;", 'invalid value "X-Powered-By"'),
    ("proxy_hide_header Bad:Name;", "invalid"),
    # off beside another proxy_redirect of the same level, either way round (nginx's)
    ("location /o/ { proxy_redirect off; proxy_redirect http://a/ /; proxy_pass http://be; }",
     '"proxy_redirect" directive is duplicate'),
    ("location /o/ { proxy_redirect http://a/ /; proxy_redirect off; proxy_pass http://be; }",
     '"proxy_redirect" directive is duplicate'),
    ("proxy_redirect off; proxy_redirect off;", '"proxy_redirect" directive is duplicate'),
])
def test_refusals(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, body)
    assert message in str(info.value) and str(info.value).endswith(":3")


def test_redirect_rules(tmp_path: Path) -> None:
    cfg, _ = _load(tmp_path, """
      location /a/ { proxy_pass http://be/base/; }
      location /b/ { proxy_pass http://be; }
      location ~ ^/c { proxy_pass http://be; }
      location /d/ { proxy_pass http://be; proxy_redirect default; proxy_redirect http://x/ /y/; }
      location /e/ { proxy_redirect off; proxy_pass http://be; }
      location /f/ { proxy_pass http://be; proxy_redirect ~*^http://(\\w+)/ /$1/;
                     proxy_redirect http://$host/ /h/; }""")

    def rules(uri: str):  # type: ignore[no-untyped-def]
        loc, _ = cfg.servers[0].locations.find(uri)
        return [(p, r if isinstance(r, str) else r.source) for p, r in redirect_rules(loc)]

    assert rules("/a/") == [("http://be/base/", "/a/")]
    assert rules("/b/") == [("http://be/", "/")]
    assert rules("/c") == [("http://be/", "/")]  # a regex location: as one without URI
    assert rules("/d/") == [("http://be/", "/"), ("http://x/", "/y/")]
    assert rules("/e/") == []
    (regex, to), (prefix, to2) = redirect_rules(cfg.servers[0].locations.find("/f/")[0])
    assert isinstance(regex, re.Pattern) and regex.flags & re.IGNORECASE
    assert regex.pattern == r"^http://(\w+)/" and not isinstance(to, str) and to.source == "/$1/"
    assert not isinstance(prefix, (str, re.Pattern)) and prefix.source == "http://$host/"


def test_response_drop() -> None:
    assert response_drop((), ()) is RESPONSE_DROP
    drop = response_drop(("x-powered-by",), ("server", "content-length"))
    assert b"x-powered-by" in drop and b"server" not in drop and b"content-length" in drop


@pytest.mark.parametrize("body,message", [
    ("proxy_bind 10.0.0.300;", 'invalid address "10.0.0.300"'),
    ("proxy_bind 10.0.0.1:http;", 'invalid address "10.0.0.1:http"'),
    ("proxy_bind 10.0.0.1 sometimes;", 'invalid parameter "sometimes"'),
])
def test_proxy_bind_refusals(tmp_path: Path, body: str, message: str) -> None:
    text = server_config_error(tmp_path, body)
    assert message in text and text.endswith(":2")


@pytest.mark.parametrize("body,message", [
    ("proxy_cookie_path /a;", 'invalid parameter "/a"'),
    ("proxy_cookie_domain off; proxy_cookie_domain a b;", '"proxy_cookie_domain" directive is duplicate'),
    ("proxy_cookie_flags a secure; proxy_cookie_flags off;", '"proxy_cookie_flags" directive is duplicate'),
    ("proxy_cookie_path ~(unclosed /x;", "pcre2_compile() failed"),
    ("proxy_cookie_flags a b c d e;", 'invalid number of arguments in "proxy_cookie_flags"'),
])
def test_proxy_cookie_refusals(tmp_path: Path, body: str, message: str) -> None:
    text = server_config_error(tmp_path, body)
    assert message in text and text.endswith(":2")


def test_proxy_cookie_flags_warns_of_an_unknown_literal_flag(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http { server { listen 127.0.0.1:8997;\n"
                    "proxy_cookie_flags one secure sometimes; } }\n")
    assert any('invalid proxy_cookie_flags flag "sometimes"' in w
               for w in load_config(str(path)).warnings)


def test_a_filtered_location_takes_the_task_path(tmp_path: Path) -> None:
    cfg, _ = _load(tmp_path, "location /f/ { sub_filter a b; proxy_pass http://be; }\n"
                   "location /p/ { proxy_pass http://be; }")
    tree = cfg.servers[0].locations
    assert not tree.find("/f/")[0].proxy_pass.as_is  # the callback path cannot filter
    assert tree.find("/p/")[0].proxy_pass.as_is


def test_unix_sockets_as_upstream_servers(tmp_path: Path) -> None:
    """``proxy_pass http://unix:PATH[:URI]`` and ``server unix:PATH``, as nginx reads
    them: a group of the socket (Host localhost, no $proxy_port), the URI after the
    path's colon, a relative path beside the file; a socket without a path refused."""
    cfg, _ = _load(tmp_path, "location /a/ { proxy_pass http://unix:/run/app.sock; }\n"
                   "location /b/ { proxy_pass http://unix:app.sock:/base/; }\n"
                   "location /c/ { proxy_pass https://unix:/run/tls.sock; }")
    a, b, c = (cfg.servers[0].locations.find(p)[0].proxy_pass for p in ("/a/", "/b/", "/c/"))
    assert (a.upstream, a.host_header, a.port, a.uri) == ("unix:/run/app.sock", "localhost",
                                                          "", None)
    assert (b.upstream, b.uri) == (f"unix:{tmp_path}/app.sock", "/base/")
    (server,) = cfg.upstreams["unix:/run/app.sock"].servers
    assert (server.unix, server.address) == ("/run/app.sock", "unix:/run/app.sock")
    assert cfg.tls_pools[c.pool][1].name == "/run/tls.sock"  # (nginx's host of unix:)
    path = tmp_path / "u.conf"
    path.write_text("http { upstream app { server unix:/run/a.sock weight=2; "
                    "server 127.0.0.1:1 backup; }\n server { listen 127.0.0.1:8997;\n"
                    "location / { proxy_pass http://app; } } }")
    first, backup = load_config(str(path)).upstreams["app"].servers
    assert (first.unix, first.weight, first.address) == ("/run/a.sock", 2, "unix:/run/a.sock")
    assert backup.unix is None and backup.backup
    for body, message in (("location / { proxy_pass http://unix:; }",
                           "no path in the unix domain socket"),):
        with pytest.raises(ConfigError, match=message):
            _load(tmp_path, body)
    path.write_text("http { upstream app { server unix:; }\n server { listen 127.0.0.1:1;"
                    " location / { proxy_pass http://app; } } }")
    with pytest.raises(ConfigError, match='no path in the unix domain socket in upstream'):
        load_config(str(path))


def test_listen_on_a_unix_socket(tmp_path: Path) -> None:
    """``listen unix:PATH``: its address is "unix:PATH" (a relative path beside the
    file), port 0; no path, or reuseport (the workers share one socket), refused."""
    path = tmp_path / "l.conf"
    path.write_text("http { server { listen unix:/run/front.sock ssl http2 default_server;"
                    " listen unix:rel.sock; ssl_certificate c; ssl_certificate_key k; } }")
    with pytest.raises(ConfigError, match="cannot open"):  # (the files, not the listens)
        load_config(str(path))
    path.write_text("http { server { listen unix:/run/front.sock http2 default_server;"
                    " listen unix:rel.sock; } }")
    first, rel = load_config(str(path)).servers[0].listens
    assert (first.host, first.port, first.unix, first.http2) == (
        "unix:/run/front.sock", 0, "/run/front.sock", True)
    assert rel.unix == f"{tmp_path}/rel.sock" and rel.written == f"unix:{tmp_path}/rel.sock"
    for listen, message in (("unix:", "no path in the unix domain socket"),
                            ("unix:/run/a.sock reuseport", '"reuseport" on a unix socket')):
        path.write_text(f"http {{ server {{ listen {listen}; }} }}")
        with pytest.raises(ConfigError, match=message):
            load_config(str(path))


@pytest.mark.parametrize("servers,message", [
    ("server { listen 127.0.0.1:8997; listen 127.0.0.1:8997; }",
     "a duplicate listen 127.0.0.1:8997 in {path}:1"),
    ("server { listen 8990-8999; listen 127.0.0.1:8997;\nlisten *:8997; }",
     "a duplicate listen 0.0.0.0:8997 in {path}:2"),
    ("server { listen 127.0.0.1:8997 default_server; }\n"
     "server { listen 127.0.0.1:8997 default; }",
     "a duplicate default server for 127.0.0.1:8997 in {path}:2"),
])
def test_an_address_twice_as_nginx_refuses_it(tmp_path: Path, servers: str,
                                              message: str) -> None:
    """nginx's -t fails on one server listening twice on an address, and on two default
    servers for one; two servers on one address, one default, load."""
    path = tmp_path / "t.conf"
    path.write_text(f"http {{ {servers} }}")
    with pytest.raises(ConfigError) as refused:
        load_config(str(path))
    assert str(refused.value).endswith(message.format(path=path)), str(refused.value)
    path.write_text("http { server { listen 127.0.0.1:8997 default_server; listen 8997; }\n"
                    "server { listen 127.0.0.1:8997; listen [::1]:8997 default_server; } }")
    assert len(load_config(str(path)).servers) == 2


@pytest.mark.parametrize("url,message", [
    ("http://127.0.0.1:", 'invalid port in upstream "127.0.0.1:"'),
    ("http://127.0.0.1:99999", 'invalid port in upstream "127.0.0.1:99999"'),
    ("http://[::1]:/", 'invalid port in upstream "[::1]:"'),
    ("http://a b", 'invalid host in upstream "a b"'),
])
def test_proxy_pass_addresses_nginx_refuses(tmp_path: Path, url: str, message: str) -> None:
    path = tmp_path / "t.conf"
    path.write_text(f'http {{ server {{ location / {{ proxy_pass "{url}"; }} }} }}')
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(str(path))


def test_the_url_prefix_is_caseless(tmp_path: Path) -> None:
    """nginx compares "http://" and "https://" caselessly (ngx_strncasecmp)."""
    path = tmp_path / "t.conf"
    path.write_text("http { server { location /a/ { proxy_pass HTTP://127.0.0.1:1/x/; }\n"
                    "location /b/ { proxy_pass Https://127.0.0.1:2; } } }")
    passes = {loc.pattern: loc.proxy_pass for loc in load_config(str(path)).servers[0]
              .locations.all()}
    assert (passes["/a/"].scheme, passes["/a/"].uri) == ("http", "/x/")
    assert (passes["/b/"].scheme, passes["/b/"].uri) == ("https", None)


def test_proxy_buffer_size_bounds_the_response_head(tmp_path: Path) -> None:
    """A page by default, as nginx's; a level's own value, else the outer one's."""
    path = tmp_path / "t.conf"
    path.write_text("http { proxy_buffer_size 16k; server { location /a/ { }\n"
                    "location /b/ { proxy_buffer_size 1m; } }\n"
                    "server { listen 127.0.0.1:8998; location / { } } }")
    config = load_config(str(path))
    sizes = {loc.pattern: loc.settings.proxy_buffer_size
             for loc in config.servers[0].locations.all()}
    assert sizes == {"/a/": 16384, "/b/": 1 << 20}
    path.write_text("http { server { location / { proxy_buffer_size 8x; } } }")
    with pytest.raises(ConfigError, match='"proxy_buffer_size" directive invalid value'):
        load_config(str(path))
    path.write_text("http { server { location / { } } }")
    assert load_config(str(path)).servers[0].locations.all()[0].settings \
        .proxy_buffer_size == 4096


def _settings_unwarned(path: Path, word: str) -> dict[str, Settings]:
    """The first server's locations' settings by name, the file loaded without a
    warning that says ``word``."""
    config = load_config(str(path))
    assert not any(word in w for w in config.warnings), config.warnings
    return {loc.pattern: loc.settings for loc in config.servers[0].locations.all()}


def test_retry_bound_keepalive_and_recursive_pages_merge_as_nginx(tmp_path: Path) -> None:
    """proxy_next_upstream_timeout (msec), the modules' *_socket_keepalive,
    proxy_ignore_client_abort, reset_timedout_connection (in the connection policy) and
    recursive_error_pages: off/0 by default, a level's own value, else the outer one's,
    and none of them warns as ignored."""
    path = tmp_path / "t.conf"
    path.write_text("http { proxy_next_upstream_timeout 1m; proxy_socket_keepalive on;\n"
                    "recursive_error_pages on; proxy_ignore_client_abort on;\n"
                    "reset_timedout_connection on;\n"
                    "server { listen 127.0.0.1:8997; location /a/ { }\n"
                    "location /b/ { proxy_next_upstream_timeout 250ms;\n"
                    "proxy_socket_keepalive off; recursive_error_pages off;\n"
                    "proxy_ignore_client_abort off; reset_timedout_connection off;\n"
                    "fastcgi_socket_keepalive on; uwsgi_socket_keepalive on;\n"
                    "scgi_socket_keepalive on; memcached_socket_keepalive on;\n"
                    "grpc_socket_keepalive on; } }\n"
                    "server { listen 127.0.0.1:8998; location / { } } }")
    got = _settings_unwarned(path, "ignored")
    a, b = got["/a/"], got["/b/"]
    assert (a.proxy_next_upstream_timeout, a.proxy_socket_keepalive,
            a.recursive_error_pages, a.proxy_ignore_client_abort) == (60.0, True, True, True)
    assert (b.proxy_next_upstream_timeout, b.proxy_socket_keepalive,
            b.recursive_error_pages, b.proxy_ignore_client_abort) == (0.25, False, False, False)
    assert all(getattr(b, f"{kind}_socket_keepalive") and not getattr(a, f"{kind}_socket_keepalive")
               for kind in ("fastcgi", "uwsgi", "scgi", "memcached", "grpc"))
    assert (a.conn_policy.reset_timedout_connection,
            b.conn_policy.reset_timedout_connection) == (True, False)
    path.write_text("http { server { listen 127.0.0.1:8997; location / { } } }")
    plain = load_config(str(path)).servers[0].locations.all()[0].settings
    assert (plain.proxy_next_upstream_timeout, plain.proxy_socket_keepalive,
            plain.recursive_error_pages, plain.proxy_ignore_client_abort) == (0.0, False, False,
                                                                              False)
    for bad, message in (("proxy_next_upstream_timeout 1y;", "invalid value"),
                         ("recursive_error_pages maybe;", "invalid value"),
                         ("scgi_socket_keepalive 1;", "invalid value")):
        path.write_text(f"http {{ server {{ listen 127.0.0.1:8997;\n{bad} }} }}")
        with pytest.raises(ConfigError, match=message):
            load_config(str(path))


def test_msie_padding_and_refresh_merge_as_nginx(tmp_path: Path) -> None:
    """msie_padding is on and msie_refresh off by default (nginx's); a level's own value
    wins, else the outer one's; neither warns as ignored; a value other than on/off
    fails -t."""
    path = tmp_path / "t.conf"
    path.write_text("http { msie_padding off; msie_refresh on;\n"
                    "server { listen 127.0.0.1:8997; location /a/ { }\n"
                    "location /b/ { msie_padding on; msie_refresh off; } }\n"
                    "server { listen 127.0.0.1:8998; location / { } } }")
    got = _settings_unwarned(path, "msie")
    assert (got["/a/"].msie_padding, got["/a/"].msie_refresh) == (False, True)
    assert (got["/b/"].msie_padding, got["/b/"].msie_refresh) == (True, False)
    path.write_text("http { server { listen 127.0.0.1:8997; location / { } } }")
    plain = load_config(str(path)).servers[0].locations.all()[0].settings
    assert (plain.msie_padding, plain.msie_refresh) == (True, False)
    path.write_text("http { server { listen 127.0.0.1:8997; msie_refresh 1; } }")
    with pytest.raises(ConfigError, match="invalid value"):
        load_config(str(path))
