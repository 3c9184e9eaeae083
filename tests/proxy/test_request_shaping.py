"""What goes upstream when the configuration reshapes the request: proxy_method,
proxy_set_body, proxy_pass_request_body off and proxy_pass_request_headers off (issue
#17, item 4), on both engines and both exchange paths. What the client sent and the
configuration dropped must not reach the upstream."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers import server_config_error
from scenario import ENGINES, PATHS, Scenario

from fastgate.config import load_config

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _run(tmp: Path, engine: str, path: str, location: str, request: bytes,
         response: bytes | None = OK) -> tuple[bytes, bytes]:
    http = f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
server {{ listen 127.0.0.1:8080; client_max_body_size 64;
  location / {{ {location} proxy_pass http://be; }}
}}"""

    async def main() -> tuple[bytes, bytes]:
        sc = Scenario(tmp, engine, http, path)
        try:
            return await sc.exchange(request, response)
        finally:
            sc.close()

    return asyncio.run(main())


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_method_and_body_set_by_the_configuration(tmp_path: Path, engine: str,
                                                  path: str) -> None:
    client, upstream = _run(tmp_path, engine, path,
                            'proxy_method PUT; proxy_set_body "name=$arg_n";',
                            b"GET /x?n=bob HTTP/1.1\r\nHost: a\r\n\r\n")
    assert upstream.startswith(b"PUT /x?n=bob HTTP/1.1\r\n")
    assert upstream.lower().count(b"content-length: 8\r\n") == 1
    assert upstream.endswith(b"\r\n\r\nname=bob")
    assert client.startswith(b"HTTP/1.1 200 OK\r\n") and client.endswith(b"ok")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_set_body_replaces_the_clients(tmp_path: Path, engine: str, path: str) -> None:
    client, upstream = _run(tmp_path, engine, path, 'proxy_set_body "replaced";',
                            b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
                            b"client-body")
    assert b"client-body" not in upstream
    assert upstream.startswith(b"POST /x HTTP/1.1\r\n")
    assert upstream.lower().count(b"content-length: ") == 1
    assert upstream.lower().endswith(b"content-length: 8\r\n\r\nreplaced")
    assert client.startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_request_body_off_sends_none_and_keeps_the_connection(tmp_path: Path, engine: str,
                                                              path: str) -> None:
    client, upstream = _run(tmp_path, engine, path, "proxy_pass_request_body off;",
                            b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                            b"\r\nb\r\nclient-body\r\n0\r\n\r\n")
    assert b"client-body" not in upstream and b"chunked" not in upstream.lower()
    assert upstream.startswith(b"POST /x HTTP/1.1\r\n")
    assert upstream.endswith(b"\r\n\r\n")
    assert client.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close" not in client.lower()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_dropped_body_still_counts_against_the_limit(tmp_path: Path, engine: str,
                                                     path: str) -> None:
    body = b"x" * 100
    client, upstream = _run(tmp_path, engine, path, "proxy_pass_request_body off;",
                            b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                            b"\r\n64\r\n" + body + b"\r\n0\r\n\r\n")
    assert client.startswith(b"HTTP/1.1 413 ")
    assert upstream == b""


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_request_headers_off(tmp_path: Path, engine: str, path: str) -> None:
    client, upstream = _run(tmp_path, engine, path,
                            "proxy_pass_request_headers off; proxy_set_header X-Set $http_x_secret;",
                            b"GET /x HTTP/1.1\r\nHost: a\r\nX-Secret: s3\r\nCookie: c=1\r\n\r\n")
    head = upstream.lower()
    assert b"x-secret:" not in head and b"cookie:" not in head
    assert b"x-set: s3\r\n" in head  # the configuration still reads them
    assert b"host: be\r\n" in head
    assert client.startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS)
def test_a_method_from_a_variable_cannot_bend_the_request_line(tmp_path: Path, engine: str,
                                                                path: str) -> None:
    client, upstream = _run(tmp_path, engine, path, "proxy_method $http_x_method;",
                            b"GET /x HTTP/1.1\r\nHost: a\r\nX-Method: GET /admin\r\n\r\n")
    assert client.startswith(b"HTTP/1.1 500 ")
    assert upstream == b""
    client, upstream = _run(tmp_path, engine, path, "proxy_method $http_x_method;",
                            b"GET /x HTTP/1.1\r\nHost: a\r\nX-Method: PURGE\r\n\r\n")
    assert upstream.startswith(b"PURGE /x HTTP/1.1\r\n")


def test_plain_locations_keep_the_callback_path(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http { upstream be { server 127.0.0.1:9; }\n"
                    "server { listen 127.0.0.1:8080;\n"
                    "location /a/ { proxy_pass http://be; }\n"
                    "location /b/ { proxy_pass_request_headers off; proxy_pass http://be; }\n"
                    "location /c/ { proxy_method POST; proxy_pass http://be; }\n"
                    "location /d/ { proxy_pass_request_body off; proxy_pass http://be; } } }\n")
    config = load_config(str(path))
    as_is = {loc.pattern: loc.proxy_pass.as_is for loc in config.servers[0].locations.all()}
    assert as_is == {"/a/": True, "/b/": True, "/c/": False, "/d/": False}


@pytest.mark.parametrize("body,message", [
    ("proxy_method GET POST;", 'invalid number of arguments in "proxy_method"'),
    ('proxy_method "GE T";', 'invalid method "GE T"'),
    ("proxy_pass_request_body maybe;", 'it must be "on" or "off"'),
])
def test_refusals(tmp_path: Path, body: str, message: str) -> None:
    text = server_config_error(tmp_path, body)
    assert message in text and text.endswith(":2")
