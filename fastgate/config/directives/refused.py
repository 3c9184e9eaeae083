"""Directives of nginx's own modules that fastgate refuses, each with the reason, so a
configuration that uses one fails at load with what is missing and why — not a bare
"unknown directive", and never a silent warning where ignoring it would change what a
client gets or weaken a security setting.

The rest of nginx's directives are either taken (the directive table) or accepted and
ignored with a ``[warn]`` (``ignored``); tests/config/test_nginx_directives.py checks
that every directive of nginx 1.22's core, event and HTTP modules is one of the three.
"""

from __future__ import annotations

# by the start of the name: (nginx's module, why)
PREFIXES: tuple[tuple[str, str, str], ...] = (
    ("perl", "ngx_http_perl_module", "embedded scripting is not in fastgate: extend it in "
     "Python"),
)

# by name: (nginx's module, why)
NAMES: dict[str, tuple[str, str]] = {}


def refused_message(name: str) -> str | None:
    """Why fastgate refuses one of nginx's directives, or None when it is not one."""
    found = NAMES.get(name)
    if found is None:
        found = next(((module, why) for prefix, module, why in PREFIXES
                      if name.startswith(prefix)), None)
    if found is None:
        return None
    module, why = found
    return f'unknown directive "{name}" (nginx\'s {module}): {why}'


__all__ = ["refused_message"]
