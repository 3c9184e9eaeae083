"""The stream block's directives: each where nginx's stream modules take it and
refused elsewhere, their values, what the servers inherit from the block, and the
load-time messages (nginx's where it has one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import self_signed

from fastgate.config import ConfigError, load_config
from fastgate.config.context import STREAM, STREAM_SERVER
from fastgate.config.directives.stream import NOT_DONE, STREAM_TABLE, UPSTREAM_TABLE
from fastgate.config.model import Config

SAMPLES = {
    "server": None,  # a block of the stream block only: below
    "upstream": None,
    "listen": "listen 127.0.0.1:9001;",
    "proxy_pass": "proxy_pass 127.0.0.1:9;",
    "return": "return x;",
    "set": "set $v x;",
    "proxy_connect_timeout": "proxy_connect_timeout 5s;",
    "proxy_timeout": "proxy_timeout 1m;",
    "proxy_next_upstream": "proxy_next_upstream off;",
    "proxy_next_upstream_tries": "proxy_next_upstream_tries 2;",
    "proxy_next_upstream_timeout": "proxy_next_upstream_timeout 3s;",
    "proxy_protocol": "proxy_protocol on;",
    "proxy_half_close": "proxy_half_close on;",
    "tcp_nodelay": "tcp_nodelay off;",
    "ssl_preread": "ssl_preread on;",
    "preread_timeout": "preread_timeout 5s;",
    "preread_buffer_size": "preread_buffer_size 4k;",
    "proxy_protocol_timeout": "proxy_protocol_timeout 5s;",
    "ssl_handshake_timeout": "ssl_handshake_timeout 5s;",
    "proxy_buffer_size": "proxy_buffer_size 16k;",
    "proxy_downstream_buffer": "proxy_downstream_buffer 16k;",
    "proxy_upstream_buffer": "proxy_upstream_buffer 16k;",
    "ssl_alpn": "ssl_alpn h2 http/1.1;",
    "ssl_session_ticket_key": None,  # a key file: tests/config/test_tls_directives.py
    "proxy_bind": "proxy_bind 127.0.0.1;",
    "proxy_socket_keepalive": "proxy_socket_keepalive on;",
    "error_log": "error_log stderr;",
    "resolver": "resolver 127.0.0.1;",
    "resolver_timeout": "resolver_timeout 5s;",
    "variables_hash_max_size": "variables_hash_max_size 1024;",
    "variables_hash_bucket_size": "variables_hash_bucket_size 64;",
    "map_hash_max_size": "map_hash_max_size 1024;",
    "map_hash_bucket_size": "map_hash_bucket_size 64;",
    "log_format": "log_format f '$remote_addr';",
    "access_log": "access_log off;",
    "open_log_file_cache": "open_log_file_cache off;",
    "map": "map $remote_addr $m { default 1; }",
    "geo": "geo $g { default 1; }",
    "split_clients": "split_clients $remote_addr $s { 50% a; * b; }",
    "allow": "allow 127.0.0.1;",
    "deny": "deny all;",
    "ssl_certificate": "ssl_certificate CRT;",
    "ssl_certificate_key": "ssl_certificate_key KEY;",
    "ssl_password_file": "ssl_password_file PASSWORDS;",
    "ssl_protocols": "ssl_protocols TLSv1.2 TLSv1.3;",
    "ssl_ciphers": "ssl_ciphers HIGH:!aNULL;",
    "ssl_prefer_server_ciphers": "ssl_prefer_server_ciphers on;",
    "ssl_session_tickets": "ssl_session_tickets off;",
    "ssl_conf_command": "ssl_conf_command Options PrioritizeChaCha;",
    "ssl_ecdh_curve": "ssl_ecdh_curve prime256v1;",
    "ssl_dhparam": None,  # a file of DH parameters: tests/config/test_tls_directives.py
    "ssl_session_cache": "ssl_session_cache shared:S:1m;",
    "ssl_session_timeout": "ssl_session_timeout 5m;",
    "limit_conn_zone": "limit_conn_zone $remote_addr zone=other:1m;",
    "limit_conn": "limit_conn c 1;",
    "limit_conn_log_level": "limit_conn_log_level warn;",
    "limit_conn_dry_run": "limit_conn_dry_run on;",
    "ssl_verify_client": "ssl_verify_client optional_no_ca;",
    "ssl_client_certificate": "ssl_client_certificate CRT;",
    "ssl_trusted_certificate": "ssl_trusted_certificate CRT;",
    "ssl_verify_depth": "ssl_verify_depth 2;",
    "ssl_crl": None,  # a CRL file: tests/config/test_tls_directives.py
    "set_real_ip_from": "set_real_ip_from 10.0.0.0/8;",
    "geoip_country": None,  # a database: tests/config/test_geoip_directives.py, and the
    "geoip_city": None,  # stream block's use of them in tests/e2e/test_stream_e2e.py
    "geoip_org": None,
    "proxy_requests": "proxy_requests 1;",
    "proxy_responses": "proxy_responses 1;",
    "proxy_upload_rate": "proxy_upload_rate 1m;",
    "proxy_download_rate": "proxy_download_rate 512k;",
    "proxy_ssl": "proxy_ssl on;",
    "proxy_ssl_server_name": "proxy_ssl_server_name on;",
    "proxy_ssl_name": "proxy_ssl_name $ssl_preread_server_name;",
    "proxy_ssl_verify": "proxy_ssl_verify off;",
    "proxy_ssl_trusted_certificate": "proxy_ssl_trusted_certificate CRT;",
    "proxy_ssl_crl": None,  # a CRL file: tests/config/test_tls_directives.py
    "proxy_ssl_protocols": "proxy_ssl_protocols TLSv1.2 TLSv1.3;",
    "proxy_ssl_ciphers": "proxy_ssl_ciphers HIGH:!aNULL;",
    "proxy_ssl_certificate": "proxy_ssl_certificate CRT;",
    "proxy_ssl_certificate_key": "proxy_ssl_certificate_key KEY;",
    "proxy_ssl_password_file": "proxy_ssl_password_file PASSWORDS;",
    "proxy_ssl_verify_depth": "proxy_ssl_verify_depth 2;",
    "proxy_ssl_conf_command": "proxy_ssl_conf_command Options PrioritizeChaCha;",
    "proxy_ssl_session_reuse": "proxy_ssl_session_reuse off;",
}


def _load(tmp_path: Path, text: str) -> Config:
    crt, key = self_signed(tmp_path)
    (tmp_path / "passwords").write_text("secret\n")
    text = (text.replace("CRT", str(crt)).replace("KEY", str(key))
            .replace("PASSWORDS", str(tmp_path / "passwords")))
    path = tmp_path / "t.conf"
    path.write_text(text)
    return load_config(str(path))


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, text)
    return str(e.value)


def test_every_directive_has_a_sample() -> None:
    assert set(STREAM_TABLE) == set(SAMPLES)


CASES = [(name, ctx) for name, sample in SAMPLES.items() if sample is not None
         for ctx in (STREAM, STREAM_SERVER)]


@pytest.mark.parametrize("name,ctx", CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_directive_in_context(tmp_path: Path, name: str, ctx: str) -> None:
    sample = SAMPLES[name]
    assert sample is not None
    handler = "" if name in ("proxy_pass", "return") else "return x;"
    listen = "" if name == "listen" else "listen 127.0.0.1:9001;"
    zone = "limit_conn_zone $remote_addr zone=c:1m;"  # (for limit_conn)
    if ctx == STREAM:
        text = f"stream {{ {zone}\n{sample}\nserver {{ {listen} {handler} }} }}\n"
    else:
        text = f"stream {{ {zone} server {{ {listen} {handler}\n{sample}\n}} }}\n"
    if ctx in STREAM_TABLE[name].contexts:
        _load(tmp_path, text)
    else:
        assert _error(tmp_path, text) == \
            f'"{name}" directive is not allowed here in {tmp_path / "t.conf"}:2'


def test_the_upstream_block(tmp_path: Path) -> None:
    assert set(UPSTREAM_TABLE) == {"server", "hash", "least_conn", "random", "zone"}
    cfg = _load(tmp_path, "stream { upstream u { hash $remote_addr consistent; "
                          "server 127.0.0.1:9001 weight=2 max_fails=3 fail_timeout=5s "
                          "max_conns=7; server 127.0.0.1:9002 down; zone z 64k; }\n"
                          "server { listen 127.0.0.1:9003; proxy_pass u; } }\n")
    assert cfg.stream is not None
    up = cfg.stream.upstreams["u"]
    assert [s.address for s in up.servers] == ["127.0.0.1:9001", "127.0.0.1:9002"]
    assert up.servers[0].weight == 2 and up.servers[0].max_fails == 3
    assert up.servers[0].max_conns == 7 and up.servers[1].max_conns == 0
    assert up.servers[0].fail_timeout == 5.0 and up.servers[1].down
    assert up.balance is not None and up.balance.consistent
    assert cfg.stream.servers[0].upstream == "u"
    assert cfg.upstreams == {}  # HTTP's groups are another namespace
    assert any('"zone" directive is ignored' in w for w in cfg.warnings)


def test_servers_inherit_from_the_block(tmp_path: Path) -> None:
    cfg = _load(tmp_path, """stream {
  proxy_timeout 7s; proxy_connect_timeout 2s; deny 10.0.0.0/8;
  log_format f '$remote_addr $status'; access_log /dev/null f;
  server { listen 127.0.0.1:9001; proxy_pass 127.0.0.1:9; }
  server { listen 127.0.0.1:9002; proxy_timeout 1s; allow all; access_log off; return x; }
}
""")
    assert cfg.stream is not None
    a, b = cfg.stream.servers
    assert (a.timeout, a.connect_timeout, b.timeout, b.connect_timeout) == (7.0, 2.0, 1.0, 2.0)
    assert [r.allow for r in a.settings.access_rules] == [False]
    assert [r.allow for r in b.settings.access_rules] == [True]
    assert len(a.access_log) == 1 and b.access_log == ()
    assert a.upstream == "127.0.0.1:9" and b.return_value is not None


@pytest.mark.parametrize("text,message", [
    ("stream { server { return x; } }", 'no "listen" is defined for server'),
    ("stream { server { listen 9001; } }", "no handler for server"),
    ("stream { server { listen 9001; return x; proxy_pass 127.0.0.1:9; } }",
     '"proxy_pass" directive is duplicate'),
    ("stream { server { listen 9001; return x; }\n server { listen 9001; return y; } }",
     'duplicate "0.0.0.0:9001" address and port pair'),
    ("stream { server { listen 9001 udp ssl; return x; } }",
     '"ssl" parameter is incompatible with "udp"'),
    ("stream { server { listen 9001 udp proxy_protocol; return x; } }",
     '"proxy_protocol" parameter is incompatible with "udp"'),
    ("stream { server { listen 9001 udp; return x; }\n server { listen 9001 udp; return y; } }",
     'duplicate "0.0.0.0:9001" address and port pair'),
    ("stream { server { listen 9001; proxy_pass backend; } }", 'no port in upstream "backend"'),
    ("stream { server { listen 9001; proxy_pass no-such-host.invalid:80; } }",
     'host not found in upstream "no-such-host.invalid:80"'),
    ("stream { server { listen 9001; return $uri; } }", 'unknown "uri" variable'),
    ("stream { access_log /dev/null; server { listen 9001; return x; } }",
     "log format is not specified"),
    ("stream { access_log /dev/null nope; server { listen 9001; return x; } }",
     'unknown log format "nope"'),
    ("stream { server { listen 9001 ssl; return x; } }",
     'no "ssl_certificate" is defined for the "listen ... ssl" directive'),
    ("stream { server { listen 9001; location / { } } }", 'unknown directive "location"'),
    ("stream { server { listen 9001; proxy_pass u; } upstream u { server 127.0.0.1:9; }\n"
     "upstream u { server 127.0.0.1:8; } }", 'duplicate upstream "u"'),
    ("stream { upstream u { server 127.0.0.1; } }", 'no port in upstream "127.0.0.1"'),
    ("stream { }\nstream { }", '"stream" directive is duplicate'),
    ("stream { proxy_upload_rate 12x; }", '"proxy_upload_rate" directive invalid value'),
    ("stream { server { listen unix:/run/s.sock udp; return x; } }",
     '"udp" on a unix socket is not done in fastgate\'s stream block'),
    ("stream { server { listen unix:/run/s.sock reuseport; return x; } }",
     '"reuseport" on a unix socket is not done in fastgate'),
    ("stream { server { listen unix:; return x; } }",
     'no path in the unix domain socket in "unix:" of the "listen" directive'),
    ("stream { server { listen 9001; proxy_pass unix:; } }",
     'no path in the unix domain socket in upstream "unix:"'),
    ("stream { upstream u { server unix:; } server { listen 9001; proxy_pass u; } }",
     'no path in the unix domain socket in upstream "unix:"'),
    ("stream { server { listen unix:/run/s.sock; return x; }\n"
     "server { listen unix:/run/s.sock; return y; } }",
     'duplicate "unix:/run/s.sock" address and port pair'),
    ("stream { server { listen unix:/run/s.sock; return x; } }\n"
     "http { server { listen unix:/run/s.sock; } }",
     '"unix:/run/s.sock" is listened on by an http server and a stream server'),
    ("stream { server { listen 9001; set $remote_addr x; return x; } }",
     'the duplicate "remote_addr" variable'),
    ("stream { set $v x; }", '"set" directive is not allowed here'),
    ("stream { server { listen 9001 ssl; ssl_certificate CRT; ssl_certificate_key KEY; "
     "ssl_verify_client on; return x; } }", "no ssl_client_certificate for ssl_verify_client"),
    ("stream { server { listen 9001; return x; limit_conn nope 1; } }", 'zone "nope" is unknown'),
    ("stream { limit_conn_zone $remote_addr zone=z:1m sync; }",
     '"sync" is not done in the stream block'),
    ("stream { limit_conn_zone $remote_addr zone=z:1m; }\n"
     "http { limit_conn_zone $remote_addr zone=z:1m; }", 'duplicate zone "z"'),
    ("stream { server { listen 9001; proxy_pass 127.0.0.1:9; proxy_ssl on; "
     "proxy_ssl_verify on; } }", "no proxy_ssl_trusted_certificate for proxy_ssl_verify"),
    ("stream { server { listen 9001; proxy_pass 127.0.0.1:9; proxy_ssl on; "
     "proxy_ssl_certificate CRT; } }", 'no "proxy_ssl_certificate_key" is defined'),
    ("stream { server { listen 127.0.0.1:9001; return x; } }\n"
     "http { server { listen 127.0.0.1:9001; } }",
     '"127.0.0.1:9001" is listened on by an http server and a stream server'),
])
def test_messages(tmp_path: Path, text: str, message: str) -> None:
    assert message in _error(tmp_path, text)


@pytest.mark.parametrize("name", sorted(NOT_DONE))
def test_what_is_not_done_is_refused_with_why(tmp_path: Path, name: str) -> None:
    said = _error(tmp_path, f"stream {{ server {{ listen 9001; return x;\n{name} on; }} }}")
    assert said == (f'"{name}" directive is not done in fastgate\'s stream block: '
                    f'{NOT_DONE[name]} in {tmp_path / "t.conf"}:2')


def test_an_address_may_take_tcp_and_udp(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "stream { server { listen 127.0.0.1:9053; listen 127.0.0.1:9053 udp; "
                          "proxy_pass 127.0.0.1:53; proxy_responses 1; } }\n"
                          "http { server { listen 127.0.0.1:9080; } }\n")
    assert cfg.stream is not None
    (server,) = cfg.stream.servers
    assert [x.udp for x in server.listens] == [False, True]
    assert server.proxy_responses == 1 and server.proxy_requests == 0


def test_unix_sockets(tmp_path: Path) -> None:
    """``listen unix:PATH``, ``proxy_pass unix:PATH``, ``server unix:PATH``; a relative
    path is the prefix's, as every path of the configuration."""
    cfg = _load(tmp_path, "stream { upstream u { server unix:/run/a.sock weight=2; "
                          "server 127.0.0.1:9; }\n"
                          "server { listen unix:/run/s.sock; proxy_pass u; }\n"
                          "server { listen unix:rel.sock proxy_protocol; "
                          "proxy_pass unix:/run/b.sock; } }\n")
    assert cfg.stream is not None
    one, two = cfg.stream.servers
    assert [(x.unix, x.port, x.written) for x in one.listens + two.listens] == [
        ("/run/s.sock", 0, "unix:/run/s.sock"),
        (f"{tmp_path}/rel.sock", 0, f"unix:{tmp_path}/rel.sock")]
    a, b = cfg.stream.upstreams["u"].servers
    assert (a.unix, a.address, a.weight, b.unix) == ("/run/a.sock", "unix:/run/a.sock", 2, None)
    assert two.upstream == "unix:/run/b.sock"
    (c,) = cfg.stream.upstreams["unix:/run/b.sock"].servers
    assert (c.unix, c.address) == ("/run/b.sock", "unix:/run/b.sock")


