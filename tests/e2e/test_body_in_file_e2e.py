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


EMPTY = """server { listen 127.0.0.1:PORT; client_body_temp_path HOME/SIDE/bodies;
    location /up/ { client_body_in_file_only on;
                    proxy_set_header X-File $request_body_file; proxy_pass http://BACKEND; }
    location /plain/ { proxy_set_header X-File $request_body_file; proxy_pass http://BACKEND; } }"""


def _gone(path: Path) -> bool:
    deadline = time.time() + 3
    while path.exists() and time.time() < deadline:
        time.sleep(0.05)
    return not path.exists()


@pytest.mark.parametrize("engine", ["httptools", "h11"])
def test_empty_and_spilled_bodies_have_files_as_nginx(tmp_path: Path, engine: str) -> None:
    """``Content-Length: 0`` under client_body_in_file_only makes an empty file, a request
    without a body none; without it a body past client_body_buffer_size has a file that
    ``$request_body_file`` names (removed after the request)."""
    big = b"past the buffer " * 2048  # 32k > client_body_buffer_size's 16k
    with both(tmp_path, EMPTY, engine) as (nginx, fastgate):
        for side in (nginx, fastgate):
            bodies = tmp_path / side.kind / "bodies"
            assert side.send(_request("POST", "/up/e", "Content-Length: 0"))[0] == 200
            assert side.send(_request("GET", "/up/g"))[0] == 200
            assert side.send(_request("POST", "/plain/big", body=big))[0] == 200
            assert side.send(_request("POST", "/plain/small", body=b"small"))[0] == 200
            empty, get, spilled, small = side.backend.requests()[-4:]
            named = Path(empty.header(b"x-file")[0].decode())
            assert named.parent == bodies and named.read_bytes() == b"", side.kind
            assert (empty.body, empty.header(b"content-length")) == (b"", [b"0"]), side.kind
            assert get.header(b"x-file") in ([], [b""]), side.kind  # no body, no file
            # past the buffer: a file, named while the request lasts, holding the body
            spilled_name = Path(spilled.header(b"x-file")[0].decode())
            assert spilled_name.parent == bodies and spilled.body == big, side.kind
            assert _gone(spilled_name), side.kind
            assert small.header(b"x-file") in ([], [b""]) and small.body == b"small"
            assert [p.name for p in bodies.iterdir() if p.is_file()] == [named.name], side.kind
