"""The JWT module: ``auth_jwt`` and its keys, algorithms, requirements and caches."""

from __future__ import annotations

import re
from typing import Any

from fastgate.config.context import (
    HSL,
    HTTP,
    LMT,
    Context,
    Level,
    Spec,
)
from fastgate.config.directives.args import flag_arg, setting, strings, time_arg
from fastgate.config.model import (
    Require,
)
from fastgate.config.parser import Directive
from fastgate.config.values import (
    parse_number,
)
from fastgate.errors import KeyLoadError
from fastgate.jwt import ALGORITHMS, HMACKey, key_from_value, keys_from_file


def auth_jwt(ld: Context, lvl: Level, d: Directive) -> None:
    """Both dialects. The seed module's: ``on``, ``off``, or one variable that holds the
    token. NGINX Plus's: ``auth_jwt REALM [token=$variable]`` — anything else (a realm,
    which may hold variables, or a second argument ``token=``); the token is then
    ``Authorization: Bearer``'s unless ``token=`` names a variable."""
    lvl.once(d)
    value = d.args[0]
    plus = len(d.args) == 2 or not (value in ("on", "off") or _ONE_VARIABLE.fullmatch(value))
    if plus:
        _plus_form(ld, lvl, d)
        return
    lvl.fields["auth_jwt_realm"] = None
    if value in ("on", "off"):
        lvl.fields["auth_jwt"] = value
        lvl.fields["auth_jwt_source"] = None
        lvl.fields["auth_jwt_source_var"] = None
        return
    _token_variable(ld, lvl, d, value)


def _token_variable(ld: Context, lvl: Level, d: Directive, value: str) -> None:
    lvl.fields["auth_jwt"] = "var"
    lvl.fields["auth_jwt_source"] = ld.compile(value, d)
    m = _SOURCE_VAR.fullmatch(value)
    lvl.fields["auth_jwt_source_var"] = (
        (m.group(1), m.group(2).lower()) if m is not None else None)


def _plus_form(ld: Context, lvl: Level, d: Directive) -> None:
    realm = d.args[0]
    if len(d.args) == 2:
        token = d.args[1]
        if not token.startswith("token="):
            raise d.error(f'invalid parameter "{token}"')
        if realm == "off":
            raise d.error('"auth_jwt off" takes no "token=" parameter')
        if not _ONE_VARIABLE.fullmatch(token[6:]):
            raise d.error(f'invalid token variable "{token[6:]}": "token=" names one '
                          "variable, as $cookie_NAME or $arg_NAME")
        _token_variable(ld, lvl, d, token[6:])
    else:
        lvl.fields["auth_jwt"] = "on"
        lvl.fields["auth_jwt_source"] = None
        lvl.fields["auth_jwt_source_var"] = None
    lvl.fields["auth_jwt_realm"] = ld.compile(realm, d)


_SOURCE_VAR = re.compile(r"\$\{?(http|cookie|arg)_([A-Za-z0-9_]+)\}?")
_ONE_VARIABLE = re.compile(r"\$\{?[A-Za-z0-9_]+\}?")


# the fields that together make a level's key set
KEY_FIELDS = ("auth_jwt_key", "auth_jwt_key_file", "auth_jwt_key_request")


def _own_keys(lvl: Level, name: str, value: Any) -> None:
    """A level that names keys replaces the outer levels' key set as a whole (nginx's
    merge: an inner directive wins): a location with its own JWKS must not also accept
    tokens signed with a server-level secret. Keys named at the same level add up."""
    for other in KEY_FIELDS:
        lvl.fields.setdefault(other, None if other == "auth_jwt_key_request" else ())
    lvl.fields[name] = value


def _file_keys(ld: Context, d: Directive, path: str) -> tuple[Any, ...]:
    try:
        keys = keys_from_file(ld.path_of(path))
    except KeyLoadError as e:
        raise d.error(str(e)) from None
    if len(keys) == 1 and isinstance(keys[0], HMACKey) and len(keys[0].secret) < 32:
        ld.warn(f'JWT: key file "{path}" is read as an HMAC secret of '
                f"{len(keys[0].secret)} bytes, shorter than HS256's 32-byte hash output", d)
    return keys


