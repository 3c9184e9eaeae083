"""slice end to end, on both engines, against a backend that records every request: a
protected location fetched in slices asks its backend for nothing without a valid token
and for every slice with the verified claim; slices that are not the ones asked for
(another ETag, another status, no complete length) end the response as nginx ends it —
never a whole-looking response with a part missing."""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_util import CUT, bearer, get
from raw_backend import RawBackend, Received

SECRET = "slice-secret-0123456789abcdef-0123456789"
WHOLE = bytes(range(256)) * 2  # 512 bytes: six slices of 100


def _answer(req: Received) -> bytes:
    path = req.target.split(b"?")[0]
    m = re.fullmatch(rb"bytes=(\d+)-(\d+)", (req.header(b"range") or [b""])[0])
    assert m is not None, req.header(b"range")
    first, last = int(m.group(1)), min(int(m.group(2)), len(WHOLE) - 1)
    part = WHOLE[first:last + 1]
    etag = b'"v1"' if path != b"/etag" or first == 0 else b'"v2"'
    status = b"206 Partial Content"
    if path == b"/second200" and first > 0:
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(WHOLE) + WHOLE
    total = b"*" if path == b"/nolength" else b"%d" % len(WHOLE)
    return (b"HTTP/1.1 " + status + b"\r\nETag: " + etag + b"\r\n"
            b"Content-Range: bytes %d-%d/" % (first, last) + total + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % len(part) + part)


@pytest.fixture
def ask(tmp_path: Path, gateway, free) -> Iterator[Callable[..., tuple[int, bytes]]]:  # type: ignore[no-untyped-def]
    backend = RawBackend(answer=_answer)
    port = free()
    gateway(f"""error_log stderr info;
http {{ access_log off;
  server {{ listen 127.0.0.1:{port}; slice 100; proxy_set_header Range $slice_range;
    location / {{ proxy_pass http://127.0.0.1:{backend.port}; }}
    location /private {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
                        proxy_set_header Range $slice_range;
                        proxy_set_header X-User $jwt_claim_sub;
                        proxy_pass http://127.0.0.1:{backend.port}; }}
  }} }}""", port)

    def run(path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        return get(port, path, headers)

    run.backend = backend  # type: ignore[attr-defined]
    yield run
    backend.stop()


def _bearer(key: str = SECRET, exp: int = 60) -> dict[str, str]:
    return bearer(key, exp)


def test_a_protected_sliced_location_asks_nothing_without_a_valid_token(ask) -> None:  # type: ignore[no-untyped-def]
    for headers in ({}, _bearer("another key, not the gateway's 0123456789"),
                    _bearer(exp=-120), {"Authorization": "Bearer a.b.c", "X-User": "x"}):
        assert ask("/private", headers)[0] == 401
    assert ask.backend.requests() == []
    status, body = ask("/private", {**_bearer(), "X-User": "admin"})
    assert (status, body) == (200, WHOLE)
    got = ask.backend.requests()
    assert [r.header(b"range")[0] for r in got] == [
        b"bytes=%d-%d" % (n, n + 99) for n in range(0, 600, 100)]
    assert all(r.header(b"x-user") == [b'"alice"'] for r in got)


def test_the_slices_make_one_response(ask) -> None:  # type: ignore[no-untyped-def]
    assert ask("/ok") == (200, WHOLE)
    assert ask("/ok", {"Range": "bytes=250-260"}) == (206, WHOLE[250:261])


@pytest.mark.parametrize("path", ["/etag", "/second200"])
def test_a_slice_that_is_not_the_one_asked_for_cuts_the_response(ask, path: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CUT) as e:
        ask(path)
    if isinstance(e.value, http.client.IncompleteRead):  # (reset: what came is not known)
        assert e.value.partial == WHOLE[:100]  # the first slice, and no more


def test_a_first_slice_without_a_complete_length_gets_no_answer(ask) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(http.client.RemoteDisconnected):
        ask("/nolength")
