"""The SSL module's directives: what each maps onto in the built ``ssl.SSLContext``,
``-t`` failing with the directive's FILE:LINE on anything OpenSSL refuses, and one
``[warn]`` for what Python's ssl cannot do."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
from helpers import FFDHE2048_PEM, self_signed

from fastgate.config import ConfigError, load_config
from fastgate.config.model import Config, UserFile
from fastgate.config.tls import by_value, server_context
from fastgate.ops.certificates import rendered


def _load(tmp: Path, server: str, http: str = "") -> Config:
    path = tmp / "t.conf"
    path.write_text("http {\n" + http + "\nserver { listen 127.0.0.1:8443 ssl;\n"
                    + server + "\n} }\n")
    return load_config(str(path))


def _error(tmp: Path, server: str, http: str = "") -> str:
    with pytest.raises(ConfigError) as e:
        _load(tmp, server, http)
    return str(e.value)


def _pair(tmp: Path) -> str:
    crt, key = self_signed(tmp)
    return f"ssl_certificate {crt}; ssl_certificate_key {key};"


def test_listen_ssl_without_certificate_names_the_listen(tmp_path: Path) -> None:
    assert _error(tmp_path, "") == ('no "ssl_certificate" is defined for the "listen ... ssl" '
                                    f"directive in {tmp_path}/t.conf:3")


def test_ssl_on_is_deprecated_and_makes_every_listen_ssl(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http { server { listen 127.0.0.1:8080;\n" + _pair(tmp_path)
                    + "\nssl on;\n} }\n")
    config = load_config(str(path))
    assert [x.ssl for x in config.servers[0].listens] == [True]
    assert config.warnings == (f'[warn] the "ssl" directive is deprecated, use the "listen '
                               f'... ssl" directive instead in {path}:3',)


def test_missing_certificate_fails_at_its_line(tmp_path: Path) -> None:
    _, key = self_signed(tmp_path)
    msg = _error(tmp_path, f"ssl_certificate_key {key};\nssl_certificate missing.pem;")
    assert msg == (f'cannot open "{tmp_path}/missing.pem" (2: No such file or directory) '
                   f"in {tmp_path}/t.conf:5")


def test_certificate_in_http_fails_even_without_an_ssl_listen(tmp_path: Path) -> None:
    # nginx loads a server's certificates whether it listens with ssl or not
    path = tmp_path / "t.conf"
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    _, key = self_signed(tmp_path)
    path.write_text(f"http {{ ssl_certificate junk.pem; ssl_certificate_key {key};\n"
                    "server { listen 127.0.0.1:8080; } }\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(path))
    assert str(e.value) == (f'cannot load certificate "{tmp_path}/junk.pem": not a PEM '
                            f"certificate in {path}:1")


def test_certificate_without_key(tmp_path: Path) -> None:
    crt, _ = self_signed(tmp_path)
    assert _error(tmp_path, f"ssl_certificate {crt};") == (
        f'no "ssl_certificate_key" is defined for certificate "{crt}" in {tmp_path}/t.conf:4')


def test_key_of_another_certificate(tmp_path: Path) -> None:
    crt, _ = self_signed(tmp_path)
    _, other = self_signed(tmp_path, stem="other-")
    msg = _error(tmp_path, f"ssl_certificate {crt};\nssl_certificate_key {other};")
    assert msg.startswith(f'cannot load certificate key "{other}" for certificate "{crt}": ')
    assert msg.endswith(f"in {tmp_path}/t.conf:5")


def test_encrypted_key_needs_the_password_file(tmp_path: Path) -> None:
    crt, key = self_signed(tmp_path, passphrase=b"s3cret")
    pair = f"ssl_certificate {crt};\nssl_certificate_key {key};"
    assert _error(tmp_path, pair).endswith(f"in {tmp_path}/t.conf:5")
    (tmp_path / "wrong").write_text("nope\nstill-nope\n")
    msg = _error(tmp_path, pair + "\nssl_password_file wrong;")
    assert msg.startswith(f'cannot load certificate key "{key}"')
    assert msg.endswith(f"in {tmp_path}/t.conf:6")
    # each passphrase is tried in turn, as nginx does
    (tmp_path / "passwords").write_text("nope\ns3cret\n")
    config = _load(tmp_path, pair + "\nssl_password_file passwords;")
    assert config.servers[0].settings.ssl_password_file == ("nope", "s3cret")
    server_context(config.servers[0].settings)


def test_empty_password_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    assert _error(tmp_path, _pair(tmp_path) + "\nssl_password_file empty;").startswith(
        f'cannot use empty password file "{tmp_path}/empty"')


def test_ciphers_and_preference_reach_the_context(tmp_path: Path) -> None:
    config = _load(tmp_path, _pair(tmp_path) + "\nssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384;"
                   "\nssl_prefer_server_ciphers on; ssl_session_tickets off;")
    ctx = server_context(config.servers[0].settings)
    tls12 = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == {"ECDHE-ECDSA-AES256-GCM-SHA384"}
    assert ctx.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert ctx.options & ssl.OP_NO_TICKET
    assert ctx.num_tickets == 0


def test_defaults_keep_pythons_ciphers_and_tickets(tmp_path: Path) -> None:
    ctx = server_context(_load(tmp_path, _pair(tmp_path)).servers[0].settings)
    assert ctx.get_ciphers() == ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).get_ciphers()
    assert not ctx.options & ssl.OP_NO_TICKET
    # Python's server contexts prefer the server's order; "off" (nginx's default) is
    # honoured only where it is written
    assert ctx.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    off = _load(tmp_path, _pair(tmp_path) + "\nssl_prefer_server_ciphers off;")
    assert not server_context(off.servers[0].settings).options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert (ctx.minimum_version, ctx.maximum_version) == (ssl.TLSVersion.TLSv1_2,
                                                          ssl.TLSVersion.TLSv1_3)


def test_bad_cipher_string(tmp_path: Path) -> None:
    assert _error(tmp_path, _pair(tmp_path) + "\nssl_ciphers NO-SUCH-CIPHER;") == (
        'SSL_CTX_set_cipher_list("NO-SUCH-CIPHER") failed: no cipher matches '
        f"in {tmp_path}/t.conf:5")


def test_curves(tmp_path: Path) -> None:
    assert _error(tmp_path, _pair(tmp_path) + "\nssl_ecdh_curve nocurve;") == (
        f'SSL_CTX_set1_curves_list("nocurve") failed in {tmp_path}/t.conf:5')
    _load(tmp_path, _pair(tmp_path) + "\nssl_ecdh_curve secp384r1;")
    config = _load(tmp_path, _pair(tmp_path) + "\nssl_ecdh_curve X25519:prime256v1;")
    assert config.warnings == ()  # a list is applied (fastgate.openssl), as nginx's


def test_engine(tmp_path: Path) -> None:
    path = tmp_path / "e.conf"
    path.write_text("ssl_engine dynamic;\nhttp { }")
    load_config(str(path))  # (OpenSSL's engine loader, always there)
    path.write_text("ssl_engine no-such-engine;\nhttp { }")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == f'ENGINE_by_id("no-such-engine") failed in {path}:1'


def test_conf_commands_go_to_openssl(tmp_path: Path) -> None:
    config = _load(tmp_path, _pair(tmp_path) + "\nssl_conf_command Options -SessionTicket;"
                   "\nssl_conf_command MaxProtocol TLSv1.2;")
    ctx = server_context(config.servers[0].settings)
    assert ctx.options & ssl.OP_NO_TICKET and ctx.maximum_version == ssl.TLSVersion.TLSv1_2
    assert _error(tmp_path, _pair(tmp_path) + "\nssl_conf_command Nonsense x;") == (
        f'SSL_CONF_cmd("Nonsense", "x") failed in {tmp_path}/t.conf:5')


def test_dhparam(tmp_path: Path) -> None:
    (tmp_path / "dh.pem").write_text(FFDHE2048_PEM)
    _load(tmp_path, _pair(tmp_path) + "\nssl_dhparam dh.pem;")
    (tmp_path / "bad.pem").write_text("junk\n")
    assert _error(tmp_path, _pair(tmp_path) + "\nssl_dhparam bad.pem;").startswith(
        f'cannot load DH parameters "{tmp_path}/bad.pem": ')
    assert _error(tmp_path, _pair(tmp_path) + "\nssl_dhparam none.pem;").startswith(
        f'cannot open "{tmp_path}/none.pem" (2: No such file or directory) in ')


def test_protocols(tmp_path: Path) -> None:
    ctx = server_context(_load(tmp_path, _pair(tmp_path) + "\nssl_protocols TLSv1.3;")
                         .servers[0].settings)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    assert _error(tmp_path, _pair(tmp_path) + "\nssl_protocols SSLv3;") == (
        "ssl_protocols enables no protocol this OpenSSL supports (TLSv1 to TLSv1.3) "
        f"in {tmp_path}/t.conf:5")
    assert _error(tmp_path, _pair(tmp_path) + "\nssl_protocols TLSv9;").startswith(
        'invalid value "TLSv9" in ')


def test_two_certificates_pair_in_order(tmp_path: Path) -> None:
    rsa_crt, rsa_key = self_signed(tmp_path, kind="rsa", stem="rsa-")
    ec_crt, ec_key = self_signed(tmp_path, stem="ec-")
    config = _load(tmp_path, f"ssl_certificate {rsa_crt}; ssl_certificate_key {rsa_key};\n"
                             f"ssl_certificate {ec_crt}; ssl_certificate_key {ec_key};")
    s = config.servers[0].settings
    assert s.ssl_certificate == (str(rsa_crt), str(ec_crt))
    assert s.ssl_certificate_key == (str(rsa_key), str(ec_key))


def test_certificates_set_in_server_replace_the_http_ones(tmp_path: Path) -> None:
    crt, key = self_signed(tmp_path)
    inner_crt, inner_key = self_signed(tmp_path, stem="inner-")
    config = _load(tmp_path, f"ssl_certificate {inner_crt}; ssl_certificate_key {inner_key};",
                   http=f"ssl_certificate {crt}; ssl_certificate_key {key};")
    assert config.servers[0].settings.ssl_certificate == (str(inner_crt),)


def test_certificate_paths_with_variables_are_loaded_at_the_handshake(
        tmp_path: Path) -> None:
    """nginx checks nothing of them at load but the variables (the files are the
    handshake's: fastgate.ops.certificates); the server's context has no certificate."""
    config = _load(tmp_path, "ssl_certificate certs/$hostname.pem;\n"
                             "ssl_certificate_key /keys/${hostname}.key;")
    s = config.servers[0].settings
    cert, key = s.ssl_certificate[0], s.ssl_certificate_key[0]
    assert isinstance(cert, UserFile) and isinstance(key, UserFile)
    assert by_value(s)
    assert server_context(s).get_ca_certs() == []
    host = socket.gethostname()
    assert rendered(cert, None) == f"{tmp_path}/certs/{host}.pem"
    assert rendered(key, None) == f"/keys/{host}.key"
    assert _error(tmp_path, "ssl_certificate $nope.pem; ssl_certificate_key k;") == (
        f'unknown "nope" variable in {tmp_path}/t.conf:4')


def test_one_certificate_with_variables_makes_them_all_the_handshakes(
        tmp_path: Path) -> None:
    crt, key = self_signed(tmp_path)
    s = _load(tmp_path, f"ssl_certificate {crt}; ssl_certificate_key {key};\n"
                        "ssl_certificate $ssl_server_name.rsa; "
                        "ssl_certificate_key $ssl_server_name.rsakey;").servers[0].settings
    assert by_value(s) and s.ssl_certificate[0] == str(crt)


@pytest.mark.parametrize("block", ["stream", "mail"])
def test_certificate_paths_with_variables_are_not_done_in_stream_and_mail(
        tmp_path: Path, block: str) -> None:
    path = tmp_path / "t.conf"
    path.write_text(f"{block} {{ server {{ listen 127.0.0.1:9443 ssl;\n"
                    "ssl_certificate $ssl_server_name.pem; } }\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(path))
    assert str(e.value) == (
        'variables in "ssl_certificate" are not done in the stream and mail blocks: only '
        f"an HTTP server loads its certificate at the handshake in {path}:2")


@pytest.mark.parametrize("directive,warned", [
    ("ssl_session_cache shared:SSL:10m;", 'a "shared:" session cache is kept by each worker'),
    ("ssl_session_cache builtin:1000 shared:SSL:1m;",
     'a "shared:" session cache is kept by each worker'),
    ("ssl_session_cache off;", None),
    ("ssl_session_cache builtin;", None),
    ("ssl_session_timeout 1d;", None),
    ("ssl_stapling on;", '"ssl_stapling" directive is ignored'),
    ("ssl_stapling off;", None),
    ("ssl_stapling_verify on;", '"ssl_stapling_verify" directive is ignored'),
    ("ssl_buffer_size 4k;", '"ssl_buffer_size" directive is ignored'),
    ("ssl_early_data on;", '"ssl_early_data" directive is ignored'),
    ("ssl_early_data off;", None),
    ("ssl_trusted_certificate cert.pem;", '"ssl_trusted_certificate" checks client certificates only'),
])
def test_what_pythons_ssl_cannot_do_is_warned_once(tmp_path: Path, directive: str,
                                                   warned: str | None) -> None:
    config = _load(tmp_path, _pair(tmp_path) + "\n" + directive,
                   http=directive.replace(" 4k;", " 8k;") if warned else "")
    if warned is None:
        assert config.warnings == ()
    else:
        # given twice (http and server): one line, with the count
        assert len(config.warnings) == 1
        assert config.warnings[0].startswith(f"[warn] {warned} (2 times): ")
        assert config.warnings[0].endswith(f"in {tmp_path}/t.conf:2")


@pytest.mark.parametrize(("directives", "kept"), [
    ("", 0),  # nginx's default "none": no session is kept
    ("ssl_session_cache builtin:1000;", 1), ("ssl_session_cache shared:SSL:1m;", 1),
    ("ssl_session_cache off;", 0), ("ssl_session_cache none;", 0),
])
def test_session_cache_modes(tmp_path: Path, directives: str, kept: int) -> None:
    """A handshake's session kept in the server's cache, or not, as nginx's cache mode
    says (SSL_CTX_set_session_cache_mode)."""
    config = _load(tmp_path, _pair(tmp_path) + "\nssl_session_tickets off;" + directives)
    server = server_context(config.servers[0].settings)
    client = ssl.create_default_context()
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    client.maximum_version = ssl.TLSVersion.TLSv1_2  # (a session kept at once)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):  # the handshake, passed back and forth in memory
        for side in (c, srv):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    assert c.version() == "TLSv1.2"
    assert server.session_stats()["number"] == kept


def test_bad_session_cache(tmp_path: Path) -> None:
    assert _error(tmp_path, _pair(tmp_path) + "\nssl_session_cache private;").startswith(
        'invalid session cache "private" in ')
    assert _error(tmp_path, _pair(tmp_path) + "\nssl_session_cache shared:SSL:lots;").startswith(
        '"ssl_session_cache" directive invalid value in ')


# --- proxy_ssl_*: an https:// proxy_pass ---------------------------------------------


def _proxy(tmp: Path, location: str, http: str = "") -> Config:
    path = tmp / "t.conf"
    path.write_text("http {\n" + http + "\nupstream be { server 127.0.0.1:9443; }\n"
                    "server { listen 127.0.0.1:8080;\n" + location + "\n} }\n")
    return load_config(str(path))


def _proxy_error(tmp: Path, location: str) -> str:
    with pytest.raises(ConfigError) as e:
        _proxy(tmp, location)
    return str(e.value)


def test_verify_needs_trusted_certificates(tmp_path: Path) -> None:
    assert _proxy_error(tmp_path, "location / { proxy_pass https://be;\n"
                                  "proxy_ssl_verify on; }") == (
        'no "proxy_ssl_trusted_certificate" for "proxy_ssl_verify" '
        f"in {tmp_path}/t.conf:6")


def test_upstream_tls_settings_are_checked_where_an_https_proxy_pass_uses_them(
        tmp_path: Path) -> None:
    assert _proxy_error(tmp_path, "location / { proxy_pass https://be;\n"
                                  "proxy_ssl_ciphers NOPE; }") == (
        f'SSL_CTX_set_cipher_list("NOPE") failed: no cipher matches in {tmp_path}/t.conf:6')
    crt, _ = self_signed(tmp_path)
    assert _proxy_error(tmp_path, f"location / {{ proxy_pass https://be;\n"
                                  f"proxy_ssl_certificate {crt}; }}") == (
        f'no "proxy_ssl_certificate_key" is defined for certificate "{crt}" '
        f"in {tmp_path}/t.conf:6")
    (tmp_path / "junk.pem").write_text("junk\n")
    msg = _proxy_error(tmp_path, "location / { proxy_pass https://be; proxy_ssl_verify on;\n"
                                 "proxy_ssl_trusted_certificate junk.pem; }")
    assert msg.startswith(f'cannot load trusted certificates "{tmp_path}/junk.pem": ')
    assert msg.endswith(f"in {tmp_path}/t.conf:6")
    # over plain http the same settings are not used, so not loaded (as nginx)
    _proxy(tmp_path, "location / { proxy_pass http://be; proxy_ssl_ciphers NOPE; }")


def test_one_pool_per_upstream_and_tls_setting(tmp_path: Path) -> None:
    config = _proxy(tmp_path, """
      location /a/ { proxy_pass https://be; }
      location /b/ { proxy_pass https://be; }
      location /c/ { proxy_pass https://be; proxy_ssl_server_name on; }
      location /d/ { proxy_pass http://be; }
      location /e/ { proxy_pass https://127.0.0.1:9444; proxy_ssl_name api.internal; }""")
    pools = {loc.pattern: loc.proxy_pass.pool for loc in config.servers[0].locations.all()}
    assert pools["/a/"] == pools["/b/"] == "be tls:1"
    assert pools["/c/"] == "be tls:2"
    assert pools["/d/"] == "be"
    assert pools["/e/"] == "127.0.0.1:9444 tls:3"
    assert config.tls_pools["be tls:1"][1].name == "be"  # $proxy_host, nginx's default
    assert not config.tls_pools["be tls:1"][1].server_name
    assert config.tls_pools["be tls:2"][1].server_name
    assert config.tls_pools["127.0.0.1:9444 tls:3"][1].name == "api.internal"


def test_proxy_ssl_name_with_variables_picks_the_pool_per_request(tmp_path: Path) -> None:
    config = _proxy(tmp_path, "location / { proxy_pass https://be; proxy_ssl_name $host; }")
    pp = config.servers[0].locations.find("/")[0].proxy_pass
    assert pp.tls_name is not None and pp.tls_name.source == "$host"
    config = _proxy(tmp_path, "location / { proxy_pass https://be; proxy_ssl_name $proxy_host; }")
    assert config.tls_pools["be tls:1"][1].name == "be"
    assert config.servers[0].locations.find("/")[0].proxy_pass.tls_name is None


def test_client_certificates_at_load(tmp_path: Path) -> None:
    pair = _pair(tmp_path)
    crt = tmp_path / "cert.pem"
    # optional_no_ca needs no CA (nginx's rule); the others one of the two
    cfg = _load(tmp_path, f"{pair} ssl_verify_client optional_no_ca;")
    assert server_context(cfg.servers[0].settings).verify_mode == ssl.CERT_OPTIONAL
    _load(tmp_path, f"{pair} ssl_verify_client on; ssl_trusted_certificate {crt};")
    assert 'invalid value "maybe"' in _error(tmp_path, f"{pair} ssl_verify_client maybe;")
    assert "no ssl_client_certificate for ssl_verify_client" in _error(
        tmp_path, f"{pair} ssl_verify_client on;")
    assert "cannot open" in _error(tmp_path, f"{pair} ssl_client_certificate /nonexistent;")
    cfg = _load(tmp_path, f"{pair} ssl_verify_client optional; ssl_client_certificate {crt};"
                          " ssl_verify_depth 3;")
    s = cfg.servers[0].settings
    assert (s.ssl_verify_client, s.ssl_verify_depth) == ("optional", 3)
    ctx = server_context(s)
    assert ctx.verify_mode == ssl.CERT_OPTIONAL


def test_servers_sharing_a_tls_address_check_client_certificates_alike(tmp_path: Path) -> None:
    pair = _pair(tmp_path)
    crt = tmp_path / "cert.pem"
    path = tmp_path / "two.conf"
    path.write_text(f"""http {{
      server {{ listen 127.0.0.1:8443 ssl; server_name a; {pair} }}
      server {{ listen 127.0.0.1:8443 ssl; server_name b; {pair}
                ssl_verify_client on; ssl_client_certificate {crt}; }} }}""")
    with pytest.raises(ConfigError, match="servers on 127.0.0.1:8443 differ in client "
                                          "certificate settings"):
        load_config(str(path))


def test_a_rejecting_default_server_beside_one_that_checks_client_certificates(
        tmp_path: Path) -> None:
    pair = _pair(tmp_path)
    crt = tmp_path / "cert.pem"
    path = tmp_path / "reject.conf"
    path.write_text(f"""http {{
      server {{ listen 127.0.0.1:8443 ssl default_server; ssl_reject_handshake on; }}
      server {{ listen 127.0.0.1:8443 ssl; server_name b; {pair}
                ssl_verify_client on; ssl_client_certificate {crt}; }} }}""")
    assert load_config(str(path)).servers[1].settings.ssl_verify_client == "on"


def test_ocsp_at_load(tmp_path: Path) -> None:
    pair = _pair(tmp_path)
    crt = tmp_path / "cert.pem"
    verify = f"{pair} ssl_verify_client on; ssl_client_certificate {crt};"
    cfg = _load(tmp_path, f"{verify} ssl_ocsp leaf; ssl_ocsp_responder http://127.0.0.1:9/o;"
                          " ssl_ocsp_cache shared:OCSP:1m;")
    policy = server_context(cfg.servers[0].settings).ocsp  # type: ignore[attr-defined]
    assert (policy.leaf_only, policy.responder, policy.cache) == (
        True, "http://127.0.0.1:9/o", "OCSP")
    assert cfg.warnings == () and cfg.ocsp_caches == {"OCSP": 1024 * 1024}
    policy = server_context(_load(tmp_path, f"{verify} ssl_ocsp on;").servers[0].settings
                            ).ocsp  # type: ignore[attr-defined]
    assert (policy.leaf_only, policy.responder, policy.cache) == (False, "", "")
    # off, or no certificate asked for: no check
    assert server_context(_load(tmp_path, f"{verify} ssl_ocsp off;").servers[0].settings
                          ).ocsp is None  # type: ignore[attr-defined]
    assert server_context(_load(tmp_path, f"{pair} ssl_ocsp on;").servers[0].settings
                          ).ocsp is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(("directive", "message"), [
    ("ssl_ocsp maybe;", 'invalid value "maybe" in "ssl_ocsp" directive, it must be "on", '
                        '"off" or "leaf"'),
    ("ssl_ocsp_responder https://ocsp.example/;",
     'invalid URL prefix in OCSP responder "https://ocsp.example/" in "ssl_ocsp_responder"'),
    ("ssl_ocsp_responder http://;", 'invalid URL prefix in OCSP responder "http://"'),
    ("ssl_ocsp_responder http://no-such-host.invalid/;",
     'host not found in OCSP responder "no-such-host.invalid/" in "ssl_ocsp_responder"'),
    ("ssl_ocsp_responder http://127.0.0.1:99999/;", 'invalid port in OCSP responder'),
    ("ssl_ocsp_cache builtin;", 'invalid OCSP cache "builtin"'),
    ("ssl_ocsp_cache one:1m;", 'invalid OCSP cache "one:1m"'),  # (nginx: shared: needed)
    ("ssl_ocsp_cache shared:one:lots;", 'invalid OCSP cache "shared:one:lots"'),
    ("ssl_ocsp_cache shared:one:16k;", 'OCSP cache "shared:one:16k" is too small'),
])
def test_ocsp_refusals(tmp_path: Path, directive: str, message: str) -> None:
    msg = _error(tmp_path, f"{_pair(tmp_path)}\n{directive}")
    assert message in msg and msg.endswith(f"{tmp_path}/t.conf:5")


def test_ocsp_caches_are_shared_memory_zones(tmp_path: Path) -> None:
    """Servers naming one cache share it; a name is one zone (nginx's shared memory
    rules): another size, or a limit zone of the name, is refused."""
    pair = _pair(tmp_path)
    def two(size: str) -> str:
        return (f"{pair} ssl_ocsp_cache shared:c:64k; }} server {{ listen 127.0.0.1:8444 "
                f"ssl; {pair} ssl_ocsp_cache shared:c:{size};")
    assert _load(tmp_path, two("64k")).ocsp_caches == {"c": 65536}
    msg = _error(tmp_path, two("128k"))
    assert 'the size 131072 of shared memory zone "c" conflicts with already declared size ' \
           '65536' in msg
    msg = _error(tmp_path, f"{pair} ssl_ocsp_cache shared:z:64k; }} limit_req_zone $uri "
                           "zone=z:1m rate=1r/s; server { listen 127.0.0.1:8445;")
    assert 'the shared memory zone "z" is already declared for a different use' in msg
    msg = _error(tmp_path, f"{pair} }} limit_req_zone $uri zone=z:1m rate=1r/s; server {{ "
                           f"listen 127.0.0.1:8445 ssl; {pair} ssl_ocsp_cache shared:z:64k;")
    assert 'the shared memory zone "z" is already declared for a different use' in msg


@pytest.mark.parametrize(("given", "name"), [
    ("api.example", "api.example"), ("api.example:8443", "api.example"),
    ("[::1]:443", "[::1]"), ("", ""), ("x" * 64 + ".example", ""), ("a..b", ""),
    ("a\x00b", ""), ("/run/app.sock", "/run/app.sock"),
])
def test_an_upstream_tls_name_as_nginx_sends_it(given: str, name: str) -> None:
    """MODULE_ssl_name's value loses its port as nginx's ngx_http_upstream_ssl_name
    strips it; an empty one is no name (not the host); one Python's ssl cannot send is
    none either, never an error when connecting."""
    from fastgate.config.model import Settings
    from fastgate.config.tls import upstream_tls

    assert upstream_tls(Settings(), "host.example", given).name == name
    assert upstream_tls(Settings(), "host.example:1").name == "host.example"


def test_an_empty_name_with_verification_passes_no_certificate(tmp_path: Path) -> None:
    """A MODULE_ssl_name with variables that renders empty, with verification on: nginx
    checks the certificate against "", which none passes; here the context trusts no
    certificate (and asks for no name, so asyncio's "" is no error)."""
    import dataclasses

    from fastgate.config.model import UpstreamTls
    from fastgate.config.tls import upstream_context

    crt, _ = self_signed(tmp_path, "backend.example")
    named = UpstreamTls(name="backend.example", verify=True, trusted_certificate=str(crt))
    ctx = upstream_context(named)
    assert ctx.check_hostname and ctx.cert_store_stats()["x509"] == 1
    empty = upstream_context(dataclasses.replace(named, name=""))
    assert not empty.check_hostname and empty.verify_mode == ssl.CERT_REQUIRED
    assert empty.cert_store_stats()["x509"] == 0
