"""TLS as a client sees it: the certificate chosen by SNI, RSA and ECDSA certificates side
by side, an encrypted key opened with ssl_password_file, protocols and ciphers enforced
in the handshake, and ``-t`` refusing what cannot load."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import free_port, wait_port
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from e2e_util import beside_nginx, fastgate, get, stop_process
from helpers import self_signed
from raw_backend import RawBackend


def _der(crt: Path) -> bytes:
    return x509.load_pem_x509_certificate(crt.read_bytes()).public_bytes(
        serialization.Encoding.DER)


def _handshake(port: int, name: str | None = None, *, ciphers: str | None = None,
               maximum: ssl.TLSVersion | None = None,
               host: str = "") -> tuple[bytes, bytes]:
    """The certificate the gateway sent, and its answer to GET / (Host: ``host``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    if maximum is not None:
        ctx.maximum_version = maximum
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as tls:
        cert = tls.getpeercert(binary_form=True) or b""
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {host or name or 'x'}\r\n"
                    "Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    return cert, answer


def test_sni_chooses_the_server_certificate(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    a = self_signed(tmp_path, "a.test", stem="a-")
    b = self_signed(tmp_path, "b.test", stem="b-")
    wild = self_signed(tmp_path, "any.c.test", stem="c-")
    port = free()
    gateway(f"""http {{ access_log off;
      server {{ listen 127.0.0.1:{port} ssl; server_name a.test;
        ssl_certificate {a[0]}; ssl_certificate_key {a[1]};
        location / {{ return 200 "a"; }} }}
      server {{ listen 127.0.0.1:{port} ssl; server_name b.test;
        ssl_certificate {b[0]}; ssl_certificate_key {b[1]};
        location / {{ return 200 "b"; }} }}
      server {{ listen 127.0.0.1:{port} ssl; server_name *.c.test;
        ssl_certificate {wild[0]}; ssl_certificate_key {wild[1]};
        location / {{ return 200 "c"; }} }} }}""", port)
    cert, answer = _handshake(port, "b.test")
    assert cert == _der(b[0]) and answer.endswith(b"\r\n\r\nb")
    cert, answer = _handshake(port, "x.c.test")
    assert cert == _der(wild[0]) and answer.endswith(b"\r\n\r\nc")
    # no SNI, or a name no server has: the address's default server (the first)
    assert _handshake(port)[0] == _der(a[0])
    assert _handshake(port, "unknown.test")[0] == _der(a[0])
    # SNI picks the certificate, Host still picks the server (as nginx)
    cert, answer = _handshake(port, "b.test", host="a.test")
    assert cert == _der(b[0]) and answer.endswith(b"\r\n\r\na")


def test_rsa_and_ecdsa_certificates_side_by_side(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    rsa_crt, rsa_key = self_signed(tmp_path, kind="rsa", stem="rsa-")
    ec_crt, ec_key = self_signed(tmp_path, stem="ec-")
    port = free()
    gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port} ssl;
      ssl_certificate {rsa_crt}; ssl_certificate_key {rsa_key};
      ssl_certificate {ec_crt}; ssl_certificate_key {ec_key};
      location / {{ return 200 "ok"; }} }} }}""", port)
    tls12 = ssl.TLSVersion.TLSv1_2
    assert _handshake(port, ciphers="ECDHE-RSA-AES128-GCM-SHA256",
                      maximum=tls12)[0] == _der(rsa_crt)
    assert _handshake(port, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256",
                      maximum=tls12)[0] == _der(ec_crt)


def test_encrypted_key_with_password_file(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    crt, key = self_signed(tmp_path, passphrase=b"open sesame")
    (tmp_path / "pass").write_text("wrong\nopen sesame\n")
    port = free()
    gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port} ssl;
      ssl_certificate {crt}; ssl_certificate_key {key}; ssl_password_file pass;
      location / {{ return 200 "$ssl_protocol"; }} }} }}""", port)
    cert, answer = _handshake(port)
    assert cert == _der(crt) and answer.endswith(b"\r\n\r\nTLSv1.3")


