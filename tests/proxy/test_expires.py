"""expires as nginx's headers filter: the value's forms, the errors nginx gives at load,
and the headers for each kind (nginx's answers for the same configurations are
compared in tests/e2e/test_nginx_parity_e2e.py, "expires")."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import server_config_error

from fastgate.config.expires import ExpiresError, parse_expires
from fastgate.config.model import Expires
from fastgate.proxy.headers import expires_headers

NOW = 1_700_000_000.4


@pytest.mark.parametrize("text,modified,expected", [
    ("epoch", False, Expires("epoch")), ("max", False, Expires("max")), ("off", False, None),
    ("30d", False, Expires("after", 30 * 86400)), ("+1h", False, Expires("after", 3600)),
    ("-1h", False, Expires("after", -3600)), ("@15h30m", False, Expires("daily", 55800)),
    ("1h", True, Expires("modified", 3600)), ("-5m", True, Expires("modified", -300)),
])
def test_parse(text: str, modified: bool, expected: Expires | None) -> None:
    assert parse_expires(text, modified) == expected


@pytest.mark.parametrize("text,modified,message", [
    ("@1h", True, 'daily time cannot be used with "modified" parameter'),
    ("@25h", False, "daily time value must be less than 24 hours"),
    ("epoch", True, "invalid value"), ("500ms", False, "invalid value"),
    ("soon", False, "invalid value"),
])
def test_parse_errors(text: str, modified: bool, message: str) -> None:
    with pytest.raises(ExpiresError, match=message):
        parse_expires(text, modified)


@pytest.mark.parametrize("body,message", [
    ("expires @25h;", '"expires" directive daily time value must be less than 24 hours'),
    ("expires modified @1h;", '"expires" directive daily time cannot be used'),
    ("expires later 1h;", '"expires" directive invalid value'),
])
def test_load_errors(tmp_path: Path, body: str, message: str) -> None:
    text = server_config_error(tmp_path, body)
    assert message in text and text.endswith(":2")


def _headers(e: Expires, upstream: list[tuple[bytes, bytes]] | None = None,
             **variables: str) -> dict[bytes, bytes]:
    req = SimpleNamespace(upstream_headers=upstream, **variables)
    return dict(expires_headers(e, NOW, req))


def test_after_and_modified() -> None:
    h = _headers(Expires("after", 3600))
    assert h[b"Cache-Control"] == b"max-age=3600"
    assert parsedate_to_datetime(h[b"Expires"].decode()).timestamp() == int(NOW) + 3600
    lm = [(b"Last-Modified", b"Tue, 14 Nov 2023 22:00:00 GMT")]  # 1699999200
    h = _headers(Expires("modified", 3600), lm)
    assert h[b"Cache-Control"] == b"max-age=2800"  # 1699999200 + 3600 - 1700000000
    assert _headers(Expires("modified", 60), lm)[b"Cache-Control"] == b"no-cache"
    # without a Last-Modified, from now
    assert _headers(Expires("modified", 60))[b"Cache-Control"] == b"max-age=60"
    assert _headers(Expires("after", 0))[b"Cache-Control"] == b"max-age=0"


def test_daily_is_the_next_time_of_day() -> None:
    h = _headers(Expires("daily", 0))  # the next local midnight
    at = parsedate_to_datetime(h[b"Expires"].decode()).timestamp()
    assert 0 < at - int(NOW) <= 86400 + 3600  # a day, give or take a DST change
    assert time.localtime(at)[3:6] == (0, 0, 0)
    assert h[b"Cache-Control"] == b"max-age=%d" % (at - int(NOW))


def test_a_value_with_variables_is_read_per_response() -> None:
    from fastgate.variables import Template

    e = Expires("value", template=Template("$x", (lambda r: r.x,)), modified=False)
    assert _headers(e, x="max")[b"Cache-Control"] == b"max-age=315360000"
    assert _headers(e, x="off") == {} and _headers(e, x="bogus") == {}
