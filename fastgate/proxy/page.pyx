# cython: language_level=3, boundscheck=False, wraparound=False
# cython: embedsignature=True
"""A response of fastgate's own written whole — head, body, end — and counted on the
request: the end of ``Responder.send``, compiled, shared with the access phase's
compiled refusal (``proxy.jwt_phase``), so that both write a page one way."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

from fastgate._wire cimport piece_size, put_piece
from fastgate.http.exchange cimport Exchange
from fastgate.proxy.request cimport Request

from fastgate.http.engine import ProtocolError


cpdef bint may_chunk(Request req, settings):
    """Whether a body of unknown length may go chunked (``settings``, a location's:
    ``chunked_transfer_encoding``; an HTTP/2 stream's answer always may, HTTP/2 frames
    it); else it ends with the connection, and has no trailers, as nginx's chunked
    filter leaves it."""
    return settings.chunked_transfer_encoding or (
        req.connection is not None and bool(req.connection.http2))


cpdef bint write_whole(Exchange exchange, Request req, int status, bytes phrase,
                       list headers, object length, bytes body, bint head_only,
                       object trailers, bint chunked=True) except -1:
    """``headers`` as the response's head has them (``$sent_http_*``), ``length`` its
    Content-Length (None: chunked, or unless ``chunked`` ended by the connection's
    close), ``trailers`` the chunked body's. False when the engine cannot frame a
    response now: the exchange is aborted."""
    if exchange is None:
        raise TypeError("a page needs the connection's exchange")
    req.sent_headers = headers
    try:
        out = exchange.respond(status, phrase, headers, length, head_only, chunked)
    except ProtocolError:
        exchange.abort()
        return False
    cdef bytes framed = exchange.body(body) if body and not head_only else None
    cdef bytes end = exchange.end(trailers)
    if framed is None:
        framed = b""
    if end is None:
        end = b""
    cdef Py_ssize_t head = len(out)
    if framed or end:
        out = _joined(out, framed, end)
    exchange.write(out)
    req.bytes_sent = head
    req.body_bytes_sent = 0
    req.sent_body(len(out) - head, 0 if head_only else len(body))
    return True


cdef bytes _joined(bytes a, bytes b, bytes c):
    """The three in one allocation (two ``+`` made two)."""
    cdef bytes out = PyBytes_FromStringAndSize(
        NULL, piece_size(a) + piece_size(b) + piece_size(c))
    put_piece(put_piece(put_piece(PyBytes_AS_STRING(out), a), b), c)
    return out
