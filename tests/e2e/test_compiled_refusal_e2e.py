"""The compiled 401 (``proxy.jwt_phase.BearerCheck`` answering a missing or refused
token itself) in the real gateway, at the default error-log level where it is what
runs (the security suite logs at info, where the Python path answers): on both
engines, over a pooled idle upstream connection (the callback path) and with a body
(the task path), against a backend that keeps every byte — asserting what it did not
get."""

from __future__ import annotations

import time
from pathlib import Path

import jwt as pyjwt
import pytest
from e2e_util import raw_exchange, status_of
from raw_backend import RawBackend

SECRET = "compiled-refusal-secret-0123456789abcdef"


def _token(**claims: object) -> str:
    return pyjwt.encode({"sub": "alice", "exp": int(time.time()) + 60, **claims}, SECRET,
                        algorithm="HS256")


def _forged() -> str:
    good = _token()
    i = len(good) - 10  # (a character inside the signature: well-formed, wrong)
    return good[:i] + ("A" if good[i] != "A" else "B") + good[i + 1:]


REFUSED = [
    ("none", ""),
    ("forged", f"Authorization: Bearer {_forged()}\r\n"),
    ("expired", "Authorization: Bearer " + pyjwt.encode(
        {"sub": "x", "exp": 1}, SECRET, algorithm="HS256") + "\r\n"),
    ("other-key", "Authorization: Bearer " + pyjwt.encode(
        {"sub": "x"}, "another-secret-of-32-bytes-0123456789", algorithm="HS256") + "\r\n"),
    ("malformed", "Authorization: Bearer a.b.c\r\n"),
]


@pytest.fixture
def backend() -> RawBackend:  # type: ignore[misc]
    be = RawBackend()
    yield be
    be.stop()


@pytest.mark.parametrize("with_body", [False, True], ids=["callback", "task"])
def test_no_refused_request_reaches_the_backend(gateway, free, backend: RawBackend,  # type: ignore[no-untyped-def]
                                                tmp_path: Path, with_body: bool) -> None:
    port = free()
    errors = tmp_path / "error.log"
    # (notice: refusals are info lines, not written, so BearerCheck answers them itself)
    gateway(f"""error_log {errors} notice;
    http {{ access_log off;
      upstream be {{ server 127.0.0.1:{backend.port}; keepalive 8; }}
      server {{ listen 127.0.0.1:{port}; auth_jwt_key "{SECRET}";
        location / {{ auth_jwt on; proxy_set_header X-User $jwt_claim_sub;
                      proxy_pass http://be; }} }} }}""", port)
    # a valid request first: the pooled idle connection the callback path takes
    warm = raw_exchange(port, f"GET /warm HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
                              f"{_token()}\r\nConnection: close\r\n\r\n".encode())
    assert status_of(warm) == 200, warm
    body = b"secret-body" if with_body else b""
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    for name, header in REFUSED:
        out = raw_exchange(port, (f"POST /refused-{name} HTTP/1.1\r\nHost: a\r\n{header}"
                                  f"X-User: forged\r\n{length}Connection: close\r\n\r\n"
                                  ).encode() + body)
        assert status_of(out) == 401, (name, out)
        assert b'WWW-Authenticate: Bearer realm="fastgate"' in out, (name, out)
    # then a valid one on the same pool still passes, with the verified claim only
    ok = raw_exchange(port, f"GET /after HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
                            f"{_token()}\r\nX-User: forged\r\nConnection: close\r\n\r\n"
                            .encode())
    assert status_of(ok) == 200, ok
    assert [r.target for r in backend.requests()] == [b"/warm", b"/after"]
    raw = backend.raw()
    assert b"/refused-" not in raw and b"secret-body" not in raw and b"forged" not in raw
    assert "JWT:" not in errors.read_text()  # (no refusal went the logging path)
    assert backend.requests()[-1].header(b"x-user") == [b'"alice"']  # (JSON text)


CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0 Safari/537.36")
MSIE = "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1)"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


@pytest.mark.parametrize("level", ["notice", "info"], ids=["compiled", "python"])
def test_the_401_page_is_padded_as_nginx_pads_it(gateway, free, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                 level: str) -> None:
    """msie_padding (on by default): the 401 page is padded for MSIE and Chrome, not for
    other agents nor where it is off — the compiled answer (notice) as the Python
    path's (info, where refusals are logged)."""
    port = free()
    gateway(f"""error_log {tmp_path / "error.log"} {level};
    http {{ access_log off;
      server {{ listen 127.0.0.1:{port}; auth_jwt_key "{SECRET}";
        location / {{ auth_jwt on; proxy_pass http://127.0.0.1:9; }}
        location /plain/ {{ auth_jwt on; msie_padding off; proxy_pass http://127.0.0.1:9; }}
      }} }}""", port)
    pages = set()
    for path, agent, padded in [("/", CHROME, True), ("/", MSIE, True), ("/", FIREFOX, False),
                                ("/", "curl/8", False), ("/plain/", CHROME, False),
                                ("/plain/", MSIE, False)]:
        for name, header in REFUSED[:2]:  # (no token; a refused one)
            out = raw_exchange(port, (f"GET {path} HTTP/1.1\r\nHost: a\r\n{header}"
                                      f"User-Agent: {agent}\r\nConnection: close\r\n\r\n"
                                      ).encode())
            assert status_of(out) == 401, (path, agent, name, out)
            head, _, body = out.partition(b"\r\n\r\n")
            assert body.endswith(b"friendly error page -->\r\n") is padded, (path, agent, name)
            assert f"Content-Length: {len(body)}\r\n".encode() in head, (path, agent, name)
            pages.add(body)
    assert len(pages) == 2  # (padded or not, the same page)
