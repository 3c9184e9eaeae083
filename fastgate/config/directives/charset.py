"""The charset module (``ngx_http_charset_filter_module``): ``charset NAME|off`` and
``charset_types`` (the charset a response's Content-Type names), ``source_charset`` and
``override_charset`` (the body recoded to it), and ``charset_map`` (the tables nginx
ships as ``koi-win``, ``koi-utf``, ``win-utf`` load as they are). What a response gets:
``fastgate.proxy.charset``."""

from __future__ import annotations

from fastgate.config.context import HSL, HTTP, LIF, Context, Level, Spec
from fastgate.config.directives.args import flag_arg, mime_types, setting
from fastgate.config.model import CharsetMap
from fastgate.config.parser import Directive
from fastgate.variables import Template

UTF8 = "utf-8"


def _named(ld: Context, name: str) -> str:
    """A charset's name as it was first written in the configuration (nginx keeps one
    list of charsets, matched in any case, and a response names the first spelling)."""
    return ld.charset_names.setdefault(name.lower(), name)


def _charset(ld: Context, d: Directive) -> Template:
    name = d.args[0]
    return ld.compile(name if name.startswith("$") else _named(ld, name), d)


def set_charset(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    lvl.fields["charset"] = None if d.args[0] == "off" else _charset(ld, d)


def set_source_charset(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    lvl.fields["source_charset"] = _charset(ld, d)


def _hex(d: Directive, text: str, at: Directive) -> int:
    if not text or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise at.error(f'invalid value "{text}"')
    value = int(text, 16)
    if value > 255:
        raise at.error(f'invalid value "{text}"')
    return value


def _code_point(entry: Directive, text: str) -> int:
    """A UTF-8 character written in hex (at most three bytes, as nginx's maps)."""
    if len(text) % 2 or not 2 <= len(text) <= 6:
        raise entry.error(f'invalid value "{text}"')
    raw = bytes(_hex(entry, text[i:i + 2], entry) for i in range(0, len(text), 2))
    try:
        char = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise entry.error(f'invalid value "{text}"') from None
    if len(char) != 1:
        raise entry.error(f'invalid value "{text}"')
    return ord(char)


def charset_map(ld: Context, lvl: Level, d: Directive) -> None:
    """``charset_map FROM TO { BYTE BYTE|UTF8; ... }``: both directions of a table."""
    _named(ld, d.args[0])
    _named(ld, d.args[1])
    src, dst = d.args[0].lower(), d.args[1].lower()
    if src == dst:
        raise d.error(f'"charset_map" between the same charsets "{d.args[0]}" and '
                      f'"{d.args[1]}"')
    if src == UTF8:
        raise d.error('"charset_map" with "utf-8" charset should be given in the second '
                      "column")
    maps: dict[tuple[str, str], CharsetMap] = dict(lvl.fields.get("charset_maps", {}))
    if (src, dst) in maps:
        raise d.error(f'duplicate "charset_map" between "{d.args[0]}" and "{d.args[1]}"')
    pairs: dict[int, int] = {}
    for entry in d.block or ():
        if entry.block is not None or len(entry.args) != 1:
            raise entry.error("invalid parameters number")
        byte = _hex(entry, entry.name, entry)
        pairs[byte] = (_code_point(entry, entry.args[0]) if dst == UTF8
                       else _hex(entry, entry.args[0], entry))
    # what a map does not name: itself below 0x80, "?" above (nginx's defaults)
    if dst == UTF8:
        to = {b: chr(b) if b < 0x80 else "?" for b in range(256)}
        back: dict[int, int] = {}
        for byte, point in pairs.items():
            to[byte] = chr(point)
            back[point] = byte
        maps[src, dst] = CharsetMap("to_utf8", to)
        maps[dst, src] = CharsetMap("from_utf8", back)
    else:
        forward = bytearray(range(128)) + b"?" * 128
        backward = bytearray(forward)
        for byte, other in pairs.items():
            forward[byte] = other
            backward[other] = byte
        maps[src, dst] = CharsetMap("bytes", bytes(forward))
        maps[dst, src] = CharsetMap("bytes", bytes(backward))
    lvl.fields["charset_maps"] = maps


SPECS = [
    Spec("charset", HSL | {LIF}, 1, 1, set_charset),
    Spec("charset_types", HSL, 1, None, mime_types("charset_types", "text/html", kept=True)),
    Spec("source_charset", HSL | {LIF}, 1, 1, set_source_charset),
    Spec("override_charset", HSL | {LIF}, 1, 1, setting("override_charset", flag_arg)),
    Spec("charset_map", frozenset({HTTP}), 2, 2, charset_map, block=True),
]

__all__ = ["SPECS", "UTF8"]
