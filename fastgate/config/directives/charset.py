"""The charset module (``ngx_http_charset_filter_module``), its header part:
``charset NAME|off`` and ``charset_types``. Recoding a body from one charset to another
(``source_charset``, ``override_charset``, ``charset_map``) is refused
(``directives.refused``)."""

from __future__ import annotations

from fastgate.config.context import HSL, LIF, Context, Level, Spec
from fastgate.config.directives.args import setting
from fastgate.config.parser import Directive


def set_charset(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    lvl.fields["charset"] = None if d.args[0] == "off" else ld.compile(d.args[0], d)


SPECS = [
    Spec("charset", HSL | {LIF}, 1, 1, set_charset),
    Spec("charset_types", HSL, 1, None,
         setting("charset_types", lambda ld, d: tuple(a.lower() for a in d.args))),
]

__all__ = ["SPECS"]
