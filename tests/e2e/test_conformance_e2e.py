"""nginx's behaviour on the request edge (issue #21), end to end on both engines."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from e2e_util import status_of


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
    run = subprocess.run([sys.executable, "-m", "fastgate", "-t", "-c", str(conf)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    for name in ("server_names_hash_bucket_size", "server_names_hash_max_size",
                 "client_header_buffer_size"):
        assert run.stderr.count(f'[warn] "{name}" directive is ignored') == 1, run.stderr
