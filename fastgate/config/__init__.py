"""Configuration: nginx syntax in, frozen model out. See ``load_config``."""

from typing import TYPE_CHECKING

from fastgate.config.errors import ConfigError

if TYPE_CHECKING:
    from fastgate.config.load import load_config

__all__ = ["ConfigError", "load_config"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # load_config is imported on first use, so that importing fastgate.config.errors
    # (which runs this file first) does not pull in the loader, the model and the
    # variables: a module the model imports may need ConfigError itself.
    if name == "load_config":
        from fastgate.config.load import load_config

        return load_config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
