"""The slice module in parts: where ``$slice_range`` starts (nginx's
ngx_http_slice_get_start), when it starts slicing at all, the first answer's checks,
and what a configuration may ask. (Whole responses compared with nginx: the parity
test; failures end to end: tests/e2e/test_slice_e2e.py.)"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from fastgate._wire import ResponseHead
from fastgate.config import ConfigError, load_config
from fastgate.proxy import slices
from fastgate.variables import BUILTIN, SLICE_KEY, SUBREQUEST_KEY, SliceState


def _req(size: int = 100, status: int = 0, **headers: bytes) -> SimpleNamespace:
    settings = SimpleNamespace(slice=size)
    return SimpleNamespace(memo={}, status=status, location=SimpleNamespace(settings=settings),
                           header=lambda name: headers.get(name.decode().replace("-", "_")))


@pytest.mark.parametrize("headers,want", [
    ({}, "bytes=0-99"),
    ({"range": b"bytes=250-"}, "bytes=200-299"),
    ({"range": b"BYTES= 250-300"}, "bytes=200-299"),
    ({"range": b"bytes=250-", "if_range": b'"e"'}, "bytes=0-99"),  # If-Range: from 0
    ({"range": b"bytes=250-260,300-310"}, "bytes=0-99"),  # several: from 0
    ({"range": b"bytes=-10"}, "bytes=0-99"),  # a suffix: from 0
    ({"range": b"items=250-"}, "bytes=0-99"),
    ({"range": b"bytes=99999999999999999999-"}, "bytes=0-99"),  # too large: from 0
])
def test_where_the_slices_start(headers: dict[str, bytes], want: str) -> None:
    req = _req(**headers)
    assert BUILTIN["slice_range"](req) == want
    assert isinstance(req.memo[SLICE_KEY], SliceState)


def test_no_slicing_without_slice_after_the_answer_or_in_another_subrequest() -> None:
    assert BUILTIN["slice_range"](_req(size=0)) == ""
    assert BUILTIN["slice_range"](_req(status=200)) == ""  # (in a log line, say)
    sub = _req()
    sub.memo[SUBREQUEST_KEY] = object()  # an include, not a slice's subrequest
    assert BUILTIN["slice_range"](sub) == "" and SLICE_KEY not in sub.memo
    given = _req()
    given.memo[SLICE_KEY] = SliceState(300, 100)  # a slice's subrequest: the next slice
    assert BUILTIN["slice_range"](given) == "bytes=300-399"


def _first(req: SimpleNamespace, status: int, content_range: bytes | None,
           etag: bytes = b'"e"') -> ResponseHead:
    headers = [(b"ETag", etag), (b"Content-Length", b"100")]
    if content_range is not None:
        headers.append((b"Content-Range", content_range))
    return ResponseHead(status, b"", b"HTTP/1.1", headers, 100, True)


@pytest.mark.parametrize("content_range,error", [
    (None, "invalid range in slice response"),
    (b"bytes 0-99/*", "no complete length in slice response"),
    (b"bytes 100-199/1000", "unexpected range in slice response: 100-200"),
    (b"bytes 0-49/1000", "unexpected range in slice response: 0-50"),
    (b"bytes=0-99/1000", "invalid range in slice response"),
    # (an upstream's thousands of digits: never handed to int())
    (b"bytes 0-99/" + b"9" * 5000, "invalid range in slice response"),
])
def test_a_first_slice_that_is_not_the_one_asked_for(content_range: bytes | None,
                                                      error: str) -> None:
    req = _req()
    BUILTIN["slice_range"](req)
    with pytest.raises(slices.SliceError, match=error):
        slices.begin(req, _first(req, 206, content_range), None)  # type: ignore[arg-type]


def test_a_first_answer_that_is_not_a_slice_goes_as_it_came() -> None:
    req = _req()
    BUILTIN["slice_range"](req)
    assert slices.begin(req, _first(req, 200, None), None) is None  # type: ignore[arg-type]
    assert SLICE_KEY not in req.memo  # (no more slices asked for)


def test_the_head_of_a_whole_sliced_response() -> None:
    req = _req()
    BUILTIN["slice_range"](req)
    head, want, offset = slices.begin(  # type: ignore[misc]
        req, _first(req, 206, b"bytes 0-99/1000"), None)  # type: ignore[arg-type]
    assert (head.status, head.content_length, want, offset) == (200, 1000, (0, 1000), 0)
    assert head.headers == [(b"ETag", b'"e"'), (b"Accept-Ranges", b"bytes")]
    assert req.memo[SLICE_KEY].start == 100


def test_slice_locations_take_the_task_path_and_slices_fit_in_memory(tmp_path: Path) -> None:
    conf = tmp_path / "f.conf"
    conf.write_text("""http { server { listen 127.0.0.1:8080;
      location /a/ { slice 1m; proxy_set_header Range $slice_range;
                     proxy_pass http://127.0.0.1:9; }
      location /c/ { proxy_pass http://127.0.0.1:9; } } }""")
    server = load_config(str(conf)).servers[0]
    assert not server.locations.find("/a/")[0].proxy_pass.as_is  # type: ignore[union-attr]
    assert server.locations.find("/c/")[0].proxy_pass.as_is  # type: ignore[union-attr]
    conf.write_text("http { server { listen 127.0.0.1:8080; slice 9m; } }")
    with pytest.raises(ConfigError, match='"slice" size "9m" is larger than'):
        load_config(str(conf))
