"""NGINX Plus's auth_jwt directives at load: the local key request, its checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import server_config_error

from fastgate.config import load_config


@pytest.mark.parametrize("body,message", [
    ("location /a/ { auth_jwt x; auth_jwt_key_request /keys; }",
     'auth_jwt_key_request "/keys" reaches a location'),
    ("location /a/ { auth_jwt x; auth_jwt_key_request /keys$arg_x; }",
     'variables in a local "auth_jwt_key_request" URI are not supported'),
    ("location /a/ { auth_jwt x; auth_jwt_key_request keys.json; }",
     'invalid URL "keys.json"'),
])
def test_local_key_request_refusals(tmp_path: Path, body: str, message: str) -> None:
    assert message in server_config_error(tmp_path, body)


def test_local_key_request_to_an_internal_location_loads(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http { server { listen 127.0.0.1:8997;\n"
                    'location /a/ { auth_jwt "x"; auth_jwt_key_request /keys; }\n'
                    "location = /keys { internal; proxy_pass http://127.0.0.1:1/jwks; } } }")
    loc = load_config(str(path)).servers[0].locations.find("/a/")[0]
    assert loc.settings.auth_jwt_key_request == "/keys" and loc.jwt is not None
