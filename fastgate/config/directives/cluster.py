"""fastgate's own cluster module: ``fastgate_cluster`` names the store (Redis) that the
gateways of a fleet share, and ``auth_jwt_revocation`` checks tokens against the
revocation list kept there."""

from __future__ import annotations

import ssl
from urllib.parse import SplitResult, urlsplit

from fastgate.config.context import HSL, HTTP, Context, Level, Spec
from fastgate.config.directives.args import flag_arg
from fastgate.config.model import Cluster
from fastgate.config.parser import Directive
from fastgate.config.values import parse_time

SCHEMES = ("redis", "rediss", "unix")
DEFAULT_TIMEOUT = 1.0  # seconds: connecting to the store and each command


def _checked(d: Directive, text: str) -> SplitResult:
    """The store's URL, each part checked here so that a typo fails ``-t`` with the
    directive's FILE:LINE rather than the first connection."""
    try:
        url = urlsplit(text)
        port = url.port
    except ValueError as e:
        raise d.error(f'invalid cluster URL "{text}": {e}') from None
    if url.scheme not in SCHEMES:
        raise d.error(f'invalid cluster URL "{text}": the scheme must be redis://, '
                      "rediss:// (TLS) or unix://")
    if url.scheme == "unix":
        if not url.path:
            raise d.error(f'invalid cluster URL "{text}": no socket path')
        return url
    if not url.hostname:
        raise d.error(f'invalid cluster URL "{text}": no host')
    if port == 0:
        raise d.error(f'invalid cluster URL "{text}": invalid port')
    db = url.path.lstrip("/")
    if db and not (db.isascii() and db.isdigit()):
        raise d.error(f'invalid cluster URL "{text}": the database must be a number')
    if url.query or url.fragment:
        raise d.error(f'invalid cluster URL "{text}": give options as parameters '
                      "(timeout=TIME), not in the URL")
    return url


def _ca(ld: Context, d: Directive, value: str) -> str:
    """``ca=FILE``: PEM certificates that load as CAs (else FILE:LINE, as -t says of
    ssl_trusted_certificate)."""
    path = ld.path_of(value)
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as e:  # (an OSError too: first)
        raise d.error(f'cannot load CA certificates "{path}": {e.reason or e}') from None
    except OSError as e:
        raise d.error(f'cannot open "{path}" ({e.errno}: {e.strerror})') from None
    return path


def set_cluster(ld: Context, lvl: Level, d: Directive) -> None:
    """``fastgate_cluster URL [timeout=TIME] [ca=FILE]``."""
    lvl.once(d)
    url = _checked(d, d.args[0])
    timeout = DEFAULT_TIMEOUT
    ca = None
    for arg in d.args[1:]:
        if arg.startswith("ca=") and len(arg) > 3:
            if url.scheme != "rediss":
                raise d.error(f'"{arg}" goes with rediss:// (TLS)')
            ca = _ca(ld, d, arg[3:])
        elif arg.startswith("timeout="):
            timeout = parse_time(d, arg[8:])
            if timeout <= 0:
                raise d.error(f'invalid parameter "{arg}"')
        elif "://" in arg:
            raise d.error(f'"{d.name}" takes one store address: several addresses, '
                          "Sentinel and Redis Cluster are not supported")
        else:
            raise d.error(f'invalid parameter "{arg}"')
    shown = url._replace(netloc=url.netloc.rpartition("@")[2]).geturl()
    lvl.local["fastgate_cluster"] = Cluster(d.args[0], shown, timeout, ca)


def set_revocation(ld: Context, lvl: Level, d: Directive) -> None:
    """``auth_jwt_revocation on|off``: ``on`` needs ``fastgate_cluster``."""
    lvl.once(d)
    on = flag_arg(ld, d)
    lvl.fields["auth_jwt_revocation"] = on
    if on:
        ld.cluster_refs.append(d)


SPECS = [
    Spec("fastgate_cluster", frozenset({HTTP}), 1, None, set_cluster),
    Spec("auth_jwt_revocation", HSL, 1, 1, set_revocation),
]
