"""The map module: ``map $source $variable { ... }``."""

from __future__ import annotations

from fastgate.config.context import (
    HTTP,
    Context,
    Level,
    Spec,
)
from fastgate.config.errors import ConfigError
from fastgate.config.parser import Directive
from fastgate.config.regex import compile_regex
from fastgate.variables import Map, MapRegex, Template


def map_block(ld: Context, lvl: Level, d: Directive) -> None:
    src, name = d.args
    if not name.startswith("$") or len(name) < 2:
        raise d.error(f'invalid variable name "{name}"')
    source = ld.compile(src, d)
    exact: dict[str, Template] = {}
    regexes: list[MapRegex] = []
    heads: list[tuple[str, Template]] = []
    tails: list[tuple[str, Template]] = []
    default: Template | None = None
    hostnames = False
    heads_seen: set[str] = set()  # (the names nginx's wildcard hashes compare)
    tails_seen: set[str] = set()
    for e in d.block or ():
        if e.block is not None:
            raise e.error('unexpected "{"')
        if e.name in ("hostnames", "volatile") and not e.args:
            hostnames = hostnames or e.name == "hostnames"
            continue
        if len(e.args) != 1:
            raise e.error("invalid number of the map parameters")
        value = ld.compile(e.args[0], e)
        key = e.name
        if key == "default":
            if default is not None:
                raise e.error('duplicate default map parameter')
            default = value
        elif key.startswith("~"):
            caseless = key.startswith("~*")
            try:
                rx = compile_regex(key[2:] if caseless else key[1:], caseless)
            except ConfigError as err:
                raise e.error(err.message) from None
            regexes.append(MapRegex(rx, value))
        else:
            # (a backslash escapes a key that would read as a word or a regex)
            bare = key[1:] if key.startswith("\\") else key
            kind, low = _hostname_key(bare, e) if hostnames else ("", bare.lower())
            if kind == "head":
                if low in heads_seen or (bare.startswith(".") and low in exact):
                    raise e.error(f'conflicting parameter "{bare.lower()}"')
                heads_seen.add(low)
                heads.append(("." + low, value))
                if bare.startswith("."):  # (".example.com" is "example.com" too)
                    exact[low] = value
            elif kind == "tail":
                if low in tails_seen:
                    raise e.error(f'conflicting parameter "{bare.lower()}"')
                tails_seen.add(low)
                tails.append((low + ".", value))
            else:
                if low in exact:
                    raise e.error(f'conflicting parameter "{bare.lower()}"')
                exact[low] = value
    m = Map(
        name[1:].lower(), source, exact, tuple(regexes), default or ld.compile("", d),
        hostnames,
        tuple(sorted(heads, key=lambda kv: len(kv[0]), reverse=True)),
        tuple(sorted(tails, key=lambda kv: len(kv[0]), reverse=True)),
    )
    ld.define_map(m, d)


def _hostname_key(key: str, e: Directive) -> tuple[str, str]:
    """A key of a ``hostnames`` map as nginx's ngx_hash_add_key reads it: ("head",
    "example.com") for "*.example.com" and ".example.com", ("tail", "www.example") for
    "www.example.*", else ("", the exact name), lower-cased; nginx's "invalid hostname
    or wildcard" for a second "*", one anywhere else, "..", or a NUL."""
    stars = key.count("*")
    if stars > 1 or ".." in key or "\0" in key:
        raise e.error(f'invalid hostname or wildcard "{key}"')
    if len(key) > 1 and key.startswith("."):
        return "head", key[1:].lower()
    if len(key) > 2 and key.startswith("*."):
        return "head", key[2:].lower()
    if len(key) > 2 and key.endswith(".*"):
        return "tail", key[:-2].lower()
    if stars:
        raise e.error(f'invalid hostname or wildcard "{key}"')
    return "", key.lower()


SPECS = [
    Spec("map", frozenset({HTTP}), 2, 2, map_block, block=True),
]
