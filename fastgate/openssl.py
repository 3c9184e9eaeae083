"""What nginx asks of OpenSSL that Python's ``ssl`` does not expose, asked of the same
OpenSSL: ``ssl_engine`` (ENGINE_set_default), ``ssl_conf_command`` and
``proxy_``/``uwsgi_``/``grpc_ssl_conf_command`` (``SSL_CONF_cmd``, as nginx's
ngx_ssl_conf_commands), a list of curves for ``ssl_ecdh_curve``
(``SSL_CTX_set1_curves_list``), ``ssl_session_cache``'s mode and size and
``ssl_session_timeout`` (``SSL_CTX_set_session_cache_mode``, ``SSL_CTX_sess_set_cache_size``,
``SSL_CTX_set_timeout``).

The context's ``SSL_CTX`` is the pointer CPython's ``_ssl`` keeps right after the
object's header; the functions are looked up through ``_ssl``'s own library, so they
are the OpenSSL Python links. Before any call the pointer is checked against what
Python reports of the same context (its options): a layout that does not match refuses
the directive at load rather than guess."""

from __future__ import annotations

import ctypes
import functools
import ssl
import sys
from dataclasses import dataclass
from typing import Any

from fastgate.errors import FastgateError

# SSL_CONF_CTX_set_flags: nginx's (ngx_ssl_conf_commands): FILE, CLIENT, SERVER,
# SHOW_ERRORS, CERTIFICATE
_CONF_FLAGS = 0x2 | 0x4 | 0x8 | 0x10 | 0x20
_CTRL_SET_SESS_CACHE_SIZE = 42
_CTRL_SET_SESS_CACHE_MODE = 44
_CTRL_SET_GROUPS_LIST = 92
# SSL_SESS_CACHE_*: SERVER; nginx's "none": SERVER | NO_AUTO_CLEAR | NO_INTERNAL_STORE
CACHE_OFF, CACHE_SERVER, CACHE_NONE = 0x0, 0x2, 0x2 | 0x80 | 0x200


@dataclass(frozen=True, eq=False)
class OcspPolicy:
    """``ssl_ocsp``: how a verified client certificate's status is asked (by
    ``fastgate.http.ocsp``): every certificate of its chain but the root, or the
    ``leaf`` only; of ``responder`` (empty: each certificate's own, from its Authority
    Information Access); answers kept in the shared cache named ``cache``
    (``ssl_ocsp_cache``), or asked each connection ("")."""
    leaf_only: bool
    responder: str
    cache: str


class ServerContext(ssl.SSLContext):
    """A server's context, with what the connection checks after the handshake (as
    nginx keeps its OCSP settings in the SSL_CTX's ex_data)."""
    ocsp: OcspPolicy | None = None
    # an address's servers whose certificates are loaded at the handshake
    # (ops.certificates.CertificatesByValue), told where to report by the worker
    loaders: tuple[Any, ...] = ()


class OpensslError(FastgateError):
    """OpenSSL refused a setting (nginx's words), or cannot be reached here."""


@functools.cache
def _lib() -> Any:
    import _ssl

    lib = ctypes.CDLL(_ssl.__file__)
    v, c, i, L = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_long
    ssl_p = ctypes.c_void_p
    for name, args, result in (
            ("SSL_CTX_get_options", [v], ctypes.c_uint64),
            ("SSL_CONF_CTX_new", [], v), ("SSL_CONF_CTX_free", [v], None),
            ("SSL_CONF_CTX_set_flags", [v, ctypes.c_uint], ctypes.c_uint),
            ("SSL_CONF_CTX_set_ssl_ctx", [v, v], None), ("SSL_CONF_cmd", [v, c, c], i),
            ("SSL_CONF_CTX_finish", [v], i), ("SSL_CTX_ctrl", [v, i, L, v], L),
            ("SSL_CTX_set_timeout", [v, L], L), ("ERR_clear_error", [], None),
            ("ENGINE_by_id", [c], v), ("ENGINE_set_default", [v, ctypes.c_uint], i),
            ("ENGINE_free", [v], i), ("SSL_CTX_set_verify", [v, i, v], None),
            ("SSL_CTX_set_verify_depth", [v, i], None), ("SSL_get_SSL_CTX", [ssl_p], v),
            ("SSL_get_verify_result", [ssl_p], L),
            ("X509_verify_cert_error_string", [L], c),
            ("SSL_get0_verified_chain", [ssl_p], v), ("OPENSSL_sk_num", [v], i),
            ("OPENSSL_sk_value", [v, i], v),
            ("i2d_X509", [v, ctypes.POINTER(ctypes.c_char_p)], i),
            ("SSL_get_servername", [ssl_p, i], c),
            ("SSL_ctrl", [ssl_p, i, L, v], L), ("SSL_CIPHER_find", [ssl_p, v], v),
            ("SSL_CIPHER_get_name", [v], c), ("OBJ_nid2sn", [i], c),
            ("SSL_get_session", [ssl_p], v),
            ("SSL_SESSION_get_id", [v, ctypes.POINTER(ctypes.c_uint)], v),
            ("d2i_X509", [v, ctypes.POINTER(ctypes.c_char_p), L], v),
            ("X509_free", [v], None), ("X509_get_subject_name", [v], v),
            ("X509_get_issuer_name", [v], v), ("X509_NAME_oneline", [v, c, i], v)):
        f = getattr(lib, name)
        f.argtypes, f.restype = args, result
    return lib


