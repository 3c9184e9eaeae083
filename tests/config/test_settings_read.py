"""Every field the configuration parses is read by something that acts on it, so that a
directive cannot be accepted and then silently ignored (issue #14: upstream
``keepalive_requests``, ``$request_length`` and ``$proxy_port`` were). A directive that
has no effect must say so with a ``[warn]`` instead of setting a field.

"Read" means an attribute access ``.name`` in the package outside ``fastgate/config``
(the proxy, the worker, the variables) — or, for the few fields consumed while the
configuration is built, a read at the named place that builds from them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from fastgate.config import model, tls
from fastgate.proxy import cgi

PACKAGE = Path(__file__).resolve().parents[2] / "fastgate"

# field -> the file (under fastgate/) that consumes it while building, not per request
BUILT_FROM = {
    ("Settings", "auth_jwt_alg"): "config/merge.py",  # the JwtCheck
    ("Settings", "auth_jwt_key"): "config/merge.py",
    ("Settings", "auth_jwt_key_file"): "config/merge.py",
    ("Settings", "auth_jwt_key_request_interval"): "config/merge.py",
    ("Settings", "auth_jwt_leeway"): "config/merge.py",
    ("Settings", "auth_jwt_cache"): "config/merge.py",
    ("Settings", "auth_jwt_issuer"): "config/merge.py",
    ("Settings", "auth_jwt_audience"): "config/merge.py",
    # whether a proxied response may take the callback path (ProxyPass.as_is); the
    # body filters' sites read filters_output, which has gzip too
    ("Settings", "filters_bodies"): "config/merge.py",
    ("Location", "children"): "config/model.py",  # LocationTree.find
    # the tree's own tables: read by its find
    ("LocationTree", "prefixes"): "config/model.py",
    ("LocationTree", "redirects"): "config/model.py",
    # the TLS context, built at load (to check) and by the gateway (ops/) at start
    ("Settings", "ssl_protocols"): "config/tls.py",
    ("Settings", "ssl_ciphers"): "config/tls.py",
    ("Settings", "ssl_prefer_server_ciphers"): "config/tls.py",
    ("Settings", "ssl_session_tickets"): "config/tls.py",
    ("Settings", "ssl_session_cache"): "config/tls.py",
    ("Settings", "ssl_session_timeout"): "config/tls.py",
    ("Settings", "ssl_conf_command"): "config/tls.py",
    ("Settings", "ssl_verify_depth"): "config/tls.py",  # (OpenSSL verifies to it)
    ("Settings", "ssl_ecdh_curve"): "config/tls.py",
    ("Settings", "ssl_dhparam"): "config/tls.py",
    ("Settings", "ssl_password_file"): "config/tls.py",
    ("Settings", "ssl_on"): "config/merge.py",  # the server's listens
    # client certificates: the context asks for and checks them; servers on one
    # address must agree (merge.py)
    ("Settings", "ssl_client_certificate"): "config/tls.py",
    ("UserFile", "base"): "config/model.py",  # UserFile.resolve, per request
    # allow/deny, matched per request by addresses.allows (HTTP's and the stream block's)
    ("AccessRule", "allow"): "config/addresses.py",
    ("AccessRule", "network"): "config/addresses.py",
    ("Settings", "ssl_trusted_certificate"): "config/tls.py",
    ("Settings", "ssl_crl"): "config/tls.py",
    # the context's OCSP policy, which each connection's check reads (http/ocsp.py)
    ("Settings", "ssl_ocsp"): "config/tls.py",
    ("Settings", "ssl_ocsp_responder"): "config/tls.py",
    ("Settings", "ssl_ocsp_cache"): "config/tls.py",
    # an https:// proxy_pass's TLS settings, and the context built from them
    ("Settings", "proxy_ssl_server_name"): "config/tls.py",
    ("Settings", "proxy_ssl_verify"): "config/merge.py",
    ("Settings", "proxy_ssl_trusted_certificate"): "config/merge.py",
    ("Settings", "proxy_ssl_crl"): "config/tls.py",
    ("Settings", "proxy_ssl_protocols"): "config/tls.py",
    ("Settings", "proxy_ssl_ciphers"): "config/tls.py",
    ("Settings", "proxy_ssl_certificate"): "config/tls.py",
    ("Settings", "proxy_ssl_certificate_key"): "config/tls.py",
    ("Settings", "proxy_ssl_password_file"): "config/tls.py",
    ("UpstreamTls", "trusted_certificate"): "config/tls.py",
    ("UpstreamTls", "crl"): "config/tls.py",
    ("UpstreamTls", "protocols"): "config/tls.py",
    ("UpstreamTls", "ciphers"): "config/tls.py",
    ("UpstreamTls", "certificate"): "config/tls.py",
    ("UpstreamTls", "certificate_key"): "config/tls.py",
    ("UpstreamTls", "password_file"): "config/tls.py",
    ("UpstreamTls", "conf_command"): "config/tls.py",
    ("UpstreamTls", "module"): "config/tls.py",
    ("Config", "maps"): "config/load.py",  # their variables are registered at load
}


def _sources(exclude_config: bool) -> str:
    files = [p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".pyx", ".pxd")]
    if exclude_config:
        files = [p for p in files if "config" not in p.relative_to(PACKAGE).parts]
    return "\n".join(p.read_text() for p in files)


def _fields() -> list[tuple[str, str]]:
    return [(name, f.name) for name, cls in vars(model).items()
            if isinstance(cls, type) and dataclasses.is_dataclass(cls)
            and cls.__module__ == model.__name__
            for f in dataclasses.fields(cls)]


OUTSIDE = _sources(exclude_config=True)


# the CGI-family modules' settings, read under their prefixes by proxy.cgi.Plan.of, and
# the upstream TLS settings of proxy (https://), uwsgi (suwsgi://) and grpc (grpcs://), by
# config.tls.upstream_tls
FAMILY = ({("Settings", f"{kind}_{name}") for kind in cgi.KINDS for name in cgi.SETTINGS}
          | {("Settings", f"{module}_ssl_{name}") for module in ("proxy", "uwsgi", "grpc")
             for name in tls.UPSTREAM_TLS_FIELDS})


def test_the_family_settings_exist() -> None:
    names = {f.name for f in dataclasses.fields(model.Settings)}
    assert {name for _, name in FAMILY} <= names


@pytest.mark.parametrize("owner,name", _fields(), ids=lambda x: str(x))
def test_every_parsed_field_is_read(owner: str, name: str) -> None:
    if re.search(rf"\.{name}\b", OUTSIDE) or (owner, name) in FAMILY:
        return
    where = BUILT_FROM.get((owner, name))
    assert where is not None, (
        f"{owner}.{name} is parsed but nothing outside config/ reads it: make it work, "
        "or make its directive warn that it is ignored")
    text = (PACKAGE / where).read_text()
    assert re.search(rf"\.{name}\b|{name}=", text), f"{owner}.{name} is not read in {where}"


def test_the_allowances_are_all_still_needed() -> None:
    stale = [k for k in BUILT_FROM if re.search(rf"\.{k[1]}\b", OUTSIDE)]
    assert not stale, f"read outside config/ now, remove from BUILT_FROM: {stale}"
