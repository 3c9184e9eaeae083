"""nginx's SSL module (``ngx_http_ssl_module``): certificates and keys, protocols,
ciphers, curves, DH parameters, passphrases, tickets, client certificates and their
OCSP status. Each maps
onto Python's ``ssl`` (``fastgate.config.tls`` builds the context); what Python's
``ssl`` cannot express is accepted with one ``[warn]`` that says what is not done.

Files are opened here, so that a missing or unreadable one fails ``-t`` with the
directive's FILE:LINE, as ``nginx -t`` does."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from urllib.parse import urlsplit

from fastgate import openssl
from fastgate.config.context import HS, MAIN, Context, Handler, Level, Spec
from fastgate.config.directives.args import (
    appending,
    bitmask,
    flag_arg,
    ignored,
    number_arg,
    one_of,
    setting,
)
from fastgate.config.directives.ignored import off_is_ours
from fastgate.config.model import UserFile
from fastgate.config.parser import Directive
from fastgate.config.values import parse_size, parse_time

SSL_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
NO_STAPLING = "fastgate does not staple OCSP responses: clients ask the CA themselves"


def readable_file(ld: Context, d: Directive) -> str:
    value = d.args[0]
    if "$" in value:
        raise d.error(f'variables in "{d.name}" are not supported')
    path = ld.path_of(value)
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise d.error(f'cannot open "{path}" ({e.errno}: {e.strerror})') from None
    return path


def certificate_file(ld: Context, d: Directive) -> str | UserFile:
    """``ssl_certificate``/``ssl_certificate_key``: a file that must be readable, or a
    path with variables, loaded at each handshake (nginx 1.15.9+: nothing is checked
    at load but the variables)."""
    if "$" not in d.args[0]:
        return readable_file(ld, d)
    return UserFile(ld.compile(d.args[0], d), os.path.dirname(ld.path_of("x")))


def ssl_protocols(ld: Context, d: Directive) -> tuple[str, ...]:
    """nginx's bitmask of protocols: caseless (``tlsv1.2``), the names kept as nginx
    spells them."""
    spelled = {p.lower(): p for p in SSL_PROTOCOLS}
    for a in d.args:
        if a.lower() not in spelled:
            raise d.error(f'invalid value "{a}"')
    return tuple(spelled[a.lower()] for a in d.args)


def ssl_password_file(ld: Context, d: Directive) -> tuple[str, ...]:
    path = readable_file(ld, d)
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        passwords = tuple(line.rstrip("\r\n") for line in f if line.rstrip("\r\n"))
    if not passwords:
        raise d.error(f'cannot use empty password file "{path}"')
    return passwords


def ssl_engine(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    try:
        openssl.use_engine(d.args[0])
    except openssl.OpensslError as e:
        raise d.error(str(e)) from None


def conf_command(ld: Context, d: Directive) -> tuple[str, str]:
    """``ssl_conf_command`` (and a module's ``MODULE_ssl_conf_command``) ``NAME VALUE``:
    given to OpenSSL as it is (SSL_CONF_cmd), checked when the context is made at load."""
    return d.args[0], d.args[1]


def ssl_ecdh_curve(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    lvl.fields["ssl_ecdh_curve"] = d.args[0]


_CACHE = re.compile(r"builtin(:[0-9]+)?|shared:[^:]+:\S+")
# nginx: one megabyte of a shared cache holds about 4000 sessions
_SESSIONS_PER_MB = 4000


def ssl_session_cache(ld: Context, lvl: Level, d: Directive) -> None:
    """``off``, ``none``, or ``builtin[:SIZE]`` and/or ``shared:NAME:SIZE``: stored as
    (mode, size), ``fastgate.openssl``'s cache mode and the number of sessions (None:
    OpenSSL's). A shared cache is kept by each worker, sized as nginx sizes its zone."""
    lvl.once(d)
    mode, size = "server", None
    builtin: int | None = None
    shared: int | None = None
    for a in d.args:
        if a in ("off", "none"):
            mode = a
            continue
        if not _CACHE.fullmatch(a):
            raise d.error(f'invalid session cache "{a}"')
        if a.startswith("shared:"):
            shared = parse_size(d, a.split(":", 2)[2]) * _SESSIONS_PER_MB // (1024 * 1024)
        elif ":" in a:
            builtin = int(a.split(":", 1)[1])
    if mode == "server":
        size = builtin if builtin is not None else shared
    if shared is not None:
        ld.warn_once('a "shared:" session cache is kept by each worker',
                     "fastgate's workers share no TLS session cache; each keeps as many "
                     "sessions as the zone would hold", d)
    lvl.fields["ssl_session_cache"] = (mode, size)


def ssl_session_timeout(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    lvl.fields["ssl_session_timeout"] = int(parse_time(d, d.args[0], seconds_only=True))


def ssl_trusted_certificate(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    lvl.fields["ssl_trusted_certificate"] = readable_file(ld, d)
    ld.warn_once('"ssl_trusted_certificate" checks client certificates only', NO_STAPLING, d)


ssl_verify_client = one_of("on", "off", "optional", "optional_no_ca")  # (caseless)


ssl_ocsp = one_of("on", "off", "leaf")  # (nginx's enum slot: caseless)


def ssl_ocsp_responder(ld: Context, d: Directive) -> str:
    """nginx's checks at load: an http:// URL (OCSP is asked in clear, its answers are
    signed), with a host that resolves."""
    url = d.args[0]
    if url[:7].lower() != "http://" or len(url) <= 7:
        raise d.error(f'invalid URL prefix in OCSP responder "{url}" in "ssl_ocsp_responder"')
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port or 80
    except ValueError:
        raise d.error(f'invalid port in OCSP responder "{url[7:]}" in '
                      '"ssl_ocsp_responder"') from None
    if not host:
        raise d.error(f'no host in OCSP responder "{url[7:]}" in "ssl_ocsp_responder"')
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise d.error(f'host not found in OCSP responder "{url[7:]}" in '
                      '"ssl_ocsp_responder"') from None
    return url


def ssl_ocsp_cache(ld: Context, lvl: Level, d: Directive) -> None:
    """``off`` or ``shared:NAME:SIZE`` (nginx's form and words): answers kept until
    their nextUpdate (an hour without one) in a table every worker shares
    (``fastgate.ops.ocsp_cache``); servers naming the same cache share it."""
    lvl.once(d)
    value = d.args[0]
    if value == "off":
        lvl.fields["ssl_ocsp_cache"] = ""
        return
    m = re.fullmatch(r"shared:([^:]+):([0-9]+)([kKmM]?)", value)
    if m is None:
        raise d.error(f'invalid OCSP cache "{value}"')
    name = m.group(1)
    size = int(m.group(2)) * {"": 1, "k": 1024, "m": 1024**2}[m.group(3).lower()]
    if size < 8 * 4096:  # (nginx: eight pages)
        raise d.error(f'OCSP cache "{value}" is too small')
    if name in ld.zones:
        raise d.error(f'the shared memory zone "{name}" is already declared for a '
                      "different use")
    declared = ld.ocsp_caches.setdefault(name, size)
    if declared != size:
        raise d.error(f'the size {size} of shared memory zone "{name}" conflicts with '
                      f"already declared size {declared}")
    lvl.fields["ssl_ocsp_cache"] = name


def ssl_on(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    on = flag_arg(ld, d)
    ld.warn('the "ssl" directive is deprecated, use the "listen ... ssl" directive '
            "instead", d)
    lvl.fields["ssl_on"] = on


def beside_http(spec: Spec, contexts: frozenset[str]) -> Spec:
    """One of these directives in the stream or mail block (``contexts``): there, a
    certificate's path with variables is refused (loading at the handshake is done
    for HTTP's servers only)."""
    handler: Handler = spec.handler
    if spec.name in ("ssl_certificate", "ssl_certificate_key"):
        handler = appending(spec.name, _fixed_file)
    return dataclasses.replace(spec, contexts=contexts, handler=handler)


def _fixed_file(ld: Context, d: Directive) -> str:
    if "$" in d.args[0]:
        raise d.error(f'variables in "{d.name}" are not done in the stream and mail '
                      "blocks: only an HTTP server loads its certificate at the handshake")
    return readable_file(ld, d)


SPECS = [
    Spec("ssl", HS, 1, 1, ssl_on),
    Spec("ssl_certificate", HS, 1, 1, appending("ssl_certificate", certificate_file)),
    Spec("ssl_certificate_key", HS, 1, 1, appending("ssl_certificate_key", certificate_file)),
    Spec("ssl_password_file", HS, 1, 1, setting("ssl_password_file", ssl_password_file)),
    Spec("ssl_protocols", HS, 1, None, bitmask("ssl_protocols", ssl_protocols)),
    Spec("ssl_ciphers", HS, 1, 1, setting("ssl_ciphers", lambda ld, d: d.args[0])),
    Spec("ssl_prefer_server_ciphers", HS, 1, 1,
         setting("ssl_prefer_server_ciphers", flag_arg)),
    Spec("ssl_session_tickets", HS, 1, 1, setting("ssl_session_tickets", flag_arg)),
    Spec("ssl_conf_command", HS, 2, 2, appending("ssl_conf_command", conf_command)),
    Spec("ssl_engine", frozenset({MAIN}), 1, 1, ssl_engine),
    Spec("ssl_ecdh_curve", HS, 1, 1, ssl_ecdh_curve),
    Spec("ssl_dhparam", HS, 1, 1, setting("ssl_dhparam", readable_file)),
    Spec("ssl_session_cache", HS, 1, 2, ssl_session_cache),
    Spec("ssl_session_timeout", HS, 1, 1, ssl_session_timeout),
    Spec("ssl_session_ticket_key", HS, 1, 1, ignored(
        "each worker keeps OpenSSL's own ticket key; Python's ssl cannot set one")),
    Spec("ssl_trusted_certificate", HS, 1, 1, ssl_trusted_certificate),
    Spec("ssl_verify_client", HS, 1, 1, setting("ssl_verify_client", ssl_verify_client)),
    Spec("ssl_reject_handshake", HS, 1, 1, setting("ssl_reject_handshake", flag_arg)),
    Spec("ssl_client_certificate", HS, 1, 1, setting("ssl_client_certificate",
                                                     readable_file)),
    Spec("ssl_verify_depth", HS, 1, 1, setting("ssl_verify_depth", number_arg)),
    Spec("ssl_crl", HS, 1, 1, setting("ssl_crl", readable_file)),
    Spec("ssl_ocsp", HS, 1, 1, setting("ssl_ocsp", ssl_ocsp)),
    Spec("ssl_ocsp_responder", HS, 1, 1, setting("ssl_ocsp_responder", ssl_ocsp_responder)),
    Spec("ssl_ocsp_cache", HS, 1, 1, ssl_ocsp_cache),
    Spec("ssl_stapling", HS, 1, 1, off_is_ours(NO_STAPLING)),
    Spec("ssl_stapling_verify", HS, 1, 1, off_is_ours(NO_STAPLING)),
    Spec("ssl_stapling_file", HS, 1, 1, ignored(NO_STAPLING)),
    Spec("ssl_stapling_responder", HS, 1, 1, ignored(NO_STAPLING)),
    Spec("ssl_buffer_size", HS, 1, 1, ignored(
        "OpenSSL sizes TLS records (up to 16k); Python's ssl cannot set it")),
    Spec("ssl_early_data", HS, 1, 1, off_is_ours(
        "0-RTT data is not accepted: clients send it again after the handshake")),
]

__all__ = ["SPECS"]
