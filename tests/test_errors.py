"""fastgate's errors are one tree (issue #16, item 7): every exception class the package
defines derives from ``FastgateError``, so a caller can catch "anything fastgate raised
on purpose" in one clause and nothing else."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import fastgate
from fastgate.errors import (
    ConfigError,
    FastgateError,
    JWTError,
    KeyLoadError,
    ProtocolError,
    StartError,
    UpstreamError,
)


def _modules() -> list[str]:
    names = [fastgate.__name__]
    for info in pkgutil.walk_packages(fastgate.__path__, fastgate.__name__ + "."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


def test_every_exception_the_package_defines_is_a_fastgate_error() -> None:
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException):
                found.append(cls)
                assert issubclass(cls, FastgateError), f"{name}.{cls.__qualname__}"
    assert len(found) >= 25  # the walk reached the package, C modules included
    assert any(c.__module__ == "fastgate.http.httptools_engine" for c in found)


def test_the_named_branches_and_where_they_are_imported_from() -> None:
    from fastgate.config.errors import ConfigError as ConfigErrorAgain
    from fastgate.http.engine import ProtocolError as ProtocolErrorAgain

    assert ConfigErrorAgain is ConfigError and ProtocolErrorAgain is ProtocolError
    for cls in (ConfigError, StartError, ProtocolError, JWTError, KeyLoadError,
                UpstreamError):
        assert issubclass(cls, FastgateError)
    assert issubclass(KeyLoadError, ValueError)  # callers that catch ValueError still do
    assert str(ConfigError("unknown directive", "f.conf", 3)) == "unknown directive in f.conf:3"
    assert ProtocolError("too large", 413).status == 413
    assert UpstreamError("timeout", "slow").status == 504
