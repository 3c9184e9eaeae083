"""The auth_request module: ``auth_request URI|off`` asks a location (the external
authoriser: oauth2-proxy, an IdP's introspection endpoint) whether the request may go
on; ``auth_request_set $var VALUE`` keeps what its answer said (``$upstream_http_*``)."""

from __future__ import annotations

from fastgate.config.context import HSL, Context, Spec
from fastgate.config.directives.args import appending, setting
from fastgate.config.parser import Directive
from fastgate.variables import Template


def auth_request(ld: Context, d: Directive) -> str | None:
    uri = d.args[0]
    if uri == "off":
        return None
    if "$" in uri:
        raise d.error('variables in "auth_request" are not supported')
    if not uri.startswith(("/", "@")):
        raise d.error(f'invalid URI "{uri}" in "auth_request": it must start with "/" '
                      'or name a location ("@name")')
    return uri


def auth_request_set(ld: Context, d: Directive) -> tuple[str, Template]:
    name = d.args[0]
    if not name.startswith("$") or len(name) < 2:
        raise d.error(f'invalid variable name "{name}"')
    if name[1:].lower() == "args":
        raise d.error('"auth_request_set" cannot set "$args"')
    return (name[1:].lower(), ld.compile(d.args[1], d))


SPECS = [
    Spec("auth_request", HSL, 1, 1, setting("auth_request", auth_request)),
    Spec("auth_request_set", HSL, 2, 2, appending("auth_request_set", auth_request_set)),
]
