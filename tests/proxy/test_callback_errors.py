"""A bug on the callback path costs one request, never the event loop (issue #14, item
8): a real worker in process with transports that keep what is written (as
``bench/cycle.py``), and an error forced into each place the callbacks run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from scenario import Sink, connected

from fastgate.config import load_config
from fastgate.ops.worker import Worker

SECRET = "callback-errors-secret-0123456789abcdef"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Rig:
    def __init__(self, tmp: Path, engine: str) -> None:
        conf = tmp / "t.conf"
        conf.write_text(f"""error_log {tmp}/error.log info;
http {{
  upstream be {{ server 127.0.0.1:9; keepalive 8; }}
  server {{ listen 127.0.0.1:8080; auth_jwt_key "{SECRET}";
    location /hs/ {{ auth_jwt on; add_header X-A $jwt_claim_sub;
                    proxy_pass http://be; }} }} }}
""")
        self.worker = Worker(load_config(str(conf)), engine)
        self.lines: list[str] = []
        write = self.worker.log.write

        def record(level: str, message: str, *args: Any) -> None:
            self.lines.append(f"[{level}] {message}")
            write(level, message, *args)

        self.worker.log.write = record  # type: ignore[method-assign]
        self.client_out = Sink()
        self.client, self.upstream, self.upstream_out = connected(self.worker, self.client_out)
        tok = pyjwt.encode({"sub": "u", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
        self.request = (f"GET /hs/x HTTP/1.1\r\nHost: a\r\n"
                        f"Authorization: Bearer {tok}\r\n\r\n").encode()

    def response(self) -> bytes:
        return b"".join(self.client_out.out)

    def alerts(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture(params=["h11", "httptools"])
def within(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Callable[[Rig], None]], None]:
    """Runs a check on a fresh rig inside a running event loop, as the callbacks run."""

    def run(check: Callable[[Rig], None]) -> None:
        async def main() -> None:
            rig = Rig(tmp_path, request.param)
            try:
                check(rig)
            finally:
                rig.worker.close()

        asyncio.run(main())

    return run


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected bug")


def test_the_common_exchange_works(within) -> None:  # type: ignore[no-untyped-def]
    def check(rig: Rig) -> None:
        rig.client.data_received(rig.request)
        assert rig.upstream_out.out, "the request went upstream over the pooled connection"
        rig.upstream.data_received(RESPONSE)
        assert rig.response().startswith(b"HTTP/1.1 200")

    within(check)


def test_a_bug_before_the_exchange_is_a_500(within) -> None:  # type: ignore[no-untyped-def]
    def check(rig: Rig) -> None:
        # (the location's token check, as its plan is made on its first request)
        rig.worker.phases.auth.handler = lambda loc: _boom  # type: ignore[method-assign]
        rig.client.data_received(rig.request)  # must not raise
        assert rig.response().startswith(b"HTTP/1.1 500")
        assert not rig.upstream_out.out
        assert "[alert]" in rig.alerts() and "injected bug" in rig.alerts()

    within(check)


def test_a_bug_in_the_upstream_callbacks_is_a_500(within) -> None:  # type: ignore[no-untyped-def]
    def check(rig: Rig) -> None:
        rig.client.data_received(rig.request)
        assert rig.upstream_out.out
        rig.worker.phases.respond.headers_added = _boom  # type: ignore[method-assign]
        rig.upstream.data_received(RESPONSE)  # must not raise into the event loop
        assert rig.response().startswith(b"HTTP/1.1 500")
        assert rig.upstream_out.aborted  # the upstream connection is not reused
        assert not rig.worker.exchanges
        assert "injected bug" in rig.alerts()

    within(check)


def test_a_bug_under_the_engine_cuts_the_connection(within) -> None:  # type: ignore[no-untyped-def]
    class Broken:
        backlogged = False

        def feed(self, data: bytes) -> None:
            raise RuntimeError("injected bug")

    def check(rig: Rig) -> None:
        rig.client.engine = Broken()
        rig.client.data_received(b"GET / HTTP/1.1\r\n")  # must not raise
        assert rig.client_out.aborted
        assert "injected bug" in rig.alerts()

    within(check)
