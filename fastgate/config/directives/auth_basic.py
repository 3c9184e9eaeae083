"""The auth_basic module: ``auth_basic REALM|off`` and ``auth_basic_user_file FILE``
(an htpasswd file, ``fastgate.config.htpasswd``). The file is read at load so that ``-t``
says which lines can match no password, and warns of one that cannot be read (nginx
reads it only for the requests it checks: a 500 until it can be)."""

from __future__ import annotations

import os

from fastgate.config.context import HSL, LMT, Context, Level, Spec
from fastgate.config.directives.args import setting
from fastgate.config.htpasswd import parse, read
from fastgate.config.model import UserFile
from fastgate.config.parser import Directive
from fastgate.variables import Template


def auth_basic(ld: Context, d: Directive) -> Template | None:
    if d.args[0] == "off":
        return None
    return ld.compile(d.args[0], d)


def auth_basic_user_file(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    template = ld.compile(d.args[0], d)
    if not template.is_literal:
        # read for each request, as nginx: a file that cannot be read is then a 500
        lvl.fields["auth_basic_user_file"] = UserFile(template,
                                                      os.path.dirname(ld.path_of("x")))
        return
    path = ld.path_of(d.args[0])
    lvl.fields["auth_basic_user_file"] = path
    try:
        text = read(path)
    except OSError as e:
        # nginx reads it for each request: -t passes (an "auth_basic off" level may never
        # read it, a deployment may write it after), and a check answers 500 until then
        ld.warn(f'open() "{path}" failed ({e.errno}: {e.strerror}): a request it checks '
                "is answered 500 until it can be read", d)
        return
    _, unknown = parse(text)
    for number, user in unknown:
        ld.warn(f'line {number} of "{path}" (user "{user}") has no password hash fastgate '
                "knows: that user cannot log in", d)


SPECS = [
    Spec("auth_basic", HSL | {LMT}, 1, 1, setting("auth_basic", auth_basic)),
    Spec("auth_basic_user_file", HSL | {LMT}, 1, 1, auth_basic_user_file),
]
