"""The directive table: one entry per directive — where it may appear, how many
arguments it takes, and the handler that turns its arguments into typed values on the
level being built (nginx's ``ngx_command_t``). One module per nginx module holds its
directives' entries (``SPECS``) and handlers; ``args`` what they share.

Handlers write into a ``Level`` and see the loader only as a ``Context``
(``fastgate.config.context``); inheritance between levels happens later, in one place
(``fastgate.config.merge``).
"""

from __future__ import annotations

from fastgate.config.context import Spec
from fastgate.config.directives import (
    access,
    addition,
    auth_basic,
    auth_jwt,
    auth_request,
    browser,
    charset,
    cluster,
    core,
    dav,
    degradation,
    fastcgi,
    geo,
    geoip,
    grpc,
    gzip,
    headers,
    ignored,
    image_filter,
    limits,
    log,
    mail,
    maps,
    memcached,
    mirror,
    proxy,
    realip,
    referer,
    resolver,
    rewrite,
    scgi,
    secure_link,
    slice,
    ssi,
    static,
    stream,
    sub_filter,
    tls,
    upstream,
    userid,
    uwsgi,
    xslt,
)
from fastgate.config.directives.ignored import PREFIXED, UPSTREAM_SPECS
from fastgate.config.directives.upstream import UPSTREAM_TABLE

MODULES = (core, log, maps, geo, geoip, mirror, rewrite, access, auth_basic, auth_jwt,
           auth_request, proxy, fastcgi, uwsgi, scgi, memcached, grpc, limits, headers, realip,
           referer, resolver, secure_link, static, dav, degradation, sub_filter, gzip, addition,
           ssi, slice, charset, browser, userid, xslt, image_filter, tls, upstream, cluster,
           stream, mail, ignored)

TABLE: dict[str, Spec] = {}
for _module in MODULES:
    for _spec in _module.SPECS:
        assert _spec.name not in TABLE, f"{_spec.name} is in two modules' tables"
        TABLE[_spec.name] = _spec


for _spec in UPSTREAM_SPECS:
    UPSTREAM_TABLE[_spec.name] = _spec


def lookup(name: str, table: dict[str, Spec]) -> Spec | None:
    spec = table.get(name)
    if spec is None and table is TABLE:
        for prefix, family in PREFIXED.items():
            if name.startswith(prefix):
                return family
    return spec


__all__ = ["TABLE", "UPSTREAM_TABLE", "lookup"]
