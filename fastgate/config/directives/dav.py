"""nginx's WebDAV module: ``dav_methods``, ``dav_access``, ``create_full_put_path``,
``min_delete_depth`` (what the methods do: ``fastgate.proxy.dav``)."""

from __future__ import annotations

from fastgate.config.context import HSL, Context, Level, Spec
from fastgate.config.directives.args import access_arg, flag_arg, number_arg, setting
from fastgate.config.parser import Directive

METHODS = ("PUT", "DELETE", "MKCOL", "COPY", "MOVE")


def dav_methods(ld: Context, lvl: Level, d: Directive) -> None:
    """``off`` or any of put, delete, mkcol, copy, move (nginx's bitmask: any case, a
    repeated value warned)."""
    lvl.once(d)
    methods: set[str] = set()
    off = False
    for value in d.args:
        name = value.upper()
        if name == "OFF":
            if off:
                ld.warn(f'duplicate value "{value}"', d)
            off = True
        elif name in METHODS:
            if name in methods:
                ld.warn(f'duplicate value "{value}"', d)
            methods.add(name)
        else:
            raise d.error(f'invalid value "{value}"')
    lvl.fields["dav_methods"] = frozenset(methods)


SPECS = [
    Spec("dav_methods", HSL, 1, None, dav_methods),
    Spec("dav_access", HSL, 1, 3, setting("dav_access", access_arg)),
    Spec("create_full_put_path", HSL, 1, 1, setting("create_full_put_path", flag_arg)),
    Spec("min_delete_depth", HSL, 1, 1, setting("min_delete_depth", number_arg)),
]

__all__ = ["METHODS", "SPECS"]
