"""add_before_body end to end, on both engines, against a backend that records every
request: a part that names a location protected by auth_jwt is checked as any request
is — without a valid token its backend receives nothing (nginx skips the access phase
for subrequests and would send it), with one it receives the verified claim and never
the client's copy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_util import bearer, get
from raw_backend import RawBackend, Received

SECRET = "addition-secret-0123456789abcdef-012345"


def _fragment(req: Received) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n<fragment>"


@pytest.fixture
def ask(tmp_path: Path, gateway, free) -> Iterator[Callable[..., tuple[int, bytes]]]:  # type: ignore[no-untyped-def]
    backend = RawBackend(answer=_fragment)
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "a.html").write_bytes(b"<page>")
    port = free()
    gateway(f"""error_log stderr info;
http {{ access_log off; types {{ text/html html; }}
  server {{ listen 127.0.0.1:{port}; root {tmp_path};
    location /pub/ {{ add_before_body /private/fragment; }}
    location /private/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
                         proxy_set_header X-User $jwt_claim_sub;
                         proxy_pass http://127.0.0.1:{backend.port}; }}
  }} }}""", port)

    def run(headers: dict[str, str]) -> tuple[int, bytes]:
        return get(port, "/pub/a.html", headers)

    run.backend = backend  # type: ignore[attr-defined]
    yield run
    backend.stop()


def _bearer(key: str = SECRET) -> dict[str, str]:
    return bearer(key)


def test_a_protected_part_is_not_fetched_without_a_valid_token(ask) -> None:  # type: ignore[no-untyped-def]
    for headers in ({}, _bearer("another key, not the gateway's 0123456789"),
                    {"Authorization": "Bearer a.b.c", "X-User": "admin"}):
        status, body = ask(headers)
        assert status == 200  # the page is public; the part is the 401 page
        assert b"<title>401 Authorization Required</title>" in body and body.endswith(b"<page>")
        assert b"<fragment>" not in body
    assert ask.backend.requests() == []


def test_with_a_valid_token_the_part_carries_the_verified_claim(ask) -> None:  # type: ignore[no-untyped-def]
    status, body = ask({**_bearer(), "X-User": "admin"})
    assert (status, body) == (200, b"<fragment><page>")
    got = ask.backend.requests()
    assert [(r.method, r.target) for r in got] == [(b"GET", b"/private/fragment")]
    assert got[0].header(b"x-user") == [b'"alice"']
