"""The GeoIP module (``ngx_http_geoip_module``): ``geoip_country``, ``geoip_org`` and
``geoip_city FILE [utf8]`` open MaxMind's legacy databases at load (``fastgate.geoip``);
``geoip_proxy`` and ``geoip_proxy_recursive`` name the proxies whose X-Forwarded-For is
believed, as geo's ``proxy``. In the http block only, as nginx's."""

from __future__ import annotations

from collections.abc import Callable

from fastgate.config.addresses import Network
from fastgate.config.context import HTTP, Context, Spec
from fastgate.config.directives.args import appending, flag_arg, setting
from fastgate.config.directives.geo import cidr
from fastgate.config.parser import Directive
from fastgate.geoip import Database, GeoipError

_HTTP = frozenset({HTTP})


def database(kind: str) -> Callable[[Context, Directive], Database]:
    def parse(ld: Context, d: Directive) -> Database:
        if len(d.args) == 2 and d.args[1] != "utf8":
            raise d.error(f'invalid parameter "{d.args[1]}"')
        try:  # (the path as given, as nginx's: not under the prefix)
            return Database(d.args[0], kind, len(d.args) == 2)
        except GeoipError as e:
            raise d.error(str(e)) from None

    return parse


def geoip_proxy(ld: Context, d: Directive) -> Network:
    return cidr(ld, d, d.args[0])


SPECS = [
    Spec("geoip_country", _HTTP, 1, 2, setting("geoip_country", database("country"))),
    Spec("geoip_org", _HTTP, 1, 2, setting("geoip_org", database("org"))),
    Spec("geoip_city", _HTTP, 1, 2, setting("geoip_city", database("city"))),
    Spec("geoip_proxy", _HTTP, 1, 1, appending("geoip_proxy", geoip_proxy)),
    Spec("geoip_proxy_recursive", _HTTP, 1, 1, setting("geoip_proxy_recursive", flag_arg)),
]

__all__ = ["SPECS"]
