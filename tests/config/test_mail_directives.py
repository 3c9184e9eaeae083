"""The mail block's directives: where each is taken, what each loads into, nginx's
load errors, and a check against nginx 1.22's own list of its mail directives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import self_signed

from fastgate.config.directives.mail import (
    MAIL,
    MAIL_SERVER,
    MAIL_TABLE,
    imap_replies,
    pop3_replies,
    smtp_replies,
)
from fastgate.config.errors import ConfigError
from fastgate.config.load import load_config
from fastgate.config.model import Config

LIST = Path(__file__).with_name("nginx_1.22_mail_directives.txt")
NGINX = [line.split() for line in LIST.read_text().splitlines()
         if line and not line.startswith("#")]
WHERE = {"mail": MAIL, "server": MAIL_SERVER}


def _load(tmp: Path, block: str) -> Config:
    path = tmp / "m.conf"
    path.write_text(f"mail {{\n{block}\n}}\n")
    return load_config(str(path))


def _error(tmp: Path, block: str) -> str:
    with pytest.raises(ConfigError) as e:
        _load(tmp, block)
    return str(e.value)


def test_the_list_is_nginx_1_22s_mail_modules() -> None:
    names = {name for _, name, _ in NGINX}
    assert len(NGINX) == 51
    assert {"auth_http", "imap_auth", "pop3_auth", "starttls", "xclient"} <= names


@pytest.mark.parametrize("module,name,contexts", NGINX, ids=[n for _, n, _ in NGINX])
def test_every_mail_directive_is_taken_where_nginx_takes_it(
        module: str, name: str, contexts: str) -> None:
    if name == "mail":  # (the block itself: the main table's)
        return
    spec = MAIL_TABLE.get(name)
    assert spec is not None, f"nginx's {name} ({module}) is not taken"
    theirs = {WHERE[c] for c in contexts.split(",")}
    assert theirs <= spec.contexts, f"{name} is not taken in {sorted(theirs - spec.contexts)}"


def test_servers_load_with_nginx_defaults(tmp_path: Path) -> None:
    config = _load(tmp_path, """
        auth_http 127.0.0.1:9000;
        server { listen 127.0.0.1:1143; protocol imap; }
        server { listen 127.0.0.1:110; }
        server { listen 127.0.0.1:993; auth_http http://localhost:8080/a/b?x=1;
                 timeout 5s; max_errors 2; proxy_timeout 1m; proxy_buffer 8k;
                 proxy_pass_error_message on; proxy_protocol on; proxy on;
                 auth_http_header X-A "b c"; auth_http_header X-D e;
                 auth_http_timeout 3s; server_name mx.example; }
    """)
    assert config.mail is not None
    imap, pop3, other = config.mail.servers
    assert (imap.protocol, pop3.protocol, other.protocol) == ("imap", "pop3", "imap")
    assert imap.auth_http.uri == "/" and imap.auth_http.host_header == "127.0.0.1"
    assert imap.timeout == 60.0 and imap.max_errors == 5 and imap.client_buffer == 4096
    assert imap.proxy_timeout == 86400.0 and not imap.pass_error_message
    assert imap.starttls == "off" and imap.auth_methods == frozenset({"plain"})
    assert pop3.client_buffer == 128 and pop3.auth_methods == frozenset({"plain", "login"})
    a = other.auth_http
    assert (a.host, a.port, a.host_header, a.uri) == ("localhost", 8080, "localhost", "/a/b?x=1")
    assert other.auth_http_headers == b"X-A: b c\r\nX-D: e\r\n"
    assert (other.timeout, other.max_errors, other.proxy_timeout, other.proxy_buffer) == (
        5.0, 2, 60.0, 8192)
    assert other.pass_error_message and other.send_proxy_protocol
    assert other.auth_http_timeout == 3.0 and other.server_name == "mx.example"
    assert config.warnings == ()


def test_unix_sockets(tmp_path: Path) -> None:
    """``listen unix:PATH`` and ``auth_http unix:PATH[:URI]`` (Host: localhost, as
    nginx's for a socket)."""
    config = _load(tmp_path, """
        auth_http unix:/run/auth.sock;
        server { listen unix:/run/imap.sock; protocol imap; }
        server { listen 127.0.0.1:1143; protocol imap; auth_http http://unix:/run/a.sock:/x/y; }
    """)
    assert config.mail is not None
    one, two = config.mail.servers
    (listen,) = one.listens
    assert (listen.unix, listen.port, listen.written) == ("/run/imap.sock", 0,
                                                          "unix:/run/imap.sock")
    a, b = one.auth_http, two.auth_http
    assert (a.unix, a.name, a.host_header, a.uri) == ("/run/auth.sock", "unix:/run/auth.sock",
                                                      "localhost", "/")
    assert (b.unix, b.name, b.uri) == ("/run/a.sock", "unix:/run/a.sock", "/x/y")


def test_capability_replies_are_nginx_merges() -> None:
    """As ngx_mail_imap_merge_srv_conf and ngx_mail_pop3_merge_srv_conf make them (the
    e2e test compares them with nginx's on the wire)."""
    r = imap_replies(("IMAP4", "IMAP4rev1", "UIDPLUS"), frozenset({"plain", "cram-md5"}))
    assert r["capability"] == b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN AUTH=CRAM-MD5\r\n"
    assert r["starttls_capability"] == (b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN "
                                        b"AUTH=CRAM-MD5 STARTTLS\r\n")
    assert r["starttls_only_capability"] == (b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS "
                                             b"STARTTLS LOGINDISABLED\r\n")
    p = pop3_replies(("TOP", "USER", "UIDL"), frozenset({"plain", "login", "apop"}))
    assert p["capability"] == b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN\r\n.\r\n"
    assert p["starttls_capability"] == (b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\n"
                                        b"SASL PLAIN LOGIN\r\nSTLS\r\n.\r\n")
    assert p["starttls_only_capability"] == (b"+OK Capability list follows\r\nTOP\r\nUIDL\r\n"
                                             b"STLS\r\n.\r\n")
    assert p["auth_capability"] == b"+OK methods supported:\r\nPLAIN\r\nLOGIN\r\n.\r\n"


def test_smtp_replies_are_nginx_merges() -> None:
    r = smtp_replies("mx", ("SIZE 100", "8BITMIME"), frozenset({"plain", "login", "none"}))
    assert r["greeting"] == b"220 mx ESMTP ready\r\n" and r["helo"] == b"250 mx\r\n"
    assert r["capability"] == b"250-mx\r\n250-SIZE 100\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN\r\n"
    assert r["starttls_capability"] == (b"250-mx\r\n250-SIZE 100\r\n250-8BITMIME\r\n"
                                        b"250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n")
    assert r["starttls_only_capability"] == (b"250-mx\r\n250-SIZE 100\r\n250-8BITMIME\r\n"
                                             b"250 STARTTLS\r\n")
    bare = smtp_replies("mx", (), frozenset({"none"}))
    assert bare["capability"] == b"250 mx\r\n"
    assert bare["starttls_capability"] == b"250-mx\r\n250 STARTTLS\r\n"


def test_smtp_servers(tmp_path: Path) -> None:
    config = _load(tmp_path, """
        auth_http 127.0.0.1:9000; resolver 127.0.0.1 valid=5s; resolver_timeout 3s;
        server { listen 127.0.0.1:25; smtp_greeting_delay 1s; xclient off; proxy_smtp_auth on;
                 smtp_client_buffer 1k; smtp_auth none; server_name mx.test; }
        server { listen 127.0.0.1:587; resolver off; }
    """)
    assert config.mail is not None
    a, b = config.mail.servers
    assert (a.protocol, b.protocol) == ("smtp", "smtp")
    assert a.greeting_delay == 1.0 and not a.xclient and a.smtp_auth_upstream
    assert a.client_buffer == 1024 and a.auth_methods == frozenset({"none"})
    assert a.smtp_greeting == b"220 mx.test ESMTP ready\r\n"
    assert a.resolver is not None and a.resolver.valid == 5.0 and a.resolver_timeout == 3.0
    assert b.resolver is None and b.xclient and b.auth_methods == frozenset({"plain", "login"})


@pytest.mark.parametrize("block,message", [
    ("server { listen 127.0.0.1:1143; auth_http 127.0.0.1:1; }",
     "unknown mail protocol for server in {path}:2"),
    ("server { listen 127.0.0.1:1143; protocol imap; }",
     'no "auth_http" is defined for server in {path}:2'),
    ("auth_http 127.0.0.1:1; server { protocol imap; }",
     'no "listen" is defined for server in {path}:2'),
    ("server { listen 127.0.0.1:1143; protocol http; }", 'unknown protocol "http" in {path}:2'),
    ("smtp_auth plain apop;", 'invalid value "apop" in {path}:2'),
    ("resolver;", 'invalid number of arguments in "resolver" directive in {path}:2'),
    ("auth_http 127.0.0.1:1; server { listen 127.0.0.1:1143; protocol imap; protocol pop3; }",
     '"protocol" directive is duplicate in {path}:2'),
    ("imap_auth plain apop;", 'invalid value "apop" in {path}:2'),
    ("pop3_auth plain login;", 'invalid value "login" in {path}:2'),
    ("starttls maybe;", 'invalid value "maybe" in "starttls" directive, it must be "off", '
                        '"on" or "only" in {path}:2'),
    ("auth_http unix:;", 'no path in the unix domain socket in auth_http "unix:" in {path}:2'),
    ("auth_http 127.0.0.1:1; server { listen unix:; protocol imap; }",
     'no path in the unix domain socket in "unix:" of the "listen" directive in {path}:2'),
    ("auth_http 127.0.0.1:1;\nserver { listen unix:/run/m.sock; protocol imap; }\n"
     "server { listen unix:/run/m.sock; protocol pop3; }",
     'duplicate "unix:/run/m.sock" address and port pair in {path}:4'),
    ("auth_http 127.0.0.1:1;\nserver { listen 127.0.0.1:1143; protocol imap; }\n"
     "server { listen 127.0.0.1:1143; protocol pop3; }",
     'duplicate "127.0.0.1:1143" address and port pair in {path}:4'),
    ("auth_http 127.0.0.1:1; server { listen 127.0.0.1:1143 ssl; protocol imap; }",
     'no "ssl_certificate" is defined for the "listen ... ssl" directive in {path}:2'),
    ("auth_http 127.0.0.1:1; starttls on; server { listen 127.0.0.1:1143; protocol imap; }",
     'no "ssl_certificate" is defined for the "starttls" directive in {path}:2'),
    ("set_real_ip_from nowhere;", 'host not found in set_real_ip_from "nowhere" in {path}:2'),
    ("set_real_ip_from a/b;", 'invalid parameter "a/b" in {path}:2'),
    ("auth_http 127.0.0.1:1; server { listen 127.0.0.1:1143 fast; protocol imap; }",
     'the invalid "fast" parameter in {path}:2'),
])
def test_load_errors(tmp_path: Path, block: str, message: str) -> None:
    got = _error(tmp_path, block)
    assert message.format(path=tmp_path / "m.conf") in got


def test_an_address_is_one_blocks(tmp_path: Path) -> None:
    path = tmp_path / "m.conf"
    path.write_text("mail { auth_http 127.0.0.1:1;\n server { listen 127.0.0.1:8143; "
                    "protocol imap; } }\n"
                    "stream { server { listen 127.0.0.1:8143; return x; } }\n")
    with pytest.raises(ConfigError, match=r'"127\.0\.0\.1:8143" is listened on by a stream '
                                          r"server and a mail server"):
        load_config(str(path))
    path.write_text("http { server { listen 127.0.0.1:8110; } }\n"
                    "mail { auth_http 127.0.0.1:1;\n server { listen 127.0.0.1:8110; "
                    "protocol pop3; } }\n")
    with pytest.raises(ConfigError, match=r"by an http server and a mail server in "
                                          + re.escape(str(path)) + ":3"):
        load_config(str(path))


def test_tls_and_warnings(tmp_path: Path) -> None:
    self_signed(tmp_path)
    config = _load(tmp_path, f"""
        ssl_certificate {tmp_path}/cert.pem; ssl_certificate_key {tmp_path}/key.pem;
        auth_http 127.0.0.1:1; error_log /dev/null;
        imap_auth plain plain;
        server {{ listen 127.0.0.1:1143; protocol imap; ssl on; }}
        server {{ listen 127.0.0.1:1110; protocol pop3; starttls only; }}
    """)
    assert config.mail is not None
    imap, pop3 = config.mail.servers
    assert imap.listens[0].ssl and pop3.starttls == "only" and not pop3.listens[0].ssl
    text = "\n".join(config.warnings)
    assert 'the "ssl" directive is deprecated, use the "listen ... ssl" directive' in text
    assert 'duplicate value "plain"' in text
    assert '"error_log" directive is ignored' in text
