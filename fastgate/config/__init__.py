"""Configuration: nginx syntax in, frozen model out. See ``load_config``."""

from fastgate.config.errors import ConfigError
from fastgate.config.load import load_config

__all__ = ["ConfigError", "load_config"]
