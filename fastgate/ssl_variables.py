"""``$ssl_*`` of a TLS connection beside the client certificate's (those are
``client_certificate``'s): nginx's SSL modules' variables, HTTP's and the stream
block's, each read from the connection's ``ssl.SSLObject`` (None when the connection
is not TLS: every one is empty)."""

from __future__ import annotations

import ssl
from collections.abc import Callable

from fastgate import openssl

Read = Callable[[ssl.SSLObject], str]


def _cipher(tls: ssl.SSLObject) -> str:
    found = tls.cipher()
    return found[0] if found else ""


_READS: dict[str, Read] = {
    "ssl_protocol": lambda tls: tls.version() or "",
    "ssl_cipher": _cipher,
    "ssl_ciphers": openssl.client_ciphers,
    "ssl_curve": openssl.negotiated_group,
    "ssl_curves": openssl.client_groups,
    "ssl_session_id": openssl.session_id,
    "ssl_session_reused": lambda tls: "r" if tls.session_reused else ".",
    "ssl_server_name": openssl.server_name,
    "ssl_alpn_protocol": lambda tls: tls.selected_alpn_protocol() or "",
}


def _guarded(read: Read) -> Callable[[ssl.SSLObject | None], str]:
    def value(tls: ssl.SSLObject | None) -> str:
        if tls is None:
            return ""
        try:
            return read(tls)
        except openssl.OpensslError:  # (a Python whose ssl objects fastgate cannot read)
            return ""

    return value


# name -> its value for a connection's SSLObject (or None): HTTP's and the stream
# block's
VARIABLES: dict[str, Callable[[ssl.SSLObject | None], str]] = {
    name: _guarded(read) for name, read in _READS.items()}

# HTTP's only (nginx's stream module has no $ssl_early_data): 0-RTT data is never
# accepted (see ssl_early_data), so no request is read from it
HTTP_ONLY: dict[str, Callable[[ssl.SSLObject | None], str]] = {
    "ssl_early_data": lambda tls: ""}

__all__ = ["HTTP_ONLY", "VARIABLES"]