def test_protocols_and_ciphers_are_enforced(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    crt, key = self_signed(tmp_path)
    v13, v12 = free(), free()
    gateway(f"""http {{ access_log off;
      ssl_certificate {crt}; ssl_certificate_key {key};
      server {{ listen 127.0.0.1:{v13} ssl; ssl_protocols TLSv1.3;
        location / {{ return 200 "$ssl_protocol"; }} }}
      server {{ listen 127.0.0.1:{v12} ssl; ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384; ssl_prefer_server_ciphers on;
        location / {{ return 200 "$ssl_protocol"; }} }} }}""", v13)
    with pytest.raises(ssl.SSLError):
        _handshake(v13, maximum=ssl.TLSVersion.TLSv1_2)
    assert _handshake(v13)[1].endswith(b"TLSv1.3")
    with pytest.raises(ssl.SSLError):
        _handshake(v12, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    assert _handshake(v12, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")[1].endswith(b"TLSv1.2")


def test_check_fails_on_what_cannot_load(tmp_path: Path, free) -> None:  # type: ignore[no-untyped-def]
    crt, _ = self_signed(tmp_path)
    _, other = self_signed(tmp_path, stem="other-")
    conf = tmp_path / "t.conf"
    conf.write_text(f"http {{ server {{ listen 127.0.0.1:{free()} ssl;\n"
                    f"ssl_certificate {crt};\nssl_certificate_key {other}; }} }}\n")
    run = fastgate("-t", "-c", str(conf))
    assert run.returncode == 1
    assert f'cannot load certificate key "{other}" for certificate "{crt}"' in run.stderr
    assert f"in {conf}:3" in run.stderr and "Traceback" not in run.stderr
    conf.write_text("http { server { listen 127.0.0.1:8443 ssl;\n"
                    "ssl_certificate gone.pem; ssl_certificate_key gone.key; } }\n")
    run = fastgate("-t", "-c", str(conf))
    assert run.returncode == 1
    assert (f'cannot open "{tmp_path}/gone.pem" (2: No such file or directory) in {conf}:2'
            in run.stderr)


# --- https:// upstreams -------------------------------------------------------------


def _backend_context(tmp: Path, name: str = "localhost", stem: str = "be-",
                     client_ca: Path | None = None) -> tuple[ssl.SSLContext, Path, list[str]]:
    """A TLS backend's context, its certificate, and the SNI names it was sent ("" for
    none)."""
    crt, key = self_signed(tmp, name, stem=stem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    names: list[str] = []
    ctx.sni_callback = lambda obj, name, c: names.append(name or "")  # type: ignore[misc,func-returns-value]
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx, crt, names


@pytest.fixture
def tls_backends() -> Iterator[Callable[[ssl.SSLContext | None], RawBackend]]:
    started: list[RawBackend] = []

    def make(ctx: ssl.SSLContext | None) -> RawBackend:
        be = RawBackend(tls=ctx)
        started.append(be)
        return be

    yield make
    for be in started:
        be.stop()


def test_https_upstream_speaks_tls_and_pools(tmp_path: Path, gateway, free, tls_backends) -> None:  # type: ignore[no-untyped-def]
    ctx, _, names = _backend_context(tmp_path)
    be = tls_backends(ctx)
    plain = tls_backends(None)
    port = free()
    g = gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port};
      location /tls/ {{ proxy_pass https://127.0.0.1:{be.port}; }}
      location /sni/ {{ proxy_pass https://127.0.0.1:{be.port};
        proxy_ssl_server_name on; proxy_ssl_name api.internal; }}
      location /plain/ {{ proxy_pass https://127.0.0.1:{plain.port};
        proxy_connect_timeout 1s; }} }} }}""", port)
    for _ in range(3):
        assert get(port, "/tls/x")[0] == 200
    assert [r.target for r in be.requests()] == [b"/tls/x"] * 3
    # one handshake: the connection is pooled, and the later requests take the
    # callback path over it
    assert len({r.connection for r in be.requests()}) == 1
    assert names == [""]  # proxy_ssl_server_name off (nginx's default): no SNI
    assert get(port, "/sni/y")[0] == 200
    assert names == ["", "api.internal"]
    # a backend that does not speak TLS gets a ClientHello, never the request in clear;
    # the handshake counts in proxy_connect_timeout (as nginx)
    status, _ = get(port, "/plain/z")
    assert status == 504
    assert plain.seen(b"\x16\x03")  # a TLS handshake record
    assert not plain.seen(b"/plain/z") and not plain.seen(b"GET")
    assert "upstream timed out" in g.stderr


def test_verified_upstream(tmp_path: Path, gateway, free, tls_backends) -> None:  # type: ignore[no-untyped-def]
    ctx, crt, names = _backend_context(tmp_path, "backend.internal")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    be = tls_backends(ctx)
    other_ca = self_signed(tmp_path, "backend.internal", stem="other-")[0]
    port = free()
    g = gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port};
      proxy_ssl_verify on;
      location /good/ {{ proxy_pass https://127.0.0.1:{be.port};
        proxy_ssl_name backend.internal; proxy_ssl_trusted_certificate {crt}; }}
      location /wrong-name/ {{ proxy_pass https://127.0.0.1:{be.port};
        proxy_ssl_name other.internal; proxy_ssl_trusted_certificate {crt}; }}
      location /untrusted/ {{ proxy_pass https://127.0.0.1:{be.port};
        proxy_ssl_name backend.internal; proxy_ssl_trusted_certificate {other_ca}; }}
      location /tls12/ {{ proxy_pass https://127.0.0.1:{be.port}; proxy_ssl_verify off;
        proxy_ssl_protocols TLSv1.2; }}
      }} }}""", port)
    assert get(port, "/good/a")[0] == 200
    assert get(port, "/wrong-name/b")[0] == 502
    assert get(port, "/untrusted/c")[0] == 502
    assert get(port, "/tls12/d")[0] == 502
    assert "SSL_do_handshake() failed (peer closed connection in SSL handshake) while SSL " \
           "handshaking to upstream" in g.stderr
    # what failed verification never got the request
    assert [r.target for r in be.requests()] == [b"/good/a"]
    assert g.stderr.count("upstream SSL certificate verify error: (") == 2
    assert "backend.internal" in names


