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


_SIZE = re.compile(r"([0-9]+)([kKmMgG]?)")
_SCALES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
INT_MAX = 2**63 - 1  # nginx's NGX_MAX_INT_T_VALUE (and off_t's, size_t's) on 64 bits
# ngx_parse_time's steps past seconds, and its units in the order they must come:
# (its step, seconds)
_SEC, _MSEC, _LAST = 7, 8, 9
_UNITS = {"y": (1, 31536000), "M": (2, 2592000), "w": (3, 604800), "d": (4, 86400),
          "h": (5, 3600), "m": (6, 60), "s": (_SEC, 1)}


def time_value(text: str, seconds_only: bool = False) -> float | None:
    """``ngx_parse_time``: "30", "30s", "500ms", "1m30s", "1h 30m" → seconds; None if
    invalid. Units come largest first, each once; a number without one is seconds and
    ends the value; the result must fit nginx's integer (in milliseconds unless
    ``seconds_only``, whose form — ``ngx_parse_time(.., 1)``, as ``expires`` and
    ``ssl_session_timeout`` read it — has no "ms"). The millisecond form (timeouts)
    has no "y" nor "M", as nginx's."""
    value = total = 0
    valid = False
    step = 0 if seconds_only else 2  # (nginx's st_start / st_month)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        i += 1
        if "0" <= c <= "9":
            value = value * 10 + ord(c) - 48
            if value > INT_MAX:
                return None
            valid = True
            continue
        if c == "m" and i < n and text[i] == "s":
            if seconds_only or step >= _MSEC:
                return None
            i += 1
            step, scale = _MSEC, 1
        elif c == " ":
            if step >= _SEC:
                return None
            step, scale = _LAST, 1
        else:
            unit = _UNITS.get(c)
            if unit is None or step >= unit[0]:
                return None
            step, scale = unit
        limit = INT_MAX // scale
        if step != _MSEC and not seconds_only:
            scale *= 1000
            limit //= 1000
        if value > limit:
            return None
        value *= scale
        if total > INT_MAX - value:
            return None
        total += value
        value = 0
        while i < n and text[i] == " ":
            i += 1
    if not valid:
        return None
    if not seconds_only:
        if value > INT_MAX // 1000:
            return None
        value *= 1000
    if total > INT_MAX - value:
        return None
    total += value
    return float(total) if seconds_only else total / 1000


def parse_time(d: Directive, text: str, seconds_only: bool = False) -> float:
    value = time_value(text, seconds_only)
    if value is None:
        raise d.error(f'"{d.name}" directive invalid value')
    return value


def size_value(text: str, offset: bool = False) -> int | None:
    """``ngx_parse_size`` ("1024", "8k", "1m" → bytes), or with ``offset``
    ``ngx_parse_offset`` (also "2g"); None if invalid or past nginx's integer."""
    m = _SIZE.fullmatch(text)
    if m is None or (not offset and m.group(2) in ("g", "G")):
        return None
    scale = _SCALES[m.group(2).lower()]
    number = int(m.group(1))
    if number > INT_MAX // scale:
        return None
    return number * scale


def parse_size(d: Directive, text: str, offset: bool = False) -> int:
    value = size_value(text, offset)
    if value is None:
        raise d.error(f'"{d.name}" directive invalid value')
    return value


def parse_flag(d: Directive, text: str) -> bool:
    """nginx's flag slot: "on" or "off", in any case (``sendfile On;``)."""
    word = text.lower()
    if word == "on":
        return True
    if word == "off":
        return False
    raise d.error(f'invalid value "{text}" in "{d.name}" directive, it must be "on" or "off"')


def number_value(text: str) -> int | None:
    """``ngx_atoi``: ASCII digits only, within nginx's integer; None otherwise."""
    if not (text.isascii() and text.isdigit()) or int(text) > INT_MAX:
        return None
    return int(text)


def parse_number(d: Directive, text: str, minimum: int = 0) -> int:
    value = number_value(text)
    if value is None or value < minimum:
        raise d.error(f'invalid number "{text}" in "{d.name}" directive')
    return value


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
    elif text.isascii() and text.isdigit():
        host, port_text = "", text
    if port_text or colon:  # ("host:" names no port: nginx's invalid port)
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
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
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise d.error(f'value "{text}" must be between {low} and {high}')
    return int(text)


def host_of(hostport: str) -> str:
    """``example.com:8443`` -> ``example.com``; ``[::1]:443`` -> ``::1``."""
    if hostport.startswith("["):
        return hostport[1:].partition("]")[0]
    return hostport.partition(":")[0]
