"""The userid module: ``userid on|v1|log|off``, ``userid_name``, ``userid_domain``,
``userid_path``, ``userid_expires``, ``userid_flags``, ``userid_p3p``, ``userid_service``,
``userid_mark`` (``fastgate.userid`` sets the cookie and gives ``$uid_got``/``$uid_set``)."""

from __future__ import annotations

from fastgate.config.context import HSL, Context, Spec
from fastgate.config.directives.args import one_of, setting
from fastgate.config.parser import Directive
from fastgate.config.values import parse_number, time_value

MAX_EXPIRES = 2145916555  # nginx's "max": the cookie's fixed date in 2037
FLAGS = ("secure", "httponly", "samesite=strict", "samesite=lax", "samesite=none")


def _expires(ld: Context, d: Directive) -> int:
    if d.args[0] == "max":
        return MAX_EXPIRES
    if d.args[0] == "off":
        return 0
    seconds = time_value(d.args[0], seconds_only=True)
    if seconds is None:
        raise d.error(f'"{d.name}" directive invalid value')
    return int(seconds)


def _flags(ld: Context, d: Directive) -> tuple[str, ...]:
    """nginx's bitmask of cookie flags: caseless, "off" among them a flag that adds
    nothing (``userid_flags off secure`` is ``secure``); the cookie says them in
    nginx's order, each once, whatever the order written."""
    words = {a.lower() for a in d.args}
    for a in d.args:
        if a.lower() != "off" and a.lower() not in FLAGS:
            raise d.error(f'invalid value "{a}"')
    return tuple(f for f in FLAGS if f in words)


def _mark(ld: Context, d: Directive) -> str:
    value = d.args[0]
    if value == "off":
        return ""
    if len(value) != 1 or not (value.isascii() and (value.isalnum() or value == "=")):
        raise d.error(f'"{d.name}" directive value must be "off" or a single letter, digit '
                      'or "="')
    return value


SPECS = [
    Spec("userid", HSL, 1, 1, setting("userid", one_of("off", "log", "v1", "on"))),
    Spec("userid_name", HSL, 1, 1, setting("userid_name", lambda ld, d: d.args[0])),
    Spec("userid_domain", HSL, 1, 1, setting("userid_domain", lambda ld, d: (
        "" if d.args[0] == "none" else f"; domain={d.args[0]}"))),
    Spec("userid_path", HSL, 1, 1, setting("userid_path",
                                           lambda ld, d: f"; path={d.args[0]}")),
    Spec("userid_expires", HSL, 1, 1, setting("userid_expires", _expires)),
    Spec("userid_flags", HSL, 1, 3, setting("userid_flags", _flags)),
    Spec("userid_p3p", HSL, 1, 1, setting("userid_p3p", lambda ld, d: (
        "" if d.args[0] == "none" else d.args[0]))),
    Spec("userid_service", HSL, 1, 1, setting("userid_service",
                                              lambda ld, d: parse_number(d, d.args[0]))),
    Spec("userid_mark", HSL, 1, 1, setting("userid_mark", _mark)),
]
