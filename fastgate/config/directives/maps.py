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
        elif hostnames and (key.startswith("*.") or key.startswith(".")):
            suffix = key[1:].lower()
            heads.append((suffix, value))
            if key.startswith("."):
                exact.setdefault(suffix[1:], value)
        elif hostnames and key.endswith(".*"):
            tails.append((key[:-1].lower(), value))
        else:
            low = (key[1:] if key.startswith("\\") else key).lower()
            if low in exact:
                raise e.error(f'duplicate map key "{key}"')
            exact[low] = value
    m = Map(
        name[1:].lower(), source, exact, tuple(regexes), default or ld.compile("", d),
        hostnames,
        tuple(sorted(heads, key=lambda kv: len(kv[0]), reverse=True)),
        tuple(sorted(tails, key=lambda kv: len(kv[0]), reverse=True)),
    )
    ld.define_map(m, d)


SPECS = [
    Spec("map", frozenset({HTTP}), 2, 2, map_block, block=True),
]
