"""``$ssl_client_*``: the client's certificate (when ``ssl_verify_client`` asked for
one) in the forms nginx's SSL module gives it."""

from __future__ import annotations

import datetime
import hashlib
import urllib.parse
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fastgate import openssl


@lru_cache(maxsize=256)
def _parsed(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def _certificate(r: Any) -> x509.Certificate | None:
    given = r.connection.client_certificate
    return _parsed(given[0]) if given is not None else None


def _pem(r: Any) -> str:
    cert = _certificate(r)
    return cert.public_bytes(Encoding.PEM).decode() if cert is not None else ""


def _time(when: datetime.datetime) -> str:
    """As ASN1_TIME_print: "Sep  8 12:00:00 2026 GMT"."""
    return f"{when:%b} {when.day:2d} {when:%H:%M:%S %Y} GMT"


def _serial(n: int) -> str:
    text = f"{n:X}"
    return text if len(text) % 2 == 0 else "0" + text


def _verify(given: tuple[bytes, int, str] | None) -> str:
    if given is None:
        return "NONE"
    return "SUCCESS" if given[1] == 0 else f"FAILED:{given[2]}"


def _with(r: Any, get: Any) -> str:
    cert = _certificate(r)
    return get(cert) if cert is not None else ""


def _legacy(r: Any, issuer: bool) -> str:
    given = r.connection.client_certificate
    if given is None:
        return ""
    try:
        return openssl.name_oneline(given[0], issuer)
    except openssl.OpensslError:  # (a Python whose ssl module fastgate cannot reach)
        return ""


VARIABLES: dict[str, Any] = {
    # nginx's: SUCCESS, FAILED:REASON (a request sees one only with optional_no_ca), NONE
    "ssl_client_verify": lambda r: _verify(r.connection.client_certificate),
    "ssl_client_s_dn": lambda r: _with(r, lambda c: c.subject.rfc4514_string()),
    "ssl_client_i_dn": lambda r: _with(r, lambda c: c.issuer.rfc4514_string()),
    "ssl_client_serial": lambda r: _with(r, lambda c: _serial(c.serial_number)),
    "ssl_client_fingerprint": lambda r: (
        hashlib.sha1(r.connection.client_certificate[0]).hexdigest()  # noqa: S324 (nginx's)
        if r.connection.client_certificate else ""),
    "ssl_client_raw_cert": _pem,
    "ssl_client_cert": lambda r: _pem(r).rstrip("\n").replace("\n", "\n\t") + (
        "\n" if _pem(r) else ""),
    "ssl_client_escaped_cert": lambda r: urllib.parse.quote(_pem(r), safe=""),
    "ssl_client_v_start": lambda r: _with(r, lambda c: _time(c.not_valid_before_utc)),
    "ssl_client_v_end": lambda r: _with(r, lambda c: _time(c.not_valid_after_utc)),
    "ssl_client_v_remain": lambda r: _with(r, lambda c: str(max(0, (
        c.not_valid_after_utc - datetime.datetime.now(datetime.UTC)).days))),
}

# HTTP's only (nginx's stream module has neither): the names in their old form,
# "/C=../CN=..", as OpenSSL's X509_NAME_oneline writes them
LEGACY: dict[str, Any] = {
    "ssl_client_s_dn_legacy": lambda r: _legacy(r, issuer=False),
    "ssl_client_i_dn_legacy": lambda r: _legacy(r, issuer=True),
}
