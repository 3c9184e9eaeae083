"""An OCSP responder for the tests (RFC 6960 over HTTP GET, as nginx asks): it answers
for the certificates it is told about — good, revoked, or (any other) unknown — signed
by their issuer, or as told: by a delegated responder, by a stranger, stale, not
successful, not OCSP at all, an HTTP error. It counts what it is asked, per serial."""

from __future__ import annotations

import base64
import datetime
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp


class OcspResponder:
    def __init__(self) -> None:
        # serial -> "good" | "revoked"
        self.statuses: dict[int, str] = {}
        # issuer's subject -> (its certificate, its key): who signs for what it issued
        self.issuers: dict[x509.Name, tuple[x509.Certificate, Any]] = {}
        self.mode = "issuer"  # delegated, stranger, stale, unauthorized, garbage, http500
        self.delegated: tuple[x509.Certificate, Any] | None = None
        self.stranger: tuple[x509.Certificate, Any] | None = None
        self.asked: Counter[int] = Counter()
        self.lock = threading.Lock()
        responder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                status, body = responder.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._handler = Handler
        self.port = 0
        self.up()
        self.url = f"http://127.0.0.1:{self.port}/ocsp"

    def up(self) -> None:
        """Serving (again, on the same port)."""
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def down(self) -> None:
        """Not listening: a connection is refused."""
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str) -> tuple[int, bytes]:
        encoded = unquote(path.rsplit("/", 1)[-1])
        req = ocsp.load_der_ocsp_request(base64.b64decode(encoded))
        with self.lock:
            self.asked[req.serial_number] += 1
            mode = self.mode
        if mode == "http500":
            return 500, b"down"
        if mode == "garbage":
            return 200, b"not an OCSP response"
        if mode == "unauthorized":
            return 200, ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
        issuer = next((c for c, _ in self.issuers.values()
                       if _hash(c) == req.issuer_key_hash), None)
        if issuer is None:
            return 200, ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
        issuer_key = self.issuers[issuer.subject][1]
        now = datetime.datetime.now(datetime.UTC)
        this, nxt = now - datetime.timedelta(minutes=1), now + datetime.timedelta(hours=1)
        if mode == "stale":
            this, nxt = now - datetime.timedelta(days=2), now - datetime.timedelta(days=1)
        status = self.statuses.get(req.serial_number)
        cert_status = {"good": ocsp.OCSPCertStatus.GOOD,
                       "revoked": ocsp.OCSPCertStatus.REVOKED}.get(
            status or "", ocsp.OCSPCertStatus.UNKNOWN)
        # the certificate asked about is not at hand: a stand-in with its serial
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            req.issuer_name_hash, req.issuer_key_hash, req.serial_number, req.hash_algorithm,
            cert_status, this, nxt,
            now - datetime.timedelta(hours=1) if status == "revoked" else None,
            x509.ReasonFlags.key_compromise if status == "revoked" else None)
        signer, key = issuer, issuer_key
        if mode == "delegated" and self.delegated is not None:
            signer, key = self.delegated
            builder = builder.certificates([signer])
        elif mode == "stranger" and self.stranger is not None:
            signer, key = self.stranger
            builder = builder.certificates([signer])
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer)
        return 200, builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def stop(self) -> None:
        self.down()


def _hash(cert: x509.Certificate) -> bytes:
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


__all__ = ["OcspResponder"]
