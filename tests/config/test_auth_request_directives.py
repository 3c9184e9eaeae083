"""auth_request and auth_request_set: arguments, inheritance, and the location it asks
checked at load (it must exist, and proxy or return)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import server_config_error

from fastgate.config import ConfigError, load_config


def _load(tmp: Path, server: str):  # type: ignore[no-untyped-def]
    path = tmp / "t.conf"
    path.write_text("http { server { listen 127.0.0.1:8080;\n" + server + "\n} }\n")
    return load_config(str(path))


def test_settings_and_inheritance(tmp_path: Path) -> None:
    config = _load(tmp_path, """auth_request /auth;
      auth_request_set $user $upstream_http_x_user;
      location = /auth { internal; proxy_pass http://127.0.0.1:9; }
      location /a/ { proxy_pass http://127.0.0.1:9; }
      location /b/ { auth_request off; proxy_pass http://127.0.0.1:9; }""")
    locs = {loc.pattern: loc.settings for loc in config.servers[0].locations.all()}
    assert locs["/a/"].auth_request == "/auth"
    assert locs["/b/"].auth_request is None
    [(name, value)] = locs["/a/"].auth_request_set
    assert name == "user" and value.source == "$upstream_http_x_user"


def test_the_variable_exists_everywhere(tmp_path: Path) -> None:
    # as with set: usable before (and outside) the location that sets it
    _load(tmp_path, """location /x/ { proxy_set_header X-U $user; proxy_pass http://127.0.0.1:9; }
      location /a/ { auth_request @auth; auth_request_set $user $upstream_http_x_user;
                     proxy_pass http://127.0.0.1:9; }
      location @auth { proxy_pass http://127.0.0.1:9; }""")


@pytest.mark.parametrize("body,message", [
    ("auth_request $uri;", 'variables in "auth_request" are not supported'),
    ("auth_request auth;", 'invalid URI "auth" in "auth_request"'),
    ("auth_request_set user $upstream_http_x;", 'invalid variable name "user"'),
    ("auth_request_set $args $upstream_http_x;", '"auth_request_set" cannot set "$args"'),
    ("auth_request /a /b;", 'invalid number of arguments in "auth_request"'),
])
def test_refusals(tmp_path: Path, body: str, message: str) -> None:
    text = server_config_error(tmp_path, body)
    assert message in text and text.endswith(":2")


def test_the_location_asked_must_exist_and_a_mirrors_proxy_or_return(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, "location / { auth_request @nowhere; proxy_pass http://127.0.0.1:9; }")
    assert str(e.value) == f'could not find named location "@nowhere" in {tmp_path}/t.conf:2'
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, "location / { mirror /auth; proxy_pass http://127.0.0.1:9; }\n"
                        "location = /auth { internal; }")
    assert str(e.value) == (
        f'mirror "/auth" reaches a location ({tmp_path}/t.conf:3) that neither '
        "proxies nor returns: fastgate sends a subrequest through proxy_pass or answers it "
        f"with return in {tmp_path}/t.conf:2")
    # auth_request's runs the phases of any other location (a static file answers it)
    _load(tmp_path, "location / { auth_request /auth; proxy_pass http://127.0.0.1:9; }\n"
                    "location = /auth { internal; }")
    _load(tmp_path, "location / { auth_request /auth; proxy_pass http://127.0.0.1:9; }\n"
                    "location = /auth { return 204; }")


@pytest.mark.parametrize("inside,what", [
    ('if ($http_x_block) { return 403; } proxy_pass http://127.0.0.1:9;', "if"),
    ("set $who me; proxy_set_header X-Who $who; proxy_pass http://127.0.0.1:9;", "set"),
    ("rewrite ^ /other break; proxy_pass http://127.0.0.1:9;", "rewrite"),
    ("try_files $uri =404; proxy_pass http://127.0.0.1:9;", "try_files"),
])
@pytest.mark.parametrize("asks", ["mirror /auth;", "auth_request @auth;"])
def test_what_a_subrequest_would_skip_is_refused(tmp_path: Path, inside: str, what: str,
                                                 asks: str) -> None:
    """nginx runs the rewrite module and try_files for a subrequest; fastgate's mirror
    subrequests (and auth_request's to a named location) only proxy or return. A check
    written there (``if ($http_x_block) { return 403; }``) would be skipped, so the
    configuration is refused, saying where and why, rather than loaded with a weaker
    check. (auth_request's to a URI runs them: test_auth_request_e2e.)"""
    if asks.startswith("auth_request"):
        with pytest.raises(ConfigError) as e:
            _load(tmp_path, f"""location @auth {{ {inside} }}
              location / {{ {asks} proxy_pass http://127.0.0.1:9; }}""")
        assert f'auth_request "@auth" reaches a location ({tmp_path}/t.conf:2) with "{what}"' \
            in str(e.value)
        _load(tmp_path, f"""location = /auth {{ internal; {inside} }}
          location / {{ auth_request /auth; proxy_pass http://127.0.0.1:9; }}""")
        return
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, f"""location = /auth {{ internal; {inside} }}
          location / {{ {asks} proxy_pass http://127.0.0.1:9; }}""")
    name = asks.split()[0]
    assert f'{name} "/auth" reaches a location ({tmp_path}/t.conf:2) with "{what}"' in str(e.value)
    assert str(e.value).endswith(f"in {tmp_path}/t.conf:3")
    # a return first answers the subrequest: what follows it never runs, in nginx either
    _load(tmp_path, f"""location = /auth {{ internal; return 204; {inside} }}
      location / {{ {asks} proxy_pass http://127.0.0.1:9; }}""")
