"""The FastCGI module (``ngx_http_fastcgi_module``): the family's directives
(``directives.cgi``) under ``fastcgi_``, and its own: ``fastcgi_index``,
``fastcgi_split_path_info``, ``fastcgi_catch_stderr``, ``fastcgi_keep_conn``."""

from __future__ import annotations

from fastgate.config.context import HSL, Context, Level, Spec
from fastgate.config.directives.args import appending, flag_arg, ignored, setting
from fastgate.config.directives.cgi import common_specs
from fastgate.config.errors import ConfigError
from fastgate.config.parser import Directive
from fastgate.config.regex import compile_regex


def split_path_info(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    try:
        pattern = compile_regex(d.args[0], False)
    except ConfigError as e:
        raise d.error(e.message) from None
    if pattern.groups != 2:
        # nginx: the two captures are the script name and the path info
        raise d.error(f'pattern "{d.args[0]}" must have 2 captures')
    lvl.fields["fastcgi_split_path_info"] = pattern


def keep_conn(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    flag_arg(ld, d)
    if d.args[0] == "on":
        ld.warn_once('"fastcgi_keep_conn" directive is ignored', "each FastCGI request "
                     "has a connection of its own, closed by the application", d)


SPECS = [
    *common_specs("fastcgi"),
    Spec("fastcgi_index", HSL, 1, 1, setting("fastcgi_index", lambda ld, d: d.args[0])),
    Spec("fastcgi_split_path_info", HSL, 1, 1, split_path_info),
    Spec("fastcgi_catch_stderr", HSL, 1, 1,
         appending("fastcgi_catch_stderr", lambda ld, d: d.args[0])),
    Spec("fastcgi_keep_conn", HSL, 1, 1, keep_conn),
    Spec("fastcgi_send_lowat", HSL, 1, 1, ignored("fastgate writes what it has at once")),
]

__all__ = ["SPECS"]
