"""nginx's behaviour on the request edge (issue #21), end to end on both engines."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from e2e_util import fastgate, raw_exchange, status_of


def _read_response(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_keepalive_time_closes_an_old_connection_after_its_request(
        tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port};
      keepalive_time 1s; location / {{ return 204; }} }} }}""", port)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
        assert status_of(_read_response(s)) == 204
        s.sendall(b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")  # young: kept open
        assert status_of(_read_response(s)) == 204
        time.sleep(1.2)
        s.sendall(b"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n")  # answered, then closed
        assert status_of(_read_response(s)) == 204
        assert s.recv(100) == b""


def test_sizing_directives_are_accepted_with_a_warning(tmp_path: Path) -> None:
    conf = tmp_path / "f.conf"
    conf.write_text("http { server_names_hash_bucket_size 64; server_names_hash_max_size 512;\n"
                    "client_header_buffer_size 1k; access_log off; }\n")
    run = fastgate("-t", "-c", str(conf))
    assert run.returncode == 0, run.stderr
    for name in ("server_names_hash_bucket_size", "server_names_hash_max_size"):
        assert run.stderr.count(f'[warn] "{name}" directive is ignored') == 1, run.stderr
    # (the first of the head's buffers, as nginx's: tests/http/test_header_buffers.py)
    assert "client_header_buffer_size" not in run.stderr


def test_ssl_protocol(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    import http.client
    import ssl

    from helpers import self_signed

    crt, key = self_signed(tmp_path)
    tls, plain = free(), free()
    gateway(f"""http {{ access_log off;
      server {{ listen 127.0.0.1:{tls} ssl; listen 127.0.0.1:{plain};
        ssl_certificate {crt}; ssl_certificate_key {key};
        location / {{ return 200 "[$ssl_protocol]"; }} }} }}""", tls)
    ctx = ssl.create_default_context(cafile=str(crt))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    c = http.client.HTTPSConnection("localhost", tls, context=ctx, timeout=10)
    c.request("GET", "/")
    assert c.getresponse().read() == b"[TLSv1.2]"
    c.close()
    c2 = http.client.HTTPConnection("127.0.0.1", plain, timeout=10)
    c2.request("GET", "/")
    assert c2.getresponse().read() == b"[]"
    c2.close()


def test_upstream_response_length_is_logged(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    from e2e_util import raw_exchange, wait_for_text
    from raw_backend import RawBackend

    backend = RawBackend()
    try:
        port = free()
        log = tmp_path / "a.log"
        gateway(f"""http {{ log_format u '$uri [$upstream_response_length] $body_bytes_sent';
          server {{ listen 127.0.0.1:{port}; access_log {log} u;
            location /up/ {{ proxy_pass http://127.0.0.1:{backend.port}; }}
            location / {{ return 204; }} }} }}""", port)
        for target in (b"/up/x", b"/local"):
            raw_exchange(port, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n"
                         b"Connection: close\r\n\r\n")
        assert wait_for_text(log, "/local")
        up, local = log.read_text().splitlines()
        length = int(up.split()[-1])
        assert length > 0 and up == f"/up/x [{length}] {length}"
        assert local == "/local [-] 0"
    finally:
        backend.stop()


def test_absolute_form_target_variables_and_forwarding(
        tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    # nginx: $request_uri is what follows the authority (its unparsed_uri), $uri the
    # normalised path, $host the authority's name; proxied without a URI part, the
    # upstream gets that origin-form target
    from e2e_util import raw_exchange
    from raw_backend import RawBackend

    backend = RawBackend()
    try:
        port = free()
        gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port};
          location /v/ {{ return 200 "$request_uri|$uri|$args|$host"; }}
          location /up/ {{ proxy_pass http://127.0.0.1:{backend.port}; }} }} }}""", port)
        out = raw_exchange(port, b"GET http://A.Example./v/p%41th/../x?q=1 HTTP/1.1\r\n"
                                 b"Host: other\r\nConnection: close\r\n\r\n")
        assert out.endswith(b"/v/p%41th/../x?q=1|/v/x|q=1|a.example"), out
        out = raw_exchange(port, b"GET http://a.example/up/y?z=2 HTTP/1.1\r\nHost: a.example"
                                 b"\r\nConnection: close\r\n\r\n")
        assert status_of(out) == 200, out
        assert [r.target for r in backend.requests()] == [b"/up/y?z=2"]
    finally:
        backend.stop()


def test_several_error_logs_each_at_its_level(
        tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    from e2e_util import raw_exchange, wait_for_text

    port, dead = free(), free()
    verbose, errors = tmp_path / "info.log", tmp_path / "error.log"
    gateway(f"""error_log {verbose} info; error_log {errors} error;
      http {{ access_log off; server {{ listen 127.0.0.1:{port};
        location /jwt/ {{ auth_jwt on; auth_jwt_key "0123456789abcdef0123456789abcdef";
                         proxy_pass http://127.0.0.1:{dead}; }}
        location /dead/ {{ proxy_pass http://127.0.0.1:{dead}; }} }} }}""", port)
    raw_exchange(port, b"GET /jwt/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    raw_exchange(port, b"GET /dead/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert wait_for_text(errors, "connect() failed")
    assert wait_for_text(verbose, "connect() failed")
    assert wait_for_text(verbose, "[info]")  # the missing token, at info
    assert "failed to find a jwt" in verbose.read_text()
    assert "[info]" not in errors.read_text()


def test_merge_slashes(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    from e2e_util import raw_exchange

    merged, kept = free(), free()
    gateway(f"""http {{ access_log off;
      server {{ listen 127.0.0.1:{merged}; location / {{ return 200 "$uri"; }} }}
      server {{ listen 127.0.0.1:{kept}; merge_slashes off;
        location / {{ return 200 "$uri"; }} }} }}""", merged)
    for port, expect in ((merged, b"/a/b/c/"), (kept, b"/a//b/c//")):
        out = raw_exchange(port, b"GET /a//b/./c// HTTP/1.1\r\nHost: a\r\n"
                                 b"Connection: close\r\n\r\n")
        assert out.endswith(b"\r\n\r\n" + expect), out


def test_listen_with_a_port_range(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    from e2e_util import raw_exchange

    for _ in range(20):  # three free ports in a row
        base = free()
        ports = [base, base + 1, base + 2]
        try:
            for p in ports[1:]:
                socket.create_server(("127.0.0.1", p)).close()
            break
        except OSError:
            continue
    gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{base}-{base + 2};
      location / {{ return 200 "$server_port"; }} }} }}""", base)
    for p in ports:
        out = raw_exchange(p, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert out.endswith(str(p).encode()), out


def test_a_port_range_upside_down_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "f.conf"
    conf.write_text("http { server { listen 127.0.0.1:9000-8000; } }\n")
    run = fastgate("-t", "-c", str(conf))
    assert run.returncode == 1
    assert f'invalid port in "127.0.0.1:9000-8000" of the "listen" directive in {conf}:1' \
        in run.stderr, run.stderr


def test_pipe_marks_a_pipelined_request(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    from e2e_util import raw_exchange

    port = free()
    gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port};
      location / {{ return 200 "[$pipe]"; }} }} }}""", port)
    # two requests in one write: the second was read with the first
    out = raw_exchange(port, b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                             b"GET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out.count(b"[.]") == 1 and out.count(b"[p]") == 1, out
    assert out.index(b"[.]") < out.index(b"[p]")
    out = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out.endswith(b"[.]")


def test_request_body_is_empty_where_nothing_read_it(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    """A ``return`` answers in the rewrite phase, before any body is read: nginx's
    ``$request_body`` is empty there, and so is fastgate's (what a proxied location
    reads whole, it gives: tests/e2e/test_request_buffering_e2e.py)."""
    port = free()
    g = gateway("http { access_log off;\n"
                f"server {{ listen 127.0.0.1:{port}; location / {{ return 200 "
                "\"[$request_body]\"; } } }\n", port)
    out = raw_exchange(port, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                             b"Connection: close\r\n\r\nbody")
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"\r\n\r\n[]"), out
    assert "$request_body" not in g.stderr