# the CPython releases whose _ssl objects are known to hold the OpenSSL pointer right
# after the object's header (PySSLContext.ctx) and after the socket's weak reference
# (PySSLSocket.ssl): elsewhere, nothing is read
_KNOWN = ((3, 11), (3, 12), (3, 13))


def _pointer(ctx: ssl.SSLContext) -> int:
    if sys.version_info[:2] not in _KNOWN:
        raise OpensslError(f"fastgate does not know where Python {sys.version_info[0]}."
                           f"{sys.version_info[1]}'s ssl module keeps its OpenSSL context")
    lib = _lib()
    ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not ptr or lib.SSL_CTX_get_options(ptr) != ctx.options:
        raise OpensslError("this Python's ssl module keeps its OpenSSL context where "
                           "fastgate cannot reach it")
    return ptr


def conf_commands(ctx: ssl.SSLContext, commands: tuple[tuple[str, str], ...]) -> None:
    """``*_ssl_conf_command NAME VALUE``, each in turn, as nginx applies them (after
    every other setting)."""
    if not commands:
        return
    lib = _lib()
    ptr = _pointer(ctx)
    cctx = lib.SSL_CONF_CTX_new()
    if not cctx:
        raise OpensslError("SSL_CONF_CTX_new() failed")
    try:
        lib.SSL_CONF_CTX_set_flags(cctx, _CONF_FLAGS)
        lib.SSL_CONF_CTX_set_ssl_ctx(cctx, ptr)
        for name, value in commands:
            if lib.SSL_CONF_cmd(cctx, name.encode(), value.encode()) <= 0:
                lib.ERR_clear_error()
                raise OpensslError(f'SSL_CONF_cmd("{name}", "{value}") failed')
        if lib.SSL_CONF_CTX_finish(cctx) != 1:
            lib.ERR_clear_error()
            raise OpensslError("SSL_CONF_finish() failed")
    finally:
        lib.SSL_CONF_CTX_free(cctx)


def curves(ctx: ssl.SSLContext, names: str) -> None:
    """``ssl_ecdh_curve A:B...``: the groups offered."""
    lib = _lib()
    if lib.SSL_CTX_ctrl(_pointer(ctx), _CTRL_SET_GROUPS_LIST, 0,
                        ctypes.cast(ctypes.c_char_p(names.encode()), ctypes.c_void_p)) != 1:
        lib.ERR_clear_error()
        raise OpensslError(f'SSL_CTX_set1_curves_list("{names}") failed')


def session_cache(ctx: ssl.SSLContext, mode: int, size: int | None,
                  timeout: int | None) -> None:
    """nginx's ngx_ssl_session_cache: the cache mode (``CACHE_*``), its size (None:
    OpenSSL's) and the sessions' lifetime (None: OpenSSL's)."""
    lib = _lib()
    ptr = _pointer(ctx)
    lib.SSL_CTX_ctrl(ptr, _CTRL_SET_SESS_CACHE_MODE, mode, None)
    if size is not None:
        lib.SSL_CTX_ctrl(ptr, _CTRL_SET_SESS_CACHE_SIZE, size, None)
    if timeout is not None:
        lib.SSL_CTX_set_timeout(ptr, timeout)


