"""The uwsgi module (``ngx_http_uwsgi_module``): the family's directives
(``directives.cgi``) under ``uwsgi_``, ``uwsgi_pass``'s ``uwsgi://`` prefix, and its
own ``uwsgi_modifier1``, ``uwsgi_modifier2``, ``uwsgi_string``. uwsgi over TLS
(``suwsgi://``) is refused; its ``uwsgi_ssl_*`` settings are then accepted with a
``[warn]``, as they have nothing to act on."""

from __future__ import annotations

from fastgate.config.context import HSL, Context, Level, Spec
from fastgate.config.directives.args import ignored, setting
from fastgate.config.directives.cgi import common_specs, pass_handler
from fastgate.config.parser import Directive
from fastgate.config.values import parse_number

NO_TLS = "uwsgi over TLS (suwsgi://) is not in fastgate, so these settings act on nothing"
_PASS = pass_handler("uwsgi", ("uwsgi",))


def uwsgi_pass(ld: Context, lvl: Level, d: Directive) -> None:
    if d.args[0].startswith("suwsgi://"):
        raise d.error('"uwsgi_pass suwsgi://" is not in fastgate: it speaks uwsgi to '
                      "applications without TLS")
    _PASS(ld, lvl, d)


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
    *(Spec(f"uwsgi_ssl_{name}", HSL, 1, None, ignored(NO_TLS)) for name in (
        "session_reuse", "protocols", "ciphers", "name", "server_name", "verify",
        "verify_depth", "trusted_certificate", "crl", "certificate", "certificate_key",
        "password_file", "conf_command")),
]

__all__ = ["SPECS"]