def test_client_certificate_to_upstream(tmp_path: Path, gateway, free, tls_backends) -> None:  # type: ignore[no-untyped-def]
    client_crt, client_key = self_signed(tmp_path, "gateway", stem="client-",
                                         passphrase=b"pw")
    (tmp_path / "pw").write_text("pw\n")
    ctx, _, _ = _backend_context(tmp_path, client_ca=client_crt)
    be = tls_backends(ctx)
    port = free()
    gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port};
      location /with/ {{ proxy_pass https://127.0.0.1:{be.port};
        proxy_ssl_certificate {client_crt}; proxy_ssl_certificate_key {client_key};
        proxy_ssl_password_file pw; }}
      location /without/ {{ proxy_pass https://127.0.0.1:{be.port}; }} }} }}""", port)
    assert get(port, "/with/a")[0] == 200
    assert get(port, "/without/b")[0] == 502
    assert [r.target for r in be.requests()] == [b"/with/a"]


def test_proxy_ssl_name_with_variables(tmp_path: Path, gateway, free, tls_backends) -> None:  # type: ignore[no-untyped-def]
    """proxy_ssl_name $host: the name of each request as SNI (and checked with
    proxy_ssl_verify), one pool per name: a connection made for one name never carries
    a request for another."""
    ctx, crt, names = _backend_context(tmp_path, "a.test")
    be = tls_backends(ctx)
    port = free()
    gateway(f"""http {{ access_log off;
      upstream tls {{ server 127.0.0.1:{be.port}; keepalive 8; }}
      server {{ listen 127.0.0.1:{port};
      location / {{ proxy_pass https://tls; proxy_ssl_server_name on;
                    proxy_ssl_name $host; proxy_set_header Host $host; }}
      location /verified/ {{ proxy_pass https://tls; proxy_ssl_verify on;
                    proxy_ssl_trusted_certificate {crt}; proxy_ssl_name $http_x_name; }}
      location /dynamic/ {{ set $be 127.0.0.1:{be.port}; proxy_pass https://$be;
                    proxy_ssl_server_name on; proxy_ssl_name $host; }} }} }}""", port)
    for host in ("a.test", "b.test", "a.test"):
        assert get(port, "/x", {"Host": host})[0] == 200
    # a new connection's SNI is its request's name; a pooled one is only reused for it
    assert names[:2] == ["a.test", "b.test"] and set(names) == {"a.test", "b.test"}
    by_conn: dict[int, set[bytes]] = {}
    for r in be.requests():
        by_conn.setdefault(r.connection, set()).update(r.header(b"host"))
    assert all(len(hosts) == 1 for hosts in by_conn.values())  # one name per connection
    assert get(port, "/verified/a", {"X-Name": "a.test"})[0] == 200
    assert get(port, "/verified/b", {"X-Name": "b.test"})[0] == 502  # not the cert's name
    assert not any(r.target == b"/verified/b" for r in be.requests())
    assert get(port, "/dynamic/c", {"Host": "c.test"})[0] == 200
    assert names[-1] == "c.test"


def test_ssl_reject_handshake_in_the_default_server(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    """The catch-all default server refuses handshakes (nginx's ssl_reject_handshake,
    without a certificate of its own): a client that names no server, or one not
    served here, sees no certificate at all; the named server answers."""
    crt, key = self_signed(tmp_path, "a.test")
    port = free()
    gateway(f"""http {{ access_log off;
      server {{ listen 127.0.0.1:{port} ssl default_server; ssl_reject_handshake on; }}
      server {{ listen 127.0.0.1:{port} ssl; server_name a.test;
                ssl_certificate {crt}; ssl_certificate_key {key};
                location / {{ return 200 "a"; }} }} }}""", port)

    def handshake(name: str | None) -> bytes | str:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            with ctx.wrap_socket(raw, server_hostname=name) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                return s.recv(65536)
        except ssl.SSLError as e:
            return str(e.reason)
        finally:
            raw.close()

    assert handshake("a.test").startswith(b"HTTP/1.1 200")  # type: ignore[union-attr]
    # refused at the name (the alert may not reach the client before the close)
    refused = ("TLSV1_UNRECOGNIZED_NAME", "UNEXPECTED_EOF_WHILE_READING")
    assert handshake("b.test") in refused
    assert handshake(None) in refused


def test_conf_commands_reach_openssl_both_ways(tmp_path: Path, gateway, free, tls_backends) -> None:  # type: ignore[no-untyped-def]
    crt, key = self_signed(tmp_path)
    ctx, _, _ = _backend_context(tmp_path)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3  # (a backend that speaks TLS 1.3 only)
    be = tls_backends(ctx)
    port, tls_port = free(), free()
    gateway(f"""http {{ access_log off;
      server {{ listen 127.0.0.1:{tls_port} ssl; ssl_certificate {crt};
        ssl_certificate_key {key}; ssl_conf_command MaxProtocol TLSv1.2;
        ssl_ecdh_curve X25519:prime256v1; ssl_session_cache builtin:100;
        ssl_session_timeout 10m;
        location / {{ return 200 "$ssl_protocol"; }} }}
      server {{ listen 127.0.0.1:{port};
        location /ok/ {{ proxy_pass https://127.0.0.1:{be.port}; }}
        location /capped/ {{ proxy_pass https://127.0.0.1:{be.port};
          proxy_ssl_conf_command MaxProtocol TLSv1.2; }} }} }}""", port)
    # the server's context: at most TLS 1.2, as the command says
    assert _handshake(tls_port)[1].endswith(b"TLSv1.2")
    # the upstream's: capped at TLS 1.2, it cannot reach a TLS 1.3 backend
    assert get(port, "/ok/x")[0] == 200
    assert get(port, "/capped/x")[0] == 502
    assert [r.target for r in be.requests()] == [b"/ok/x"]


def test_a_client_closing_its_tls_side_is_said_nothing_of_on_stderr(tmp_path: Path) -> None:
    """A client's close_notify after its answer (curl sends one) reached Python's TLS
    layer as an EOF our protocol asked to keep open: asyncio wrote a warning to stderr
    for every such connection. Over TLS nothing is kept open, and nothing is said."""
    crt, key = self_signed(tmp_path, "a.test")
    port = free_port()
    proc = beside_nginx("fastgate", tmp_path, f"""http {{ access_log off;
  server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {crt}; ssl_certificate_key {key};
    location / {{ return 200 "ok"; }} }} }}""", "error")
    try:
        wait_port(port, proc)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                sock = ctx.wrap_socket(raw, server_hostname="a.test")
                sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                assert sock.recv(1000).startswith(b"HTTP/1.1 200")
                sock.unwrap()  # (close_notify: the TLS side's EOF)
        time.sleep(0.2)
    finally:
        stop_process(proc)
    assert "eof_received" not in (tmp_path / "stderr").read_text()