def auth_jwt_key(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    value = d.args[0]
    encoding = d.args[1] if len(d.args) > 1 else "utf8"
    if encoding == "file":
        _own_keys(lvl, "auth_jwt_key", _file_keys(ld, d, value))
        return
    if encoding not in ("utf8", "hex", "base64"):
        raise d.error(f'JWT: invalid key encoding "{encoding}" (utf8, hex, base64 or file)')
    if not value:
        raise d.error("JWT: Invalid key")
    if encoding == "hex" and len(value) % 2:
        raise d.error("JWT: Invalid hex string")
    try:
        key = key_from_value(value, encoding)
    except KeyLoadError:
        what = "hex" if encoding == "hex" else "base64"
        raise d.error(f"JWT: Failed to turn {what} key into binary") from None
    _own_keys(lvl, "auth_jwt_key", (key,))


def auth_jwt_key_file(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    _own_keys(lvl, "auth_jwt_key_file", _file_keys(ld, d, d.args[0]))


def auth_jwt_key_request(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    _own_keys(lvl, "auth_jwt_key_request", key_request_url(ld, d))


def auth_jwt_alg(ld: Context, d: Directive) -> str:
    value = d.args[0]
    if value != "any" and value not in ALGORITHMS:
        raise d.error(f'invalid value "{value}"')
    return value


def auth_jwt_require(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    status = 401
    values = []
    n = len(d.args)
    for i, arg in enumerate(d.args):
        if arg.startswith("error="):
            if i != n - 1:
                raise d.error(f"{arg} must be the last element of jwt_auth_require directive")
            if i == 0:
                raise d.error(f"{arg} cannot be the single element of jwt_auth_require directive")
            code = arg[6:]
            if not (code.isascii() and code.isdigit()):
                raise d.error(f"failed to parse error code {code}")
            if int(code) not in (401, 403):
                raise d.error(f"invalid error code {int(code)}")
            status = int(code)
            continue
        if not arg.startswith("$"):
            raise d.error(f'invalid variable name "{arg}"')
        values.append(ld.compile(arg, d))
    lvl.fields["auth_jwt_require"] = Require(tuple(values), status)


def key_request_url(ld: Context, d: Directive) -> str:
    """An absolute http(s) URL fetched by the worker, or (NGINX Plus's form) a local URI
    whose location — usually ``internal``, proxying to the identity provider — is asked
    by subrequest, so that its proxy_* settings apply."""
    url = d.args[0]
    if url.startswith("/"):
        if "$" in url:
            raise d.error('variables in a local "auth_jwt_key_request" URI are not supported')
        return url
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or rest.startswith("/"):
        raise d.error(f'invalid URL "{url}" in "auth_jwt_key_request" directive '
                      "(http:// or https:// with a host, or a local URI)")
    return url


def claim_set(ld: Context, lvl: Level, d: Directive) -> None:
    # the variable itself is defined before the walk (Loader.declare_maps), so it can be
    # used anywhere in http; here only the form is checked
    if not d.args[0].startswith("$") or len(d.args[0]) < 2:
        raise d.error(f'invalid variable name "{d.args[0]}"')


def auth_jwt_type(ld: Context, lvl: Level, d: Directive) -> None:
    """NGINX Plus's ``auth_jwt_type signed|encrypted|nested``: signed tokens (JWS) are
    what fastgate checks; encrypted ones (JWE) it cannot read."""
    lvl.once(d)
    if d.args[0] in ("encrypted", "nested"):
        raise d.error(f'"auth_jwt_type {d.args[0]}" is not supported: fastgate checks signed '
                      "tokens (JWS) only; encrypted ones (JWE) it cannot decrypt")
    if d.args[0] != "signed":
        raise d.error(f'invalid value "{d.args[0]}"')


def key_cache(ld: Context, d: Directive) -> float | None:
    """NGINX Plus's ``auth_jwt_key_cache TIME``: how long fetched keys are kept, which
    is how often fastgate fetches them again (0: as the response's Cache-Control says,
    as without it)."""
    seconds = time_arg(ld, d)
    return seconds if seconds > 0 else None


def auth_jwt_cache(ld: Context, d: Directive) -> int:
    return 0 if d.args[0] == "off" else parse_number(d, d.args[0])


SPECS = [
    # also in limit_except: a token only for the methods it does not name ("writes")
    Spec("auth_jwt", HSL | {LMT}, 1, 2, auth_jwt),
    Spec("auth_jwt_key", HSL, 1, 2, auth_jwt_key),
    Spec("auth_jwt_key_file", HSL, 1, 1, auth_jwt_key_file),
    Spec("auth_jwt_alg", HSL, 1, 1, setting("auth_jwt_alg", auth_jwt_alg)),
    Spec("auth_jwt_require", HSL, 1, None, auth_jwt_require),
    Spec("auth_jwt_leeway", HSL, 1, 1, setting("auth_jwt_leeway", time_arg)),
    Spec("auth_jwt_options", HSL, 1, 1, setting("auth_jwt_options", flag_arg)),
    Spec("auth_jwt_cache", HSL, 1, 1, setting("auth_jwt_cache", auth_jwt_cache)),
    Spec("auth_jwt_key_request", HSL, 1, 1, auth_jwt_key_request),
    Spec("auth_jwt_key_request_interval", HSL, 1, 1,
         setting("auth_jwt_key_request_interval", time_arg)),
    Spec("auth_jwt_issuer", HSL, 1, None, setting("auth_jwt_issuer", strings)),
    Spec("auth_jwt_audience", HSL, 1, None, setting("auth_jwt_audience", strings)),
    Spec("auth_jwt_claim_set", frozenset({HTTP}), 2, None, claim_set),
    # NGINX Plus's
    Spec("auth_jwt_header_set", frozenset({HTTP}), 2, None, claim_set),
    Spec("auth_jwt_type", HSL, 1, 1, auth_jwt_type),
    Spec("auth_jwt_key_cache", HSL, 1, 1, setting("auth_jwt_key_request_interval",
                                                  key_cache)),
]
