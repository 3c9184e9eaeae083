"""The one error type a configuration can raise (defined in the error tree, ``fastgate.errors``)."""

from __future__ import annotations

from fastgate.errors import ConfigError

__all__ = ["ConfigError"]