def use_engine(name: str) -> None:
    """``ssl_engine NAME``: the engine made OpenSSL's default for everything, as nginx's
    ngx_openssl_engine (for the whole process, the gateway's upstream TLS included)."""
    lib = _lib()
    e = lib.ENGINE_by_id(name.encode())
    if not e:
        lib.ERR_clear_error()
        raise OpensslError(f'ENGINE_by_id("{name}") failed')
    try:
        if lib.ENGINE_set_default(e, 0xFFFF) == 0:  # ENGINE_METHOD_ALL
            lib.ERR_clear_error()
            raise OpensslError(f'ENGINE_set_default("{name}", ENGINE_METHOD_ALL) failed')
    finally:
        lib.ENGINE_free(e)


# nginx's ngx_ssl_verify_callback: every certificate is let through the handshake; the
# verification's result is read for each request (``verify_result``) and answered there
_ACCEPT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)(lambda ok, store: 1)


def verify_then_answer(ctx: ssl.SSLContext, depth: int) -> None:
    """``ssl_verify_client``: a certificate is asked for and verified (to ``depth`` CAs
    above it, SSL_CTX_set_verify_depth), and the handshake completes whatever the
    verification says — as nginx's, which answers a failed one with 400 "The SSL
    certificate error" (495), or takes it (``optional_no_ca``)."""
    lib = _lib()
    ptr = _pointer(ctx)
    lib.SSL_CTX_set_verify(ptr, 0x01, ctypes.cast(_ACCEPT, ctypes.c_void_p))  # PEER
    lib.SSL_CTX_set_verify_depth(ptr, depth)


def _connection(tls: ssl.SSLObject) -> int:
    """The connection's ``SSL*``, checked against its context's ``SSL_CTX*``."""
    lib = _lib()
    ctx = _pointer(tls.context)  # (first: the release is one whose layout is known)
    inner = getattr(tls, "_sslobj", tls)
    conn = ctypes.c_void_p.from_address(id(inner) + object.__basicsize__
                                        + ctypes.sizeof(ctypes.c_void_p)).value
    if not conn or lib.SSL_get_SSL_CTX(conn) != ctx:
        raise OpensslError("this Python's ssl module keeps its OpenSSL connection where "
                           "fastgate cannot reach it")
    return int(conn)


def verified_chain(tls: ssl.SSLObject) -> list[bytes]:
    """The chain the handshake verified the client's certificate with (DER, the
    certificate first, its root last: SSL_get0_verified_chain, as nginx's OCSP check
    reads it); empty when none was verified. Python 3.13 has it as
    ``get_verified_chain``; 3.11 does not."""
    lib = _lib()
    chain = lib.SSL_get0_verified_chain(_connection(tls))
    if not chain:
        return []
    out = []
    for i in range(lib.OPENSSL_sk_num(chain)):
        cert = lib.OPENSSL_sk_value(chain, i)
        size = lib.i2d_X509(cert, None)
        if size <= 0:
            return []
        buf = ctypes.create_string_buffer(size)
        end = ctypes.c_char_p(ctypes.addressof(buf))
        lib.i2d_X509(cert, ctypes.byref(end))
        out.append(buf.raw)
    return out


def server_name(tls: ssl.SSLObject) -> str:
    """The name a client asked for (SNI) on a server's connection: SSL_get_servername,
    which Python's ssl gives a server only inside its servername callback."""
    name = _lib().SSL_get_servername(_connection(tls), 0)  # (TLSEXT_NAMETYPE_host_name)
    return name.decode("latin-1") if name else ""


# SSL_ctrl's commands (OpenSSL 3's ssl.h) and TLSEXT_nid_unknown
_CTRL_GET_GROUPS, _CTRL_GET_RAW_CIPHERLIST, _CTRL_GET_NEGOTIATED_GROUP = 90, 110, 134
_NID_UNKNOWN = 0x1000000


