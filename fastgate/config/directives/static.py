"""Files, as nginx's static, index and autoindex modules serve them, with the
not-modified and range filters: ``root``, ``alias``, ``index``, ``autoindex*``,
``etag``, ``if_modified_since``, ``max_ranges``, ``log_not_found``, ``random_index``,
``disable_symlinks off``. (``try_files`` is the core module's, ``types`` and
``default_type`` too.)"""

from __future__ import annotations

from fastgate.config.context import HSL, LIF, Context, Level, Spec
from fastgate.config.directives.args import flag_arg, number_arg, one_of, setting
from fastgate.config.model import ALIAS_ALL, Root
from fastgate.config.parser import Directive
from fastgate.variables import Template


def _path(ld: Context, lvl: Level, d: Directive, alias: int) -> Root:
    path = d.args[0]
    if "$" in path:
        return Root("", ld.compile(path, d), ld.path_of("", prefix=True), alias)
    path = ld.path_of(path, prefix=True)
    # root's trailing slash goes (the URI brings one); alias's is part of the mapping
    return Root(path if alias else path.rstrip("/") or "/", alias=alias)


def _no_other(lvl: Level, d: Directive) -> None:
    """root and alias are one setting: nginx refuses both in one location."""
    for other in ("root", "alias"):
        if other in lvl.origins:
            raise d.error(f'"{d.name}" directive is duplicate, "{other}" directive was '
                          "specified earlier")
    lvl.origins[d.name] = d


def set_root(ld: Context, lvl: Level, d: Directive) -> None:
    _no_other(lvl, d)
    lvl.fields["root"] = _path(ld, lvl, d, 0)


def set_alias(ld: Context, lvl: Level, d: Directive) -> None:
    _no_other(lvl, d)
    assert lvl.directive is not None
    args = lvl.directive.args
    name = args[-1]
    if name.startswith("@"):
        raise d.error('"alias" directive cannot be used inside the named location')
    # in a regex location the alias is the whole path (its captures say which file)
    lvl.fields["root"] = _path(ld, lvl, d, ALIAS_ALL if "regex" in lvl.local else len(name))


def _index(ld: Context, d: Directive) -> tuple[Template, ...]:
    for i, name in enumerate(d.args):
        if not name:
            raise d.error(f'index {i + 1} in "index" directive is invalid')
        if name.startswith("/") and i != len(d.args) - 1:
            # (as nginx's, a warning: the names after it are never reached)
            ld.warn('only the last index in "index" directive should be absolute', d)
    return tuple(ld.compile(name, d) for name in d.args)


def _indexes(ld: Context, lvl: Level, d: Directive) -> None:
    """``index``: every line at a level adds its names to the level's, as nginx's
    ngx_http_index_set_index (``index index.html; index index.php;`` is both)."""
    lvl.origins.setdefault(d.name, d)
    lvl.fields["index"] = lvl.fields.get("index", ()) + _index(ld, d)


def symlinks(ld: Context, lvl: Level, d: Directive) -> None:
    """``disable_symlinks off|on|if_not_owner [from=PART]`` (nginx's checks and
    messages)."""
    lvl.once(d)
    mode: str | None = None
    start: Template | None = None
    for value in d.args:
        if value in ("off", "on", "if_not_owner"):
            mode = value
        elif value.startswith("from="):
            start = ld.compile(value[5:], d)
        else:
            raise d.error(f'invalid parameter "{value}"')
    if mode is None:
        raise d.error('"disable_symlinks" must have "off", "on" or "if_not_owner" parameter')
    if len(d.args) == 2 and start is None:
        raise d.error(f'duplicate parameters "{d.args[0]} {d.args[1]}"')
    if start is not None and mode == "off":
        raise d.error('"from=" cannot be used with "off" parameter')
    lvl.fields["disable_symlinks"] = mode
    lvl.fields["disable_symlinks_from"] = start


SPECS = [
    Spec("root", HSL | {LIF}, 1, 1, set_root),
    Spec("alias", frozenset({"location"}), 1, 1, set_alias),
    Spec("index", HSL, 1, None, _indexes),
    Spec("autoindex", HSL, 1, 1, setting("autoindex", flag_arg)),
    Spec("autoindex_exact_size", HSL, 1, 1, setting("autoindex_exact_size", flag_arg)),
    Spec("autoindex_format", HSL, 1, 1,
         setting("autoindex_format", one_of("html", "xml", "json", "jsonp"))),
    Spec("autoindex_localtime", HSL, 1, 1, setting("autoindex_localtime", flag_arg)),
    Spec("etag", HSL, 1, 1, setting("etag", flag_arg)),
    Spec("if_modified_since", HSL, 1, 1,
         setting("if_modified_since", one_of("off", "exact", "before"))),
    Spec("max_ranges", HSL, 1, 1,
         setting("max_ranges", number_arg)),
    Spec("log_not_found", HSL, 1, 1, setting("log_not_found", flag_arg)),
    Spec("random_index", frozenset({"location"}), 1, 1, setting("random_index", flag_arg)),
    Spec("disable_symlinks", HSL, 1, 2, symlinks),
]

__all__ = ["SPECS"]
