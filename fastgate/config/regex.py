"""Regexes of locations, maps and server names, compiled as PCRE without UTF would
match them."""

from __future__ import annotations

import re

from fastgate.config.errors import ConfigError

# PCRE's (?<name>...) is Python's (?P<name>...); lookbehinds (?<= (?<! are left alone.
_PCRE_NAMED = re.compile(r"\(\?<(?![=!])")


def compile_regex(pattern: str, caseless: bool) -> re.Pattern[str]:
    """A location, map or server_name regex; ``ConfigError`` (no position) if it does
    not compile. ASCII matching, as PCRE without UTF: ``\\w``, ``\\d`` and case folding
    never reach beyond ASCII (under Unicode rules ``ſ`` would match ``s`` and the Kelvin
    sign ``k``, letting ``/adminſ`` or ``/ADMIN`` spellings slip past a ``~*`` rule)."""
    flags = re.ASCII | (re.IGNORECASE if caseless else 0)
    try:
        return re.compile(_PCRE_NAMED.sub("(?P<", pattern), flags)
    except re.error as e:
        raise ConfigError(f'pcre2_compile() failed: {e} in "{pattern}"') from None