def test_a_stream_only_configuration_loads(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "stream { server { listen 127.0.0.1:9001; return x; } }\n")
    assert cfg.servers == () and cfg.stream is not None


LIST = Path(__file__).with_name("nginx_1.22_stream_directives.txt")
NGINX = [line.split() for line in LIST.read_text().splitlines()
         if line and not line.startswith("#")]
WHERE = {"stream": STREAM, "server": STREAM_SERVER, "upstream": "stream upstream"}


def test_the_list_is_nginx_1_22s_stream_modules() -> None:
    names = {name for _, name, _ in NGINX}
    assert len(NGINX) > 80
    assert {"proxy_pass", "ssl_preread", "limit_conn", "proxy_responses", "hash"} <= names


@pytest.mark.parametrize("module,name,contexts", NGINX, ids=[n for _, n, _ in NGINX])
def test_every_stream_directive_is_taken_where_nginx_takes_it_or_refused_with_why(
        module: str, name: str, contexts: str) -> None:
    if name == "stream":  # (the block itself: the main table's)
        return
    if name in NOT_DONE:
        return
    ours: set[str] = set()
    for table in (STREAM_TABLE, UPSTREAM_TABLE):
        if name in table:
            ours |= table[name].contexts
    assert ours, f"nginx's {name} ({module}) is neither taken nor refused with why"
    theirs = {WHERE[c] for c in contexts.split(",")}
    assert theirs <= ours, f"{name} is not taken in {sorted(theirs - ours)}"
