"""Coverage-guided fuzzing with atheris (libFuzzer) of the three parsers that face
untrusted bytes. `make fuzz` runs each target for a while; libFuzzer options pass
through, e.g. `-max_total_time=60`.

    python fuzz/atheris_fuzz.py jwt|config|http [libFuzzer options]
"""

from __future__ import annotations

import sys
import time

import atheris

with atheris.instrument_imports():
    from fastgate.config.errors import ConfigError
    from fastgate.config.parser import parse_text
    from fastgate.errors import JWTError
    from fastgate.http.engine import ProtocolError
    from fastgate.http.h11_engine import H11Server
    from fastgate.http.httptools_engine import HttptoolsServer
    from fastgate.jwt import HMACKey, Verifier

VERIFIER = Verifier([HMACKey(b"atheris-secret-0123456789abcdef0123456789")], "any",
                    cache_size=16)
NOW = time.time()


class _Sink:
    def on_request(self, head: object) -> None: ...
    def on_body(self, data: bytes) -> None: ...
    def on_end(self) -> None: ...
    def on_error(self, error: ProtocolError) -> None: ...
    def on_eof(self) -> None: ...


def fuzz_jwt(data: bytes) -> None:
    try:
        VERIFIER.verify(data, NOW)
    except JWTError:
        pass


def fuzz_config(data: bytes) -> None:
    try:
        parse_text(data.decode("utf-8", "replace"), "fuzz.conf", "/nonexistent")
    except ConfigError:
        pass


def fuzz_http(data: bytes) -> None:
    for engine_cls in (H11Server, HttptoolsServer):
        engine = engine_cls(_Sink(), 32768, 8192)
        half = len(data) // 2
        engine.feed(data[:half])
        engine.feed(data[half:])
        engine.feed(b"")


TARGETS = {"jwt": fuzz_jwt, "config": fuzz_config, "http": fuzz_http}

if __name__ == "__main__":
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
