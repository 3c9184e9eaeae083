"""client_body_in_file_only: every request body goes to a named file in
client_body_temp_path, which ``$request_body_file`` names ("on": left behind, the upload
offloading idiom with proxy_pass_request_body off; "clean": removed after the request)
— compared with nginx 1.22 on both engines: what the backend receives, what the file
holds and whether it stays."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_nginx_parity_e2e import _request, both

BLOCK = """server { listen 127.0.0.1:PORT; client_body_temp_path HOME/SIDE/bodies;
    location /up/ { client_body_in_file_only on; proxy_pass_request_body off;
                    proxy_set_header Content-Length "";
                    proxy_set_header X-File $request_body_file; proxy_pass http://BACKEND; }
    location /clean/ { client_body_in_file_only clean;
                       proxy_set_header X-File $request_body_file; proxy_pass http://BACKEND; }
    location /plain/ { proxy_set_header X-File $request_body_file; proxy_pass http://BACKEND; } }"""

BODY = b"an upload, " * 100


@pytest.mark.parametrize("engine", ["httptools", "h11"])
def test_client_body_in_file_only_as_nginx(tmp_path: Path, engine: str) -> None:
    with both(tmp_path, BLOCK, engine) as (nginx, fastgate):
        for side in (nginx, fastgate):
            bodies = tmp_path / side.kind / "bodies"
            for path in ("/up/a", "/clean/b", "/plain/c"):
                assert side.send(_request("POST", path, body=BODY))[0] == 200, (side.kind, path)
            up, clean, plain = side.backend.requests()[-3:]
            # "on": the file named, kept, holding the body; nothing of it upstream
            kept = Path(up.header(b"x-file")[0].decode())
            assert kept.parent == bodies and kept.read_bytes() == BODY, side.kind
            assert up.body == b"", side.kind
            # "clean": named, the body sent, the file gone after the request
            gone = Path(clean.header(b"x-file")[0].decode())
            assert gone.parent == bodies and clean.body == BODY, side.kind
            deadline = time.time() + 3
            while gone.exists() and time.time() < deadline:
                time.sleep(0.05)
            assert not gone.exists(), side.kind
            # off: a small body in memory has no file
            assert plain.header(b"x-file") in ([], [b""]) and plain.body == BODY, side.kind
            assert [p.name for p in bodies.iterdir() if p.is_file()] == [kept.name], side.kind
