"""limit_rate in parts (fastgate.proxy.rate): sizes as nginx reads them, which rate
applies (X-Accel-Limit-Rate over set $limit_rate over the location's; unbuffered: none),
the pace's arithmetic, $limit_rate, and what a configuration may write. (Responses
paced end to end: tests/e2e/test_limit_rate_e2e.py.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from fastgate.config import ConfigError, load_config
from fastgate.proxy import rate
from fastgate.variables import BUILTIN, RATE_KEY, SET_RATE, SUBREQUEST_KEY, Registry


@pytest.mark.parametrize("text,want", [
    ("100", 100), ("8k", 8192), ("8K", 8192), ("1m", 1 << 20), ("2g", 2 << 30), ("", None),
    ("1.5k", None), ("k", None), ("-1", None), ("10 k", None)])
def test_sizes(text: str, want: int | None) -> None:
    assert rate.parse_size(text) == want


def _settings(limit: str | None = None, after: str | None = None) -> SimpleNamespace:
    reg = Registry()
    return SimpleNamespace(limit_rate=None if limit is None else reg.compile(limit),
                           limit_rate_after=None if after is None else reg.compile(after))


def _req(given: object = None, set: object = None) -> SimpleNamespace:  # noqa: A002
    """A request whose upstream gave a rate (``given``), or whose ``set $limit_rate``
    did (``set``)."""
    return SimpleNamespace(memo={} if given is None else {RATE_KEY: given},
                           variables={} if set is None else {SET_RATE: set},
                           start=time.time(), bytes_sent=0, status=0, location=None)


def test_which_rate_applies() -> None:
    logged: list[str] = []
    s = _settings("4k")
    assert rate.rate_of(_req(), s, logged.append) == 4096  # type: ignore[arg-type]
    assert rate.rate_of(_req(set="1k"), s, logged.append) == 1024  # type: ignore[arg-type]
    assert rate.rate_of(_req(set="1k", given=99), s, logged.append) == 99  # type: ignore[arg-type]
    assert rate.rate_of(_req(set="fast"), s, logged.append) == 4096  # type: ignore[arg-type]
    assert logged == ['invalid $limit_rate "fast"']
    assert rate.pace(_req(given=0), s, logged.append) is None  # type: ignore[arg-type]
    assert rate.pace(_req(), _settings(), logged.append) is None  # type: ignore[arg-type]
    assert rate.pace(_req(), s, logged.append) is not None  # type: ignore[arg-type]
    sub = _req()
    sub.memo[SUBREQUEST_KEY] = object()  # an include's or a slice's answer, kept
    assert rate.pace(sub, s, logged.append) is None  # type: ignore[arg-type]


def test_an_upstreams_headers() -> None:
    req = _req()
    rate.upstream_rate(req, [(b"X-Accel-Limit-Rate", b" 2048 ")], frozenset())  # type: ignore[arg-type]
    assert req.memo[RATE_KEY] == 2048
    req = _req()
    rate.upstream_rate(req, [(b"X-Accel-Limit-Rate", b"2k")], frozenset())  # type: ignore[arg-type]
    assert RATE_KEY not in req.memo  # (digits only, as nginx's ngx_atoi)
    rate.upstream_rate(req, [(b"X-Accel-Limit-Rate", b"2048")],  # type: ignore[arg-type]
                       frozenset({"x-accel-limit-rate"}))
    assert RATE_KEY not in req.memo
    rate.upstream_rate(req, [(b"X-Accel-Limit-Rate", b"2048"),  # type: ignore[arg-type]
                             (b"X-Accel-Buffering", b"no")], frozenset())
    assert req.memo[RATE_KEY] == 0  # unbuffered: no rate


def test_the_pace() -> None:
    async def main() -> tuple[int, int, float]:
        pace = rate.Pace(1000, 500, time.time(), 0)
        first = await pace.take(10_000)  # the first second's 1000, past the 500 free
        pace.sent(first)
        began = time.monotonic()
        second = await pace.take(10_000)  # waits for the next whole second
        return first, second, time.monotonic() - began
    first, second, waited = asyncio.run(main())
    assert first == 1500 and 0 < second <= 1000 and waited > 0


def test_limit_rate_the_variable() -> None:
    assert BUILTIN["limit_rate"](_req()) == "0"
    assert BUILTIN["limit_rate"](_req(set="10k")) == "10k"
    assert BUILTIN["limit_rate"](_req(given=300)) == "300"


def test_what_a_configuration_may_write(tmp_path: Path) -> None:
    conf = tmp_path / "f.conf"
    conf.write_text("""http { server { listen 127.0.0.1:8080;
      location /a/ { limit_rate $arg_rate; limit_rate_after 1m; proxy_pass http://127.0.0.1:9; }
      location /b/ { set $limit_rate 1k; proxy_pass http://127.0.0.1:9; }
      location /c/ { proxy_buffering off; proxy_pass http://127.0.0.1:9; }
      location /d/ { proxy_pass http://127.0.0.1:9; if ($arg_slow) { limit_rate 1k; } }
      } }""")
    server = load_config(str(conf)).servers[0]
    a = server.locations.find("/a/")[0]
    c = server.locations.find("/c/")[0]
    d = server.locations.find("/d/")[0]
    assert a is not None and not a.proxy_pass.as_is  # type: ignore[union-attr]
    assert c is not None and c.proxy_pass.as_is and not c.settings.proxy_buffering  # type: ignore[union-attr]
    assert d is not None and d.proxy_pass.as_is  # type: ignore[union-attr]
    # (the if's configuration, which paces, is off the callback path)
    nested = next(op.location for op in d.rewrites if getattr(op, "location", None))
    assert not nested.proxy_pass.as_is  # type: ignore[union-attr]
    conf.write_text("http { server { listen 127.0.0.1:8080; limit_rate fast; } }")
    with pytest.raises(ConfigError, match='"limit_rate" directive invalid value'):
        load_config(str(conf))


@pytest.mark.parametrize("text,size", [("10", 10), ("2k", 2048), ("1M", 1 << 20),
                                       ("9" * 5000, None), ("9223372036854775807k", None),
                                       ("x", None)])
def test_a_rate_size_as_ngx_parse_size(text: str, size: int | None) -> None:
    from fastgate.proxy.rate import parse_size

    assert parse_size(text) == size
