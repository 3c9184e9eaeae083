"""The referer module: ``valid_referers none | blocked | server_names | NAME[/URI] |
~REGEX ...``, which ``$invalid_referer`` reads."""

from __future__ import annotations

from fastgate.config.context import HSL, Context, Level, Spec
from fastgate.config.errors import ConfigError
from fastgate.config.hostnames import is_wildcard_ok
from fastgate.config.parser import Directive
from fastgate.config.referers import Referers
from fastgate.config.regex import compile_regex


def valid_referers(ld: Context, lvl: Level, d: Directive) -> None:
    """Every occurrence at a level adds to that level's list (an inner level with any
    replaces the outer one whole)."""
    given: Referers | None = lvl.fields.get("valid_referers")
    names = list(given.names) if given is not None else []
    regexes = list(given.regexes) if given is not None else []
    flags = {"none": False, "blocked": False, "server_names": False}
    if given is not None:
        flags = {"none": given.none, "blocked": given.blocked,
                 "server_names": given.server_names}
    for arg in d.args:
        if not arg:
            raise d.error(f'invalid referer "{arg}"')
        if arg in flags:
            flags[arg] = True
        elif arg.startswith("~"):
            if len(arg) == 1:
                raise d.error(f'empty regex in "{arg}"')
            try:
                regexes.append(compile_regex(arg[1:], True))
            except ConfigError as e:
                raise d.error(e.message) from None
        else:
            host, slash, uri = arg.partition("/")
            if not is_wildcard_ok(host):
                raise d.error(f'invalid hostname or wildcard "{host}"')
            names.append((host.lower(), slash + uri if uri else ""))
    if (flags["none"] or flags["blocked"]) and not names and not flags["server_names"]:
        raise d.error('the "none" or "blocked" referers are specified in the '
                      '"valid_referers" directive without any valid referer')
    lvl.origins.setdefault(d.name, d)
    lvl.fields["valid_referers"] = Referers(tuple(names), tuple(regexes), **flags)


SPECS = [
    Spec("valid_referers", HSL, 1, None, valid_referers),
]