def client_ciphers(tls: ssl.SSLObject) -> str:
    """The ciphers the client offered, by OpenSSL's names (one it does not know as
    "0x" and its bytes in hex), ":" between them: nginx's ``$ssl_ciphers``
    (SSL_get0_raw_cipherlist)."""
    lib = _lib()
    conn = _connection(tls)
    size = lib.SSL_ctrl(conn, _CTRL_GET_RAW_CIPHERLIST, 0, None)
    raw = ctypes.c_void_p()
    total = lib.SSL_ctrl(conn, _CTRL_GET_RAW_CIPHERLIST, 0, ctypes.byref(raw))
    if size <= 0 or total <= 0 or not raw.value:
        return ""
    data = ctypes.string_at(raw.value, total)
    names = []
    for at in range(0, total - total % size, size):
        cipher = lib.SSL_CIPHER_find(conn, raw.value + at)
        names.append(lib.SSL_CIPHER_get_name(cipher).decode("latin-1") if cipher
                     else "0x" + data[at:at + size].hex())
    return ":".join(names)


def _group(nid: int) -> str:
    if nid & _NID_UNKNOWN:
        return f"0x{nid & 0xFFFF:04x}"
    name = _lib().OBJ_nid2sn(nid)
    return name.decode("latin-1") if name else ""


def client_groups(tls: ssl.SSLObject) -> str:
    """The groups (curves) the client supports, ":" between them: nginx's
    ``$ssl_curves`` (SSL_get1_curves)."""
    lib = _lib()
    conn = _connection(tls)
    n = lib.SSL_ctrl(conn, _CTRL_GET_GROUPS, 0, None)
    if n <= 0:
        return ""
    nids = (ctypes.c_int * n)()
    n = lib.SSL_ctrl(conn, _CTRL_GET_GROUPS, 0, ctypes.cast(nids, ctypes.c_void_p))
    return ":".join(_group(nids[i]) for i in range(max(n, 0)))


def negotiated_group(tls: ssl.SSLObject) -> str:
    """The group the key exchange used: nginx's ``$ssl_curve``
    (SSL_get_negotiated_group); empty when none was."""
    nid = int(_lib().SSL_ctrl(_connection(tls), _CTRL_GET_NEGOTIATED_GROUP, 0, None))
    return _group(nid) if nid > 0 else ""


def session_id(tls: ssl.SSLObject) -> str:
    """The session's id in hex: nginx's ``$ssl_session_id`` (SSL_SESSION_get_id)."""
    lib = _lib()
    session = lib.SSL_get_session(_connection(tls))
    if not session:
        return ""
    size = ctypes.c_uint()
    found = lib.SSL_SESSION_get_id(session, ctypes.byref(size))
    return ctypes.string_at(found, size.value).hex() if found and size.value else ""


def name_oneline(der: bytes, issuer: bool) -> str:
    """A certificate's subject (or issuer) as OpenSSL's X509_NAME_oneline writes it,
    "/C=../CN=..": nginx's ``$ssl_client_s_dn_legacy`` and ``_i_dn_legacy``."""
    lib = _lib()
    start = ctypes.c_char_p(der)
    cert = lib.d2i_X509(None, ctypes.byref(start), len(der))
    if not cert:
        return ""
    try:
        name = (lib.X509_get_issuer_name if issuer else lib.X509_get_subject_name)(cert)
        buf = ctypes.create_string_buffer(16384)
        if not name or not lib.X509_NAME_oneline(name, buf, len(buf)):
            return ""
        return buf.value.decode("latin-1")
    finally:
        lib.X509_free(cert)


# what ssl_verify_client optional_no_ca lets through (nginx's ngx_ssl_verify_error_optional:
# X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, _SELF_SIGNED_CERT_IN_CHAIN,
# _UNABLE_TO_GET_ISSUER_CERT, _UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
# _UNABLE_TO_VERIFY_LEAF_SIGNATURE)
NO_CA_ERRORS = frozenset({18, 19, 2, 20, 21})


def verify_result(tls: ssl.SSLObject) -> tuple[int, str]:
    """The client certificate's verification on a connection: X509_V_OK (0) and "",
    or the error's number and OpenSSL's words for it."""
    lib = _lib()
    conn = _connection(tls)
    code = int(lib.SSL_get_verify_result(conn))
    if code == 0:
        return 0, ""
    words = lib.X509_verify_cert_error_string(code) or b""
    return code, words.decode("latin-1")


__all__ = ["CACHE_NONE", "CACHE_OFF", "CACHE_SERVER", "NO_CA_ERRORS", "OcspPolicy",
           "OpensslError", "ServerContext", "client_ciphers", "client_groups",
           "conf_commands", "curves", "name_oneline", "negotiated_group", "server_name",
           "session_cache", "session_id", "use_engine", "verified_chain", "verify_result",
           "verify_then_answer"]
