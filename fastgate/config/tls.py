"""A server's TLS settings made an ``ssl.SSLContext``.

Built once at load, so that ``-t`` fails (with the directive's FILE:LINE) on a
certificate, key, passphrase, DH parameter file, curve or cipher string OpenSSL refuses,
as ``nginx -t`` does; built again by the gateway when it starts serving (the context is a
runtime object, not part of the frozen configuration). Everything here goes through
Python's ``ssl``; what it cannot express is warned about where the directive is read
(``fastgate.config.directives.tls``).
"""

from __future__ import annotations

import ssl
from typing import Any

from cryptography import x509

from fastgate import openssl
from fastgate.config.model import ProxyPass, Settings, UpstreamTls, UserFile
from fastgate.config.values import host_of
from fastgate.errors import FastgateError

VERSIONS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
            "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


class TlsError(FastgateError):
    """A TLS setting OpenSSL refused; ``directive`` is the one to blame (its FILE:LINE
    goes with the message)."""

    def __init__(self, directive: str, message: str) -> None:
        super().__init__(message)
        self.directive = directive
        self.message = message


def _reason(e: Exception) -> str:
    if isinstance(e, ssl.SSLError):
        return f"({e.reason or e})" if e.library else str(e)
    if isinstance(e, OSError) and e.strerror:
        return f"({e.errno}: {e.strerror})"
    return str(e)


def _context(side: ssl._SSLMethod, prefix: str, protocols: tuple[str, ...],
             ciphers: str | None, kind: type[ssl.SSLContext] = ssl.SSLContext
             ) -> ssl.SSLContext:
    """A context with its protocol range and cipher list (``prefix``: whose directives,
    "ssl_" or "proxy_ssl_", a refusal names)."""
    ctx = kind(side)
    enabled = [VERSIONS[p] for p in protocols if p in VERSIONS]
    if not enabled:
        raise TlsError(f"{prefix}protocols", f"{prefix}protocols enables no protocol this "
                                             "OpenSSL supports (TLSv1 to TLSv1.3)")
    ctx.minimum_version = min(enabled)
    ctx.maximum_version = max(enabled)
    if ciphers is not None:
        try:
            ctx.set_ciphers(ciphers)
        except ssl.SSLError:
            raise TlsError(f"{prefix}ciphers", f'SSL_CTX_set_cipher_list("{ciphers}") '
                                               "failed: no cipher matches") from None
    return ctx


def server_context(s: Settings) -> ssl.SSLContext:
    """The context a server's ``listen ... ssl`` sockets handshake with."""
    if not s.ssl_certificate:
        raise TlsError("listen", 'no "ssl_certificate" is defined for the "listen ... ssl" '
                                 "directive")
    if len(s.ssl_certificate_key) < len(s.ssl_certificate):
        missing = s.ssl_certificate[len(s.ssl_certificate_key)]
        raise TlsError("ssl_certificate", f'no "ssl_certificate_key" is defined for '
                                          f'certificate "{missing}"')
    ctx = _context(ssl.PROTOCOL_TLS_SERVER, "ssl_", s.ssl_protocols, s.ssl_ciphers,
                   openssl.ServerContext)
    if s.ssl_prefer_server_ciphers is True:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    elif s.ssl_prefer_server_ciphers is False:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if not s.ssl_session_tickets:
        ctx.options |= ssl.OP_NO_TICKET
        ctx.num_tickets = 0
    if s.ssl_ecdh_curve not in ("auto", ""):
        _openssl("ssl_ecdh_curve", openssl.curves, ctx, s.ssl_ecdh_curve)
    mode, size = s.ssl_session_cache
    _openssl("ssl_session_cache", openssl.session_cache, ctx,
             {"off": openssl.CACHE_OFF, "none": openssl.CACHE_NONE}.get(
                 mode, openssl.CACHE_SERVER),
             1 if mode == "none" else size,
             None if mode in ("off", "none") else s.ssl_session_timeout)
    if s.ssl_dhparam is not None:
        try:
            ctx.load_dh_params(s.ssl_dhparam)
        except (OSError, ssl.SSLError) as e:
            raise TlsError("ssl_dhparam", f'cannot load DH parameters "{s.ssl_dhparam}": '
                                          f"{_reason(e)}") from None
    if not by_value(s):  # (else each handshake's are loaded then: ops.certificates)
        for cert, key in zip(s.ssl_certificate, s.ssl_certificate_key, strict=False):
            assert isinstance(cert, str) and isinstance(key, str)
            _load_pair(ctx, cert, key, s.ssl_password_file)
    if s.ssl_verify_client != "off":
        _client_certificates(ctx, s)
    _openssl("ssl_conf_command", openssl.conf_commands, ctx, s.ssl_conf_command)
    ctx.sni_callback = _name_accepted
    return ctx


