"""The uwsgi module (``ngx_http_uwsgi_module``): the family's directives
(``directives.cgi``) under ``uwsgi_``, ``uwsgi_pass``'s ``uwsgi://`` prefix, and its
own ``uwsgi_modifier1``, ``uwsgi_modifier2``, ``uwsgi_string``; uwsgi over TLS
(``suwsgi://``) with its ``uwsgi_ssl_*`` settings, as proxy_pass's https:// with
``proxy_ssl_*``."""

from __future__ import annotations

from fastgate.config.context import HSL, Context, Spec
from fastgate.config.directives.args import setting
from fastgate.config.directives.cgi import common_specs, pass_handler
from fastgate.config.directives.proxy import tls_specs
from fastgate.config.parser import Directive
from fastgate.config.values import parse_number

uwsgi_pass = pass_handler("uwsgi", ("uwsgi", "suwsgi"))


def modifier(ld: Context, d: Directive) -> int:
    value = parse_number(d, d.args[0])
    if value > 255:
        raise d.error(f'value must be equal or less than 255 in "{d.name}" directive')
    return value


SPECS = [
    *common_specs("uwsgi", uwsgi_pass),
    Spec("uwsgi_modifier1", HSL, 1, 1, setting("uwsgi_modifier1", modifier)),
    Spec("uwsgi_modifier2", HSL, 1, 1, setting("uwsgi_modifier2", modifier)),
    Spec("uwsgi_string", HSL, 1, 1, setting("uwsgi_string", lambda ld, d: d.args[0])),
    *tls_specs("uwsgi"),
]

__all__ = ["SPECS"]
