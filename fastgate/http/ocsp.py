"""``ssl_ocsp``: a verified client certificate's status, asked of an OCSP responder
after the handshake and before the connection's first request, as nginx's
ngx_ssl_ocsp_validate: each certificate of the chain but the root (``leaf``: the first
only), in turn, of ``ssl_ocsp_responder`` or the certificate's own responder; a
request on a connection whose certificate is revoked, unknown, or whose status could not
be had is answered 400 "The SSL certificate error" (``proxy.phases``), and
``$ssl_client_verify`` says ``FAILED:`` with nginx's words.

The chain is the one the handshake verified (``fastgate.openssl.verified_chain``, as
nginx reads it), intermediates the client sent included. The request goes as a GET in
clear (as nginx's: OCSP answers are signed); the answer counts only when it is signed by
the issuer or by a responder the issuer delegated (extended key usage OCSPSigning),
names the certificate asked about, and is current (five minutes of leeway, as
OpenSSL's OCSP_check_validity under nginx). With ``ssl_ocsp_cache`` the answers are
kept until their nextUpdate, an hour without one, in the table every worker shares
(``KeptAnswers``: ``fastgate.ops.ocsp_cache``)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import time
from typing import Protocol
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from fastgate.errors import FastgateError
from fastgate.http.fetch import FetchError, http_get
from fastgate.openssl import OcspPolicy

# nginx's words in $ssl_client_verify (FAILED:...) and the error log
FAILED = "certificate status request failed"
REVOKED = "certificate revoked"
UNKNOWN = "certificate status unknown"
_TIMEOUT = 10.0
_LEEWAY = datetime.timedelta(minutes=5)
_KEPT_WITHOUT_NEXT_UPDATE = 3600.0


class OcspError(FastgateError):
    """The status could not be had: why (logged; the request is refused)."""


class KeptAnswers(Protocol):
    """Where answers are kept across connections (and workers): a status by the
    certificate's key, until when it holds."""

    def get(self, key: bytes, now: float) -> str | None: ...

    def put(self, key: bytes, words: str, until: float, now: float) -> None: ...


class OcspChecker:
    """One policy's checks for one worker; ``kept``: the shared cache its
    ``ssl_ocsp_cache`` names, if any."""

    def __init__(self, policy: OcspPolicy, kept: KeptAnswers | None) -> None:
        self.policy = policy
        self.kept = kept

    async def status(self, chain: list[bytes]) -> str:
        """"" when every certificate asked about is good, else nginx's words for the
        first that is not; ``chain``: the verified chain, the client's certificate
        first. OcspError when a status could not be had."""
        try:
            certs = [x509.load_der_x509_certificate(der) for der in chain]
        except ValueError as e:
            raise OcspError(f"invalid certificate in the verified chain: {e}") from None
        asked = certs[:1] if self.policy.leaf_only else certs[:-1]
        for i, cert in enumerate(asked[:len(certs) - 1]):
            words = await self._one(cert, certs[i + 1])
            if words:
                return words
        return ""

    async def _one(self, cert: x509.Certificate, issuer: x509.Certificate) -> str:
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
        # the certificate's OCSP identity (nginx's cache key), whole
        key = hashlib.sha256(request.issuer_name_hash + request.issuer_key_hash
                             + _serial_bytes(request.serial_number)).digest()
        kept = self.kept
        if kept is not None:
            words = kept.get(key, time.time())
            if words is not None:
                return words
        url = self.policy.responder or _responder_of(cert)
        encoded = quote(base64.b64encode(request.public_bytes(Encoding.DER)).decode(), safe="")
        try:
            status, _, body = await http_get(url.rstrip("/") + "/" + encoded, _TIMEOUT,
                                             "application/ocsp-response")
        except FetchError as e:
            raise OcspError(f"OCSP responder {url}: {e}") from None
        if status != 200:
            raise OcspError(f"OCSP responder {url} sent invalid status {status}")
        words, until = _read(body, request, issuer)
        if kept is not None:
            kept.put(key, words, until, time.time())
        return words


def _serial_bytes(serial: int) -> bytes:
    return serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)


def _responder_of(cert: x509.Certificate) -> str:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        raise OcspError("no OCSP responder URL in certificate") from None
    for d in aia.value:
        if d.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
                d.access_location, x509.UniformResourceIdentifier):
            url = d.access_location.value
            if url[:7].lower() != "http://":
                raise OcspError(f'invalid URL prefix in OCSP responder "{url}" in '
                                "certificate")
            return url
    raise OcspError("no OCSP responder URL in certificate")


def _read(body: bytes, request: ocsp.OCSPRequest, issuer: x509.Certificate
          ) -> tuple[str, float]:
    """The status words of a verified answer and until when it may be kept."""
    try:
        resp = ocsp.load_der_ocsp_response(body)
    except ValueError as e:
        raise OcspError(f"OCSP responder sent invalid response: {e}") from None
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OcspError(f"OCSP response not successful ({resp.response_status.value}: "
                        f"{resp.response_status.name.lower()})")
    signer = _signer(resp, issuer)
    if signer is None or not _signed(signer, resp.signature, resp.tbs_response_bytes,
                                     resp.signature_hash_algorithm):
        raise OcspError("OCSP_basic_verify() failed: the answer is not signed by the "
                        "issuer or a responder it delegated")
    single = next((r for r in resp.responses
                   if r.serial_number == request.serial_number
                   and r.issuer_key_hash == request.issuer_key_hash
                   and r.issuer_name_hash == request.issuer_name_hash), None)
    if single is None:
        raise OcspError("certificate status not found in the OCSP response")
    now = datetime.datetime.now(datetime.UTC)
    next_update = single.next_update_utc
    if single.this_update_utc > now + _LEEWAY or (
            next_update is not None and next_update < now - _LEEWAY):
        raise OcspError("OCSP_check_validity() failed: the answer is not current")
    words = {ocsp.OCSPCertStatus.GOOD: "", ocsp.OCSPCertStatus.REVOKED: REVOKED}.get(
        single.certificate_status, UNKNOWN)
    until = next_update.timestamp() if next_update is not None else (
        time.time() + _KEPT_WITHOUT_NEXT_UPDATE)
    return words, until


def _signer(resp: ocsp.OCSPResponse, issuer: x509.Certificate) -> x509.Certificate | None:
    """The certificate that signed the answer: the issuer, or one it issued for
    OCSP signing that came with the answer."""
    if _names(resp, issuer):
        return issuer
    for cert in resp.certificates:
        if not _names(resp, cert) or not _issued_by(cert, issuer):
            continue
        try:
            usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in usage:
            return cert
    return None


def _names(resp: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    """Whether the answer's ResponderID is ``cert``: by name, or by the SHA-1 of its
    public key's bits (RFC 6960 4.2.1, which is RFC 5280's key identifier)."""
    if resp.responder_name is not None:
        return resp.responder_name == cert.subject
    key_id = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    return key_id == resp.responder_key_hash


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _signed(cert: x509.Certificate, signature: bytes, data: bytes,
            algorithm: hashes.HashAlgorithm | None) -> bool:
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(signature, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True


__all__ = ["FAILED", "REVOKED", "UNKNOWN", "OcspChecker", "OcspError"]