def by_value(s: Settings) -> bool:
    """The server's certificates have variables: all its pairs are loaded at each
    handshake, as nginx's (none at load)."""
    return any(isinstance(v, UserFile)
               for v in (*s.ssl_certificate, *s.ssl_certificate_key))


def _name_accepted(tls: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
    """A servername callback that accepts the name, as nginx's always does: OpenSSL
    keeps an accepted name in the session, so a resumed TLS 1.2 session still gives
    ``$ssl_server_name`` (an address with several servers chooses by name instead)."""


def _openssl(directive: str, call: Any, *args: Any) -> None:
    """A setting made through ``fastgate.openssl``; its refusal blames ``directive``."""
    try:
        call(*args)
    except openssl.OpensslError as e:
        raise TlsError(directive, str(e)) from None


def _client_certificates(ctx: ssl.SSLContext, s: Settings) -> None:
    """``ssl_verify_client on|optional|optional_no_ca``: a certificate is asked for and,
    when one comes, verified against the CAs (and CRLs) to ``ssl_verify_depth``; the
    handshake completes whatever the verification says, as nginx's, and each request
    is answered for it (``proxy.phases``: 400 "The SSL certificate error", 495)."""
    if (s.ssl_verify_client != "optional_no_ca" and s.ssl_client_certificate is None
            and s.ssl_trusted_certificate is None):
        raise TlsError("ssl_verify_client", "no ssl_client_certificate for ssl_verify_client")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    for directive, path in (("ssl_client_certificate", s.ssl_client_certificate),
                            ("ssl_trusted_certificate", s.ssl_trusted_certificate),
                            ("ssl_crl", s.ssl_crl)):
        if path is None:
            continue
        try:
            ctx.load_verify_locations(path)
        except (OSError, ssl.SSLError) as e:
            raise TlsError(directive, f'cannot load "{path}": {_reason(e)}') from None
    if s.ssl_crl is not None:
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    _openssl("ssl_verify_client", openssl.verify_then_answer, ctx, s.ssl_verify_depth)
    if s.ssl_ocsp != "off":
        assert isinstance(ctx, openssl.ServerContext)
        ctx.ocsp = _ocsp_policy(s)


def _ocsp_policy(s: Settings) -> openssl.OcspPolicy:
    if s.ssl_verify_client == "optional_no_ca":
        raise TlsError("ssl_ocsp", '"ssl_ocsp" is incompatible with "ssl_verify_client '
                                   'optional_no_ca"')
    return openssl.OcspPolicy(s.ssl_ocsp == "leaf", s.ssl_ocsp_responder, s.ssl_ocsp_cache)


# the settings of a module's upstream TLS (``MODULE_ssl_FIELD``), UpstreamTls's fields
UPSTREAM_TLS_FIELDS = ("name", "server_name", "verify", "trusted_certificate", "crl",
                       "protocols", "ciphers", "certificate", "certificate_key",
                       "password_file", "conf_command")


def upstream_tls(s: Settings, host: str, name: str | None = None,
                 module: str = "proxy") -> UpstreamTls:
    """A location's ``MODULE_ssl_*`` settings (proxy's for https://, uwsgi's for
    suwsgi://, grpc's for grpcs://) for an upstream named ``host``; ``name``: a MODULE_ssl_name with
    variables, as this request renders it."""
    got: dict[str, Any] = {f: getattr(s, f"{module}_ssl_{f}") for f in UPSTREAM_TLS_FIELDS}
    given = got.pop("name")
    if name is None:
        name = (given if isinstance(given, str) else None) or host
    return UpstreamTls(name=_tls_name(name), module=module, **got)


def proxy_tls_host(pp: ProxyPass) -> str:
    """An https:// proxy_pass's TLS name by default: the URL's host, or a socket's path
    (nginx's host of a unix: URL)."""
    if pp.upstream.startswith("unix:"):
        return pp.upstream[5:]
    return host_of(pp.host_header)


def _tls_name(name: str) -> str:
    """A TLS name without the port it may carry (``$http_host``'s), as nginx's
    ngx_http_upstream_ssl_name strips it: from the first colon, past a bracketed
    IPv6 address. One Python's ssl cannot send (not IDNA: a label past 63 bytes or
    empty; a NUL) is none — no SNI, and with verification no certificate passes —
    where nginx sends the bytes, which no certificate's name matches either."""
    name = str(name)  # (a variable's value may be a str subclass, which ssl refuses)
    start = name.find("]") + 1 if name.startswith("[") else 0
    colon = name.find(":", start)
    if colon >= 0:
        name = name[:colon]
    try:
        name.encode("idna")
    except UnicodeError:
        return ""
    return "" if "\x00" in name else name


def upstream_context(t: UpstreamTls) -> ssl.SSLContext:
    """The context an ``https://`` proxy_pass (a ``suwsgi://`` uwsgi_pass, a
    ``grpcs://`` grpc_pass: it offers ALPN "h2", as nginx's) connects with. As nginx,
    certificates are not checked unless ``proxy_ssl_verify on`` (``uwsgi_ssl_verify``,
    ``grpc_ssl_verify``); then against the trusted certificates only (not the
    system's), and for ``name``."""
    p = f"{t.module}_ssl_"
    ctx = _context(ssl.PROTOCOL_TLS_CLIENT, p, t.protocols, t.ciphers)
    if t.module == "grpc":
        ctx.set_alpn_protocols(["h2"])
    if t.verify and not t.name:
        # (a name with variables that came out empty: nginx checks the certificate
        # against "", which no certificate passes; with no trusted certificate, none
        # passes here either)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif t.verify:
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_verify_locations(t.trusted_certificate)
        except (OSError, ssl.SSLError) as e:
            raise TlsError(p + "trusted_certificate",
                           f'cannot load trusted certificates "{t.trusted_certificate}": '
                           f"{_reason(e)}") from None
        if t.crl is not None:
            try:
                ctx.load_verify_locations(t.crl)
            except (OSError, ssl.SSLError) as e:
                raise TlsError(p + "crl", f'cannot load CRL "{t.crl}": '
                                          f"{_reason(e)}") from None
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if t.certificate is not None:
        if t.certificate_key is None:
            raise TlsError(p + "certificate", f'no "{p}certificate_key" is defined for '
                                              f'certificate "{t.certificate}"')
        try:
            _load_pair(ctx, t.certificate, t.certificate_key, t.password_file)
        except TlsError as e:
            raise TlsError(f"{t.module}_" + e.directive, e.message) from None
    _openssl(p + "conf_command", openssl.conf_commands, ctx, t.conf_command)
    return ctx


def _load_pair(ctx: ssl.SSLContext, cert: str, key: str,
               passwords: tuple[str, ...] | None) -> None:
    # nginx tries each passphrase of ssl_password_file in turn; without one, a key that
    # needs a passphrase fails here instead of prompting on the terminal
    try:
        with open(cert, "rb") as f:
            x509.load_pem_x509_certificate(f.read())
    except OSError as e:
        raise TlsError("ssl_certificate", f'cannot load certificate "{cert}": '
                                          f"{_reason(e)}") from None
    except ValueError:
        raise TlsError("ssl_certificate", f'cannot load certificate "{cert}": '
                                          "not a PEM certificate") from None
    tries: tuple[str, ...] = passwords or ("",)
    last: Exception | None = None
    for password in tries:
        try:
            ctx.load_cert_chain(cert, key, password=password)
            return
        except OSError as e:
            if not isinstance(e, ssl.SSLError):
                raise TlsError("ssl_certificate_key", f'cannot load certificate key "{key}": '
                                                      f"{_reason(e)}") from None
            last = e
    assert last is not None
    which = "ssl_password_file" if passwords else "ssl_certificate_key"
    raise TlsError(which, f'cannot load certificate key "{key}" for certificate "{cert}": '
                          f"{_reason(last)}")


__all__ = ["UPSTREAM_TLS_FIELDS", "TlsError", "by_value", "server_context", "upstream_context",
           "upstream_tls"]
