from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memcpy

# The heads the engines hand over, declared here so that the other compiled modules
# (the engine, the request, the callback exchange) read their fields as C struct members.

cdef class RequestHead:
    cdef readonly bytes method
    cdef readonly bytes target
    cdef readonly bytes version  # b"1.0" or b"1.1"
    cdef readonly list headers  # [(name, value)], bytes, names as received
    # what the framing says the body is: -1 chunked, else Content-Length (0: none)
    cdef readonly long long content_length
    cdef readonly bint keep_alive
    cdef readonly bint expect_continue
    cdef readonly object upgrade  # the Upgrade value when the client asks to switch


cdef class ResponseHead:
    cdef readonly int status
    cdef readonly bytes reason
    cdef readonly bytes version
    cdef readonly list headers
    cdef readonly long long content_length  # -1 chunked or close-delimited; else its length
    cdef readonly bint keep_alive


cdef class ConnectionInfo:
    cdef readonly str scheme
    cdef readonly str remote_addr
    cdef readonly int remote_port
    cdef readonly str server_addr
    cdef readonly int server_port
    cdef readonly long long connection_id
    cdef readonly str ssl_protocol  # "TLSv1.3"; empty without TLS
    cdef readonly object proxy_protocol  # http.proxy_protocol.ProxyHeader, or None
    cdef readonly object client_certificate  # (DER, verify error, its words), or None
    cdef readonly str http2  # "h2" (TLS) or "h2c" (cleartext) for an HTTP/2 stream; else ""
    cdef readonly object tls  # the connection's ssl.SSLObject ($ssl_cipher...), or None
    cdef readonly object sock  # its socket ($tcpinfo_*), or None
    cdef readonly double started  # the monotonic clock when it was accepted ($connection_time)


# $host from a request's Host header ("": none, None: invalid)
cpdef host_of(list headers)
# the dispatch's first looks at a request: its header lines as nginx screens them, and
# its target's fields when it needs no normalising
cpdef screen_headers(list headers, bint underscores, bint ignore_invalid)
cpdef split_target(bytes raw)

# a request line's bytes past ASCII escaped for the engines' parsers
cpdef bytes escape_past_ascii(bytes line)
# the engines' one-pass parses of a whole simple head (None: llhttp parses it)
cpdef parse_request(bytes data, Py_ssize_t max_header_bytes, Py_ssize_t max_line)
cpdef parse_response(bytes data, bint head_request)
# the standard reason phrase of a status (None: it has none)
cdef bytes phrase_of(int status)
# header lines as the engines write them: serialize's, or into a head being written
cpdef bytes serialize(list headers)
cdef Py_ssize_t fields_size(list headers) except -1
cdef char* write_fields(char* w, list headers)


# a message written in one allocation from pieces of bytes (a head, a page): a piece's
# size (None: none), and the piece written at ``w`` (where it ends)
cdef inline Py_ssize_t piece_size(bytes piece):
    return 0 if piece is None else PyBytes_GET_SIZE(piece)


cdef inline char* put_piece(char* w, bytes piece):
    if piece is None:
        return w
    memcpy(w, PyBytes_AS_STRING(piece), PyBytes_GET_SIZE(piece))
    return w + PyBytes_GET_SIZE(piece)

# header helpers the proxy's compiled modules share (fastgate/proxy/_headers.pyx)
cdef bint header_is(const unsigned char* p, Py_ssize_t n, const char* lname, Py_ssize_t ln)
cdef bint plain_field(bytes name, bytes value)
cdef tuple _connection_tokens(list headers)
cdef list _forward_into(list out, list headers, tuple drop)
cdef object _field_value(str value)
