"""resolver, resolver_timeout, proxy_pass with variables, and upstream names resolved at
load (``-t`` fails on one that does not resolve, as ``nginx -t``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import server_config_error

from fastgate.config import ConfigError, load_config
from fastgate.config.model import Resolver


def _load(tmp: Path, server: str, http: str = ""):  # type: ignore[no-untyped-def]
    path = tmp / "t.conf"
    path.write_text("http {\n" + http + "\nserver { listen 127.0.0.1:8080;\n" + server
                    + "\n} }\n")
    return load_config(str(path))


def test_resolver(tmp_path: Path) -> None:
    config = _load(tmp_path, "resolver 10.0.0.2 [2001:db8::53]:5353 ::1 localhost:54 "
                             "valid=10s ipv6=off; resolver_timeout 3s;")
    s = config.servers[0].settings
    assert s.resolver is not None and s.resolver.valid == 10.0 and not s.resolver.ipv6
    assert s.resolver.addresses[:3] == (("10.0.0.2", 53), ("2001:db8::53", 5353), ("::1", 53))
    assert ("127.0.0.1", 54) in s.resolver.addresses or ("::1", 54) in s.resolver.addresses
    assert s.resolver_timeout == 3.0
    assert _load(tmp_path, "").servers[0].settings.resolver is None
    assert Resolver((("10.0.0.2", 53),)).ipv6  # nginx's default: both families


@pytest.mark.parametrize("body,message", [
    ("resolver valid=10s;", 'no name servers defined in "resolver"'),
    ("resolver 10.0.0.2 valid=soon;", "invalid"),
    ("resolver 10.0.0.2 ipv4=off;", '"ipv4=off" is not supported'),
    ("resolver no-such-host.invalid;", 'host not found in resolver "no-such-host.invalid"'),
    ("location / { proxy_pass ftp://$host; }", 'invalid URL prefix in "ftp://$host"'),
    ("location / { proxy_pass http://$nosuchvar; }", "unknown"),
    ("location / { proxy_pass http://no-such-host.invalid:8080; }",
     'host not found in upstream "no-such-host.invalid:8080"'),
])
def test_refusals(tmp_path: Path, body: str, message: str) -> None:
    text = server_config_error(tmp_path, body)
    assert message in text and text.endswith(":2")


def test_an_upstream_server_name_must_resolve(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, "", http="upstream be {\nserver no-such-host.invalid:8080; }")
    assert str(e.value) == ('host not found in upstream "no-such-host.invalid:8080" '
                            f"in {tmp_path}/t.conf:3")
    _load(tmp_path, "location / { proxy_pass http://be; }",
          http="upstream be { server localhost:8080; }")


def test_proxy_pass_with_variables(tmp_path: Path) -> None:
    config = _load(tmp_path, "location ~ ^/r/ { proxy_pass http://$host$request_uri; }\n"
                             "location /s/ { set $b http://x; proxy_pass $b; }")
    for loc in config.servers[0].locations.all():
        pp = loc.proxy_pass
        assert pp is not None and pp.template is not None and not pp.as_is
    # a URI part is allowed in a regex location when the URL has variables (nginx)
    assert {loc.proxy_pass.template.source for loc in config.servers[0].locations.all()} == {
        "http://$host$request_uri", "$b"}
