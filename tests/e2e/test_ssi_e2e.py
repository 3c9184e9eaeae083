"""SSI end to end, on both engines, against a backend that records every request: an
include is a request like any other — one that names a location protected by auth_jwt
reaches its backend only with a valid token (nginx skips the access phase for
subrequests and would send it), and then with the verified claim, never the client's
copy; a page that asks for an include (a file, or a body from a backend) gets no more
than its client could get; a protected page with SSI is not fetched without a token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_util import bearer, get
from raw_backend import RawBackend, Received

SECRET = "ssi-secret-0123456789abcdef-0123456789"


def _answer(req: Received) -> bytes:
    if req.target.startswith(b"/private/"):
        return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n<fragment>"
    # a page from the backend asking for a protected part, and echoing the claim
    page = (b'<page sub="<!--#echo var="jwt_claim_sub"-->">'
            b'<!--#include virtual="/private/fragment"--></page>')
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
            % len(page) + page)


@pytest.fixture
def ask(tmp_path: Path, gateway, free) -> Iterator[Callable[..., tuple[int, bytes]]]:  # type: ignore[no-untyped-def]
    backend = RawBackend(answer=_answer)
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "a.html").write_bytes(
        b'<!--#include virtual="/private/fragment"--><page>')
    port = free()
    jwt = f'auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;'
    gateway(f"""error_log stderr info;
http {{ access_log off; types {{ text/html html; }}
  server {{ listen 127.0.0.1:{port}; root {tmp_path}; ssi on;
    location /pub/ {{ }}
    location /open/ {{ proxy_pass http://127.0.0.1:{backend.port}; }}
    location /app/ {{ {jwt} proxy_set_header X-User $jwt_claim_sub;
                     proxy_pass http://127.0.0.1:{backend.port}; }}
    location /private/ {{ {jwt} proxy_set_header X-User $jwt_claim_sub;
                         proxy_pass http://127.0.0.1:{backend.port}; }}
  }} }}""", port)

    def run(path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        return get(port, path, headers)

    run.backend = backend  # type: ignore[attr-defined]
    yield run
    backend.stop()


def _bearer(key: str = SECRET, exp: int = 60) -> dict[str, str]:
    return bearer(key, exp)


WITHOUT = ({}, _bearer("another key, not the gateway's 0123456789"), _bearer(exp=-120),
           {"Authorization": "Bearer a.b.c", "X-User": "admin"})


def test_a_protected_include_is_not_fetched_without_a_valid_token(ask) -> None:  # type: ignore[no-untyped-def]
    for headers in WITHOUT:
        status, body = ask("/pub/a.html", headers)
        assert status == 200  # the page is public; the part is the 401 page
        assert b"<title>401 Authorization Required</title>" in body and body.endswith(b"<page>")
        assert b"<fragment>" not in body
    assert ask.backend.requests() == []


def test_an_include_a_backend_asks_for_gets_no_more_than_its_client(ask) -> None:  # type: ignore[no-untyped-def]
    for headers in WITHOUT:
        status, body = ask("/open/page", headers)
        assert status == 200 and b"<fragment>" not in body
        assert b"<title>401 Authorization Required</title>" in body
    # the public page was fetched each time; the protected part never
    assert [r.target for r in ask.backend.requests()] == [b"/open/page"] * len(WITHOUT)


def test_a_protected_page_with_ssi_is_not_fetched_without_a_valid_token(ask) -> None:  # type: ignore[no-untyped-def]
    for headers in WITHOUT:
        status, _ = ask("/app/page", headers)
        assert status == 401
    assert ask.backend.requests() == []


def test_with_a_valid_token_the_parts_carry_the_verified_claim(ask) -> None:  # type: ignore[no-untyped-def]
    status, body = ask("/app/page", {**_bearer(), "X-User": "admin"})
    assert (status, body) == (200, b'<page sub="&quot;alice&quot;"><fragment></page>')
    got = ask.backend.requests()
    assert [(r.method, r.target) for r in got] == [(b"GET", b"/app/page"),
                                                   (b"GET", b"/private/fragment")]
    assert [r.header(b"x-user") for r in got] == [[b'"alice"'], [b'"alice"']]
