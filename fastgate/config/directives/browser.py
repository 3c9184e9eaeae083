"""The browser module: ``modern_browser BROWSER VERSION | unlisted``, ``ancient_browser
STRING... | netscape4``, ``modern_browser_value``, ``ancient_browser_value``, which
``$modern_browser`` and ``$ancient_browser`` read (``fastgate.browsers``)."""

from __future__ import annotations

from fastgate.config.context import HSL, Context, Level, Spec
from fastgate.config.directives.args import setting
from fastgate.config.parser import Directive

# nginx's table: the browsers modern_browser names, in the order they are tried
BROWSERS = ("opera", "msie", "gecko", "safari", "konqueror")


def _version(d: Directive, text: str) -> int:
    """nginx's number for a version: each dotted part two decimal places lower, from
    the millions ("1.8.0.5" is 1080005)."""
    version, part, scale = 0, 0, 1000000
    for c in text:
        if "0" <= c <= "9":
            part = part * 10 + int(c)
        elif c == ".":
            version += part * scale
            part, scale = 0, scale // 100
        else:
            raise d.error(f'invalid browser version "{text}"')
    return version + part * scale


def modern_browser(ld: Context, lvl: Level, d: Directive) -> None:
    """The list and ``unlisted`` are one setting: a level that gives either does not
    inherit the other (nginx's merge)."""
    browsers = lvl.fields.setdefault("modern_browsers", ())
    lvl.fields.setdefault("modern_unlisted", False)
    lvl.origins.setdefault(d.name, d)
    if len(d.args) == 1:
        if d.args[0] != "unlisted":
            raise d.error(f'invalid parameter "{d.args[0]}"')
        lvl.fields["modern_unlisted"] = True
        return
    name = d.args[0].lower()
    if name not in BROWSERS:
        raise d.error(f'unknown browser name "{d.args[0]}"')
    lvl.fields["modern_browsers"] = (*browsers, (BROWSERS.index(name),
                                                 _version(d, d.args[1])))


def ancient_browser(ld: Context, lvl: Level, d: Directive) -> None:
    strings = lvl.fields.setdefault("ancient_browsers", ())
    lvl.fields.setdefault("ancient_netscape4", False)
    lvl.origins.setdefault(d.name, d)
    for arg in d.args:
        if arg == "netscape4":
            lvl.fields["ancient_netscape4"] = True
        else:
            strings = (*strings, arg)
    lvl.fields["ancient_browsers"] = strings


SPECS = [
    Spec("modern_browser", HSL, 1, 2, modern_browser),
    Spec("ancient_browser", HSL, 1, None, ancient_browser),
    Spec("modern_browser_value", HSL, 1, 1,
         setting("modern_browser_value", lambda ld, d: d.args[0])),
    Spec("ancient_browser_value", HSL, 1, 1,
         setting("ancient_browser_value", lambda ld, d: d.args[0])),
]
