"""The gRPC module's directives at load: grpc_pass's address forms and the :authority
each gives, grpc_set_header merged with nginx's defaults and inherited as
proxy_set_header, grpcs://'s TLS settings, what is ignored with a warning, and what is
refused (FILE:LINE)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastgate.config import load_config
from fastgate.config.errors import ConfigError
from fastgate.proxy.grpc import grpc_plan


def _load(tmp_path: Path, body: str, http: str = ""):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.conf"
    path.write_text("http { upstream svc { server 127.0.0.1:50051; } " + http
                    + "\n server { listen 127.0.0.1:8997;\n" + body + "\n} }")
    return load_config(str(path))


def test_the_address_forms_and_their_authority(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "location /a/ { grpc_pass svc; }\n"
                "location /b/ { grpc_pass grpc://127.0.0.1:50052; }\n"
                "location /c/ { grpc_pass localhost:50053; }\n"
                "location /d/ { grpc_pass unix:/run/app.sock; }\n"
                "location /e/ { grpc_pass grpcs://svc; }\n"
                "location /f/ { grpc_pass grpc://[::1]:50054; }")
    tree = cfg.servers[0].locations
    a, b, c, d, e, f = (tree.find(p)[0] for p in ("/a/", "/b/", "/c/", "/d/", "/e/", "/f/"))
    assert (a.app_pass.kind, a.app_pass.upstream, a.app_pass.authority) == ("grpc", "svc", "svc")
    assert (b.app_pass.upstream, b.app_pass.authority) == ("127.0.0.1:50052",
                                                           "127.0.0.1:50052")
    assert c.app_pass.authority == "localhost:50053" and not c.app_pass.secure
    assert (d.app_pass.unix, d.app_pass.authority) == ("/run/app.sock", "localhost")
    assert e.app_pass.secure and e.app_pass.upstream.startswith("svc tls:")
    assert e.app_pass.upstream in cfg.tls_pools  # its own pool, with grpc_ssl_*'s settings
    assert cfg.tls_pools[e.app_pass.upstream][1].module == "grpc"
    assert f.app_pass.authority == "[::1]:50054"
    assert e.app_pass.secure and not a.app_pass.secure


def test_variables_a_socket_over_tls_and_a_name_with_variables(tmp_path: Path) -> None:
    """What is known only per request stays a template; a socket over TLS keeps its
    path as its TLS name (nginx's host of a unix: URL), its settings checked now."""
    cfg = _load(tmp_path, "location /v/ { grpc_pass $arg_to; grpc_ssl_name $host; }\n"
                "location /u/ { grpc_pass grpcs://unix:/run/app.sock; }\n"
                "location /n/ { grpc_pass grpcs://svc; grpc_ssl_name $host; }")
    tree = cfg.servers[0].locations
    v, u, n = (tree.find(p)[0].app_pass for p in ("/v/", "/u/", "/n/"))
    assert v.template is not None and v.tls_name is not None and not v.secure
    assert (u.unix, u.secure, u.tls_host, u.tls_name) == ("/run/app.sock", True,
                                                         "/run/app.sock", None)
    assert n.secure and n.tls_name is not None and n.upstream in cfg.tls_pools
    plain = _load(tmp_path, "location /p/ { grpc_pass svc; grpc_ssl_name $host; }")
    assert plain.servers[0].locations.find("/p/")[0].app_pass.tls_name is None  # (no TLS)


def test_set_header_merges_with_nginx_defaults_and_inherits_whole(tmp_path: Path) -> None:
    cfg = _load(tmp_path, 'grpc_set_header X-Server "s";\n'
                'location /own/ { grpc_set_header X-Own $uri; grpc_set_header Host h;\n'
                '  grpc_set_header TE ""; grpc_pass svc; }\n'
                "location /inh/ { grpc_pass svc; }")
    tree = cfg.servers[0].locations
    own, inh = grpc_plan(tree.find("/own/")[0]), grpc_plan(tree.find("/inh/")[0])
    # the location's own first, then the defaults it does not set; empty ones not sent
    assert [n for n, _ in own.fields] == [b"x-own", b"host", b"content-length"]
    assert own.host_set and not inh.host_set
    assert b"te" in own.owned and b"x-server" not in own.owned  # replaced, not added to
    assert [n for n, _ in inh.fields] == [b"x-server", b"content-length", b"te"]
    assert inh.owned == {b"x-server", b"content-length", b"te", b"host", b"connection",
                         b"transfer-encoding", b"keep-alive", b"expect", b"upgrade"}
    assert tree.find("/inh/")[0].app_pass.authority == "svc"


def test_timeouts_hiding_and_warnings(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "location / { grpc_pass svc; grpc_read_timeout 5m;\n"
                "grpc_connect_timeout 2s; grpc_intercept_errors on; grpc_hide_header X-A;\n"
                "grpc_pass_header Server; grpc_buffer_size 16k; grpc_ignore_headers "
                "X-Accel-Redirect;\n grpc_next_upstream error timeout; grpc_socket_keepalive "
                "on; grpc_ssl_session_reuse off; }")
    loc = cfg.servers[0].locations.find("/")[0]
    relay = grpc_plan(loc).relay
    assert (relay.read_timeout, relay.connect_timeout, relay.send_timeout) == (300, 2, 60)
    assert relay.intercept_errors and relay.buffer_size == 16384 and not relay.buffering
    assert b"x-a" in relay.drop and b"server" not in relay.drop and b"date" in relay.drop
    assert relay.ignore_headers == {"x-accel-redirect"}
    warned = "\n".join(cfg.warnings)
    assert '"grpc_next_upstream" directive is ignored' in warned
    assert relay.socket_keepalive and "grpc_socket_keepalive" not in warned
    assert "grpc_ssl_session_reuse" not in warned  # off is what fastgate does


@pytest.mark.parametrize("body,message", [
    ("location / { grpc_pass 127.0.0.1; }", 'no port in upstream "127.0.0.1"'),
    ("location / { grpc_pass http://127.0.0.1:1; }", "invalid URL prefix"),
    ("location / { grpc_pass grpcs://unix:/run/app.sock; grpc_ssl_ciphers NOTHING-AT-ALL; }",
     "SSL_CTX_set_cipher_list(\"NOTHING-AT-ALL\") failed"),
    ("location / { grpc_pass $arg_to; grpc_ssl_verify on; }",
     'no "grpc_ssl_trusted_certificate" for "grpc_ssl_verify"'),
    ("location / { grpc_pass grpcs://127.0.0.1:1; grpc_ssl_verify on; }",
     'no "grpc_ssl_trusted_certificate" for "grpc_ssl_verify"'),
    ("location / { grpc_pass grpcs://127.0.0.1:1; grpc_ssl_ciphers NOTHING-AT-ALL; }",
     "SSL_CTX_set_cipher_list(\"NOTHING-AT-ALL\") failed"),
    ("location / { grpc_pass svc; proxy_pass http://svc; }", "one content handler"),
    ("location / { grpc_pass svc; uwsgi_pass svc; }", "in one location"),
    ("location / { grpc_pass svc; grpc_pass svc; }", "is duplicate"),
    ("grpc_pass svc;", "directive is not allowed here"),
    ("grpc_set_header Bad:Name v;", "invalid"),
    ("grpc_ignore_headers X-Nothing;", 'invalid value "X-Nothing"'),
    ("location / { grpc_pass grpcs://127.0.0.1:1; grpc_ssl_conf_command Bogus x; }",
     'SSL_CONF_cmd("Bogus", "x") failed'),
])
def test_refusals(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, body)
    assert message in str(info.value) and str(info.value).endswith(":3")
