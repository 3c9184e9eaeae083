"""The gzip filter (``ngx_http_gzip_filter_module``: ``gzip``, ``gzip_types``,
``gzip_min_length``, ``gzip_comp_level``, ``gzip_window``, ``gzip_hash``), the gzip
static module's ``gzip_static`` (``proxy.static``), the gunzip filter's ``gunzip`` and
the core module's directives
that decide, per request, whether a client gets a compressed answer (``gzip_vary``,
``gzip_proxied``, ``gzip_disable``, ``gzip_http_version``). The filter itself is
``proxy.gzip``. ``gzip_buffers`` and ``gzip_no_buffer`` size nginx's output buffers and
are accepted with a warning (``ignored``)."""

from __future__ import annotations

import re

from fastgate.config.context import HSL, LIF, Context, Level, Spec
from fastgate.config.directives.args import (
    bitmask,
    flag_arg,
    ignored,
    mime_types,
    number_arg,
    one_of,
    setting,
)
from fastgate.config.errors import ConfigError
from fastgate.config.parser import Directive
from fastgate.config.regex import compile_regex
from fastgate.config.values import parse_size

# gzip_proxied's words (nginx's ngx_http_gzip_proxied_mask)
PROXIED = frozenset({"off", "expired", "no-cache", "no-store", "private",
                     "no_last_modified", "no_etag", "auth", "any"})


def _level(ld: Context, d: Directive) -> int:
    level = number_arg(ld, d)
    if not 1 <= level <= 9:
        raise d.error("value must be between 1 and 9")
    return level


def _window(ld: Context, d: Directive) -> int:
    size = parse_size(d, d.args[0])
    for bits in range(15, 8, -1):
        if size == 1 << bits:
            return bits
    raise d.error("must be 512, 1k, 2k, 4k, 8k, 16k, or 32k")


def _hash(ld: Context, d: Directive) -> int:
    size = parse_size(d, d.args[0])
    for level in range(9, 0, -1):
        if size == 1 << (level + 8):
            return level
    raise d.error("must be 512, 1k, 2k, 4k, 8k, 16k, 32k, 64k, or 128k")


def _proxied(ld: Context, d: Directive) -> frozenset[str]:
    for word in d.args:
        if word.lower() not in PROXIED:  # (a bitmask: caseless, as nginx's)
            raise d.error(f'invalid value "{word}"')
    return frozenset(word.lower() for word in d.args)


def _http_version(ld: Context, d: Directive) -> tuple[int, int]:
    if d.args[0] not in ("1.0", "1.1"):
        raise d.error(f'invalid value "{d.args[0]}"')
    return (1, int(d.args[0][2]))


def _disable(ld: Context, lvl: Level, d: Directive) -> None:
    """``gzip_disable``: "msie6" (nginx's own test of the User-Agent), else regexes,
    caseless, that a User-Agent must not match; every occurrence at a level adds."""
    lvl.origins.setdefault(d.name, d)
    msie6 = False
    patterns: tuple[re.Pattern[str], ...] = lvl.fields.get("gzip_disable", ())
    for arg in d.args:
        if arg == "msie6":
            msie6 = True
        elif arg == "degradation":
            ld.warn_once('"gzip_disable degradation" is ignored',
                         "the degradation module's state does not turn gzip off", d)
        else:
            try:
                patterns += (compile_regex(arg, True),)
            except ConfigError as e:
                raise d.error(e.message) from None
    lvl.fields["gzip_disable"] = patterns
    if msie6:  # (else inherited, as nginx merges it apart from the regexes)
        lvl.fields["gzip_disable_msie6"] = True


SPECS = [
    Spec("gzip", HSL | {LIF}, 1, 1, setting("gzip", flag_arg)),
    Spec("gzip_types", HSL, 1, None, mime_types("gzip_types", "text/html")),
    Spec("gzip_min_length", HSL, 1, 1, setting(
        "gzip_min_length", lambda ld, d: parse_size(d, d.args[0]))),
    Spec("gzip_comp_level", HSL, 1, 1, setting("gzip_comp_level", _level)),
    Spec("gzip_window", HSL, 1, 1, setting("gzip_window", _window)),
    Spec("gzip_hash", HSL, 1, 1, setting("gzip_hash", _hash)),
    Spec("gzip_vary", HSL, 1, 1, setting("gzip_vary", flag_arg)),
    Spec("gzip_proxied", HSL, 1, None, bitmask("gzip_proxied", _proxied)),
    Spec("gzip_http_version", HSL, 1, 1, setting("gzip_http_version", _http_version)),
    Spec("gzip_disable", HSL, 1, None, _disable),
    Spec("gzip_static", HSL, 1, 1, setting("gzip_static", one_of("off", "on", "always"))),
    Spec("gunzip", HSL, 1, 1, setting("gunzip", flag_arg)),
    Spec("gzip_buffers", HSL, 2, 2, ignored(
        "compressed output goes out as zlib gives it, without nginx's buffers")),
    Spec("gzip_no_buffer", HSL, 1, 1, ignored(
        "compressed output goes out as zlib gives it, without nginx's buffers")),
]

__all__ = ["PROXIED", "SPECS"]
