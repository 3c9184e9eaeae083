"""The one error type a configuration can raise."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration error, printed as nginx prints it: ``MESSAGE in FILE:LINE``."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        if self.file == "command line":  # -g
            return f"{self.message} in command line"
        if self.line is None:
            return f"{self.message} in {self.file}"
        return f"{self.message} in {self.file}:{self.line}"
