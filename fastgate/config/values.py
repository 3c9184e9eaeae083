"""Argument values as nginx reads them: times, sizes, flags, numbers, addresses."""

from __future__ import annotations

import re

from fastgate.config.errors import ConfigError
from fastgate.config.parser import Directive

# RFC 9110 section 5.6.2: the characters of a token (a method, a field name)
TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789"
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def is_token(text: str) -> bool:
    return bool(text) and set(text) <= TOKEN_CHARS


_TIME_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
               "M": 2592000, "y": 31536000}
_TIME_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|M|y)?")
_SIZE = re.compile(r"(\d+)([kKmMgG]?)")


def time_value(text: str, seconds_only: bool = False) -> float | None:
    """``ngx_parse_time``: "30", "30s", "500ms", "1m30s" → seconds; None if invalid.
    ``seconds_only``: nginx's whole-seconds form (no "ms"), as ``expires`` reads it."""
    pos = 0
    total = 0.0
    if not text:
        return None
    while pos < len(text):
        m = _TIME_PART.match(text, pos)
        if m is None or (seconds_only and m.group(2) == "ms"):
            return None
        total += int(m.group(1)) * _TIME_UNITS[m.group(2) or "s"]
        pos = m.end()
        if m.group(2) is None and pos < len(text):
            return None
    return total


def parse_time(d: Directive, text: str) -> float:
    value = time_value(text)
    if value is None:
        raise d.error(f'"{d.name}" directive invalid value')
    return value


def parse_size(d: Directive, text: str) -> int:
    """``ngx_parse_offset``: "1024", "8k", "1m", "2g" → bytes."""
    m = _SIZE.fullmatch(text)
    if m is None:
        raise d.error(f'"{d.name}" directive invalid value')
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
    return int(m.group(1)) * mult


def parse_flag(d: Directive, text: str) -> bool:
    if text == "on":
        return True
    if text == "off":
        return False
    raise d.error(f'invalid value "{text}" in "{d.name}" directive, it must be "on" or "off"')


def parse_number(d: Directive, text: str, minimum: int = 0) -> int:
    if not text.isdigit() or int(text) < minimum:
        raise d.error(f'invalid number "{text}" in "{d.name}" directive')
    return int(text)


def parse_host_port(d: Directive, text: str, default_port: int | None,
                    upstream: bool = False) -> tuple[str, int]:
    """"host", "host:port", "[v6]:port", "*:port", "port" → (host, port). ``upstream``:
    an upstream's address (HTTP's proxy_pass, an upstream's server), whose errors nginx
    words 'invalid port in upstream "X"'."""

    def bad(what: str) -> ConfigError:
        where = f'upstream "{text}"' if upstream else f'"{text}" of the "{d.name}" directive'
        return d.error(f"{what} in {where}")

    host, port_text = text, ""
    colon = False
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise bad("invalid host")
        host, rest = text[1:end], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise bad("invalid host")
        port_text, colon = rest[1:], bool(rest)
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
        colon = True
    elif text.isdigit():
        host, port_text = "", text
    if port_text or colon:  # ("host:" names no port: nginx's invalid port)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise bad("invalid port")
        port = int(port_text)
    elif default_port is None:
        raise bad("no port")
    else:
        port = default_port
    if host == "*":
        host = ""
    if host and not re.fullmatch(r"[A-Za-z0-9._:-]+", host):
        raise bad("invalid host")
    return host, port


def parse_code(d: Directive, text: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise d.error(f'value "{text}" must be between {low} and {high}')
    return int(text)


def host_of(hostport: str) -> str:
    """``example.com:8443`` -> ``example.com``; ``[::1]:443`` -> ``::1``."""
    if hostport.startswith("["):
        return hostport[1:].partition("]")[0]
    return hostport.partition(":")[0]
