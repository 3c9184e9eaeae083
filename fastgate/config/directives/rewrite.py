"""The rewrite module: ``return``."""

from __future__ import annotations

from fastgate.config.context import (
    SL,
    Context,
    Level,
    Spec,
)
from fastgate.config.model import (
    Return,
)
from fastgate.config.parser import Directive


def set_return(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    first = d.args[0]
    if len(d.args) == 1 and not first.isdigit():
        if not first.startswith(("http://", "https://", "$scheme")):
            raise d.error(f'invalid return code "{first}"')
        lvl.local["return"] = Return(302, ld.compile(first, d))
        return
    if not first.isdigit() or int(first) > 999:
        raise d.error(f'invalid return code "{first}"')
    text = ld.compile(d.args[1], d) if len(d.args) > 1 else None
    lvl.local["return"] = Return(int(first), text)


SPECS = [
    Spec("return", SL, 1, 2, set_return),
]
