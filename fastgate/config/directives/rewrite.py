"""The rewrite module (``ngx_http_rewrite_module``): ``return``, ``rewrite``, ``set``,
``break`` and ``if``. Each appends to its level's program (``local["rewrites"]``), run
in order in the server or location rewrite phase (``fastgate.proxy.rewrite``)."""

from __future__ import annotations

from fastgate.config.context import (
    HTTP,
    LIF,
    LOCATION,
    REWRITE_CONTEXTS,
    SERVER,
    SIF,
    Context,
    Level,
    PendingIf,
    Spec,
)
from fastgate.config.directives.args import flag_arg, ignored, setting
from fastgate.config.errors import ConfigError
from fastgate.config.model import Break, Condition, Return, Rewrite, SetVar
from fastgate.config.parser import Directive
from fastgate.config.regex import compile_regex

REDIRECT_PREFIXES = ("http://", "https://", "$scheme")
FLAGS = {"last": 0, "break": 0, "redirect": 302, "permanent": 301}


def _program(lvl: Level) -> list[object]:
    ops: list[object] = lvl.local.setdefault("rewrites", [])
    return ops


def set_return(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.origins.setdefault(d.name, d)  # the first: where -t's warnings point
    first = d.args[0]
    if len(d.args) == 1 and not (first.isascii() and first.isdigit()):
        if not first.startswith(REDIRECT_PREFIXES):
            raise d.error(f'invalid return code "{first}"')
        _program(lvl).append(Return(302, ld.compile(first, d)))
        return
    if not (first.isascii() and first.isdigit()) or int(first) > 999:
        raise d.error(f'invalid return code "{first}"')
    # an empty text is none, as nginx's (its answer is then the code's: an error page,
    # or 444's close); one of variables that renders empty is a text
    text = ld.compile(d.args[1], d) if len(d.args) > 1 and d.args[1] else None
    _program(lvl).append(Return(int(first), text))


def rewrite(ld: Context, lvl: Level, d: Directive) -> None:
    pattern, replacement = d.args[0], d.args[1]
    if not replacement:
        raise d.error("empty replacement")  # (as nginx; "?" alone is a URI made empty)
    try:
        regex = compile_regex(pattern, False)
    except ConfigError as e:
        raise d.error(e.message) from None
    flag = d.args[2] if len(d.args) > 2 else ""
    if flag and flag not in FLAGS:
        raise d.error(f'invalid parameter "{flag}"')
    status = FLAGS.get(flag, 0)
    if not status and replacement.startswith(REDIRECT_PREFIXES):
        status = 302  # an absolute replacement is a redirect, as in nginx
    # (ngx_http_rewrite: a last "?" is cut off before the rest is compiled; a "?"
    # cannot be part of a variable's name, so the first left is one written as such)
    keep_args = not replacement.endswith("?")
    if not keep_args:
        replacement = replacement[:-1]
    question = "?" in replacement
    args = None
    if question and not status:
        replacement, _, rest = replacement.partition("?")
        args = ld.compile(rest, d)
    _program(lvl).append(Rewrite(regex, ld.compile(replacement, d), flag, status, args,
                                 keep_args, question, pattern))


def set_var(ld: Context, lvl: Level, d: Directive) -> None:
    name = d.args[0]
    if not name.startswith("$") or len(name) < 2:
        raise d.error(f'invalid variable name "{name}"')
    _program(lvl).append(SetVar(name[1:].lower(), ld.compile(d.args[1], d)))


def break_(ld: Context, lvl: Level, d: Directive) -> None:
    _program(lvl).append(Break())


def if_block(ld: Context, lvl: Level, d: Directive) -> None:
    condition = parse_condition(ld, d)
    child = Level(LIF if lvl.ctx == LOCATION else SIF, d, parent=lvl)
    ld.walk(d.block or (), child)
    _program(lvl).append(PendingIf(condition, child))


def parse_condition(ld: Context, d: Directive) -> Condition:
    """nginx's ``ngx_http_rewrite_if_condition``: ``(`` and ``)`` may stand alone or
    stick to the first and last words."""
    args = list(d.args)
    if not args or not args[0].startswith("("):
        raise d.error(f'invalid condition "{args[0] if args else ""}"')
    args[0] = args[0][1:]
    if not args[-1].endswith(")"):
        raise d.error(f'invalid condition "{args[-1]}"')
    args[-1] = args[-1][:-1]
    quoted = d.quoted or (False,) * len(d.args)
    if len(args) > 1 and args[0] == "" and not quoted[0]:
        args.pop(0)
    if len(args) > 1 and args[-1] == "" and not quoted[-1]:
        args.pop()
    source = " ".join(args)
    first = args[0] if args else ""
    if len(first) > 1 and first.startswith("$"):
        left = ld.compile(first, d)
        if len(args) == 1:
            return Condition("", left, source=source)
        if len(args) != 3:
            raise d.error(f'invalid condition "{source}"')
        op, right = args[1], args[2]
        if op in ("=", "!="):
            return Condition(op, left, ld.compile(right, d), source=source)
        if op in ("~", "~*", "!~", "!~*"):
            try:
                regex = compile_regex(right, op.endswith("*"))
            except ConfigError as e:
                raise d.error(e.message) from None
            return Condition(op, left, regex=regex, source=source, pattern=right)
        raise d.error(f'unexpected "{op}" in condition')
    if first in ("-f", "-d", "-e", "-x", "!-f", "!-d", "!-e", "!-x"):
        if len(args) != 2:
            raise d.error(f'invalid condition "{source}"')
        return Condition(first, ld.compile(args[1], d), source=source)
    raise d.error(f'invalid condition "{source}"')


SPECS = [
    Spec("return", REWRITE_CONTEXTS, 1, 2, set_return),
    Spec("rewrite", REWRITE_CONTEXTS, 2, 3, rewrite),
    Spec("set", REWRITE_CONTEXTS, 2, 2, set_var),
    Spec("break", REWRITE_CONTEXTS, 0, 0, break_),
    Spec("if", frozenset({SERVER, LOCATION}), 1, None, if_block, block=True),
    Spec("rewrite_log", REWRITE_CONTEXTS | {HTTP}, 1, 1, setting("rewrite_log", flag_arg)),
    Spec("uninitialized_variable_warn", REWRITE_CONTEXTS | {HTTP}, 1, 1, ignored(
        'a variable no "set" has given a value is empty, without a warning')),
]
