"""``ssl_certificate``/``ssl_certificate_key`` with variables: the pairs a handshake's
values name (``$ssl_server_name`` the usual one) loaded then, as nginx's certificate
callback loads them at every handshake.

Here the servername callback renders the values and switches the connection to a
context made as the server's own with those files (``config.tls.server_context``); the
context is kept while the files' modification times stay the same, so a renewed
certificate is read at the next handshake without reading every file at every one. A
file that cannot be loaded fails that handshake (nginx's "cannot load certificate ..."
at error) and no other.

At the handshake there is no request: the values are rendered against an empty one on
the connection's TLS object, so ``$ssl_server_name`` and the other ``$ssl_*`` have
their values and the request's variables are empty. (One difference from nginx: the
client's and server's addresses are empty too — Python's servername callback does not
say which connection it is for.)
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from collections import OrderedDict
from collections.abc import Callable

from fastgate import openssl
from fastgate._wire import ConnectionInfo, RequestHead, normal_host
from fastgate.config.model import Settings, UserFile
from fastgate.config.tls import TlsError, server_context
from fastgate.proxy.request import Request

# the contexts kept for the pairs last asked for: one per certificate, as a server has
# few (a name that matches no file fails before it makes one)
_KEPT = 64

_NO_HEAD = RequestHead(b"", b"", b"", [], 0, False, False, None)

Report = Callable[[str, str], None]


class _Handshake:
    """What ``Request`` reads of a connection: one in its handshake."""

    requests = 0
    pipelined = False

    def __init__(self, tls: ssl.SSLObject) -> None:
        self.info = ConnectionInfo("https", "", 0, "", 0, 0, tls=tls)


class CertificatesByValue:
    """One server's certificates with variables. ``alpn``: the protocols its address
    offers (set on every context it makes); ``report``: where a failure is written
    (level, message): the serving worker's error log, set when it serves."""

    def __init__(self, settings: Settings, alpn: list[str]) -> None:
        self.settings = settings
        self.alpn = alpn
        self.report: Report | None = None
        # (certificates, keys) -> (their files' mtimes, the context)
        self._kept: OrderedDict[tuple[tuple[str, ...], tuple[str, ...]],
                                tuple[tuple[float, ...], ssl.SSLContext]] = OrderedDict()

    def switch(self, tls: ssl.SSLObject) -> int | None:
        """In the servername callback: the connection takes the context of the pairs
        its values name; an alert (the handshake fails) when they cannot be loaded.

        A name that is no host name (``..``, ``/``, a control byte) fails the handshake
        before it is rendered into a path: nginx passes the raw name on, which lets a
        client name a file outside the directory the configuration meant."""
        name = openssl.server_name(tls)
        if name and normal_host(name.encode("latin-1", "replace")) is None:
            shown = repr(name)[1:-1]  # (control bytes escaped)
            self._report("info", f'client SSL server name "{shown}" is no host name: no '
                                 "certificate is loaded for it while SSL handshaking")
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        try:
            ctx = self._context(tls)
        except TlsError as e:
            self._report("error", f"{e.message} while SSL handshaking")
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        except Exception as e:  # a bug costs the handshake, never the worker
            self._report("alert", f"unexpected error while loading the certificate: "
                                  f"{type(e).__name__}: {e}")
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        tls.context = ctx
        return None

    def callback(self, tls: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> int | None:
        """As an ``sni_callback``, for an address whose only server this is."""
        return self.switch(tls)

    def _context(self, tls: ssl.SSLObject) -> ssl.SSLContext:
        s = self.settings
        req = Request(_NO_HEAD, ("", "", None), _Handshake(tls))
        req.host = ""
        certs = tuple(rendered(v, req) for v in s.ssl_certificate)
        keys = tuple(rendered(v, req) for v in s.ssl_certificate_key)
        key = (certs, keys)
        stamps = _stamps((*certs, *keys))
        kept = self._kept.get(key)
        if kept is not None and kept[0] == stamps:
            self._kept.move_to_end(key)
            return kept[1]
        ctx = server_context(dataclasses.replace(s, ssl_certificate=certs,
                                                 ssl_certificate_key=keys))
        ctx.set_alpn_protocols(self.alpn)
        self._kept[key] = (stamps, ctx)
        self._kept.move_to_end(key)
        while len(self._kept) > _KEPT:
            self._kept.popitem(last=False)
        return ctx

    def _report(self, level: str, message: str) -> None:
        if self.report is not None:
            self.report(level, message)


def rendered(value: str | UserFile, req: object) -> str:
    """A path as this handshake gives it (a relative one from the configuration's
    directory)."""
    return value if isinstance(value, str) else value.resolve(req)


def _stamps(paths: tuple[str, ...]) -> tuple[float, ...]:
    """The files' modification times (-1: not there: loading it says why)."""
    out = []
    for path in paths:
        try:
            out.append(os.stat(path).st_mtime)
        except OSError:
            out.append(-1.0)
    return tuple(out)
