# The httptools engine's classes, declared here so that the connection, its exchange
# and the upstream connection (http.server, http.exchange, http.client) call the
# methods they use on every request in C when this is their engine.
from fastgate._wire cimport RequestHead, ResponseHead
from fastgate.http.events cimport ClientEvents, ServerEvents


cdef class _Message:
    cdef RequestHead head
    cdef list chunks
    cdef bint ended
    cdef object error  # ProtocolError | None


cdef class _UpgradeBody:
    cdef _Message msg
    cdef long long left  # Content-Length bytes still to come; -1: chunked
    cdef object _p  # the chunked body's parser
    cdef bytes _tail  # its last bytes given, for a CRLF CRLF across two reads
    cdef bytes feed(self, bytes data)


cdef class HttptoolsServer:
    cdef object _h
    cdef object _p
    cdef Py_ssize_t _max_header_bytes
    cdef Py_ssize_t _max_line
    cdef Py_ssize_t _first_buffer  # client_header_buffer_size
    cdef Py_ssize_t _buffers  # large_client_header_buffers' number
    cdef Py_ssize_t _one_buffer  # a head no longer fits, however it is placed
    cdef list _headers
    cdef bytes _url
    cdef Py_ssize_t _size
    cdef object _queue  # deque of _Message
    cdef bint _active  # a request has been delivered and not finished
    cdef bint _request_ended
    cdef bint _response_done
    cdef bint _keep_alive
    cdef bint _failed
    cdef bint _eof
    cdef bytes _version
    cdef bint _chunked_response
    cdef bint _head_only
    cdef bint _continue_pending
    cdef bytes _upgrade_rest
    # llhttp stopped at a request that asks to upgrade (the rest is the new protocol's
    # if the response switches, else the next request's: a fresh parser reads it)
    cdef bint _stopped
    cdef bint _upgraded
    cdef _UpgradeBody _upgrade_body  # an upgrade request's body still coming, or None
    cdef bint _body_expected
    cdef bint _current_failed
    cdef bint _mid  # inside a message that has not ended
    cdef object _pending_error  # ProtocolError | None
    # the header names of the head being read that llhttp was given stand-ins for:
    # [(index, name)], or None
    cdef object _renamed
    # the bytes of a head that spans reads, as they came, while it is read (b"" once
    # it is whole); and whether they are being collected until it is, for a name only
    # nginx reads that llhttp refused before the head was whole
    cdef bytes _head_so_far
    cdef bint _collecting
    # bytes not given to llhttp yet: they follow a request that has been read whole and
    # wait for its response (the connection stops reading meanwhile), so a flood of
    # pipelined requests costs its raw bytes, one read's worth, never parsed objects
    cdef bytes _held
    cdef bint _held_eof
    # llhttp is given a request a step at a time, never past the end of one, so that the
    # next one starts a fresh step: there its method is looked at, and one llhttp does not
    # know is replaced by a stand-in (the real one is put back in the head)
    cdef bytes _method  # the real method of the request llhttp parses, if stood in for
    cdef bytes _target  # its target as it came, if llhttp was given it percent-encoded
    cdef Py_ssize_t _eol  # where its request line ends in the data being parsed
    # its version is HTTP/1.2 to 1.9, which llhttp refuses: it is given 1.1 (nginx's read)
    cdef bint _one_one
    cdef bytes _start  # the first bytes of a request, its request line not ended yet
    cdef bint _in_body
    cdef Py_ssize_t _body_left  # Content-Length bytes still to come; -1 chunked
    cdef bytes _tail  # the last bytes given to llhttp inside a head or a chunked body
    cdef bytes _alive  # what a response that keeps the connection says of it
    cdef tuple _line_read(self)
    cdef _read_so_far(self, error)
    cdef _version_refused(self)
    cdef _head_read(self)
    cpdef feed(self, data)
    cdef _parse(self, bytes data)
    cdef _collect(self, bytes data)
    cdef _more_upgrade_body(self, bytes data)
    cdef Py_ssize_t _line_start(self, bytes data, Py_ssize_t pos)
    cdef Py_ssize_t _step(self, bytes data, Py_ssize_t pos)
    cdef _fail(self, error)
    cdef _deliver(self)
    cdef _serve(self, RequestHead head)
    cpdef start_next(self)
    cpdef send_head(self, status, reason, headers, content_length, head_only=*,
                    bint chunked=*)
    cpdef send_body(self, data)
    cpdef send_end(self, trailers=*)
    cdef bint _keeps_alive(self)
    cdef bint _backlogged(self)


cdef class HttptoolsClient:
    cdef object _h
    cdef object _p
    cdef list _headers
    cdef bytes _reason  # the status line's reason phrase, as the upstream wrote it
    # the longest response head taken (the location's proxy_buffer_size, set per
    # request by who sends it; 0: any), and the size of the one being read
    cdef public Py_ssize_t head_limit
    cdef Py_ssize_t _head_size
    cdef bint _chunked
    cdef bint _head_request
    # the answer's framing cannot see a body the server may send anyway (see reusable)
    cdef bint _unframed
    cdef bint _sent_done
    cdef bint _recv_done
    cdef bint _keep_alive
    cdef bint _upgraded
    cdef bytes _trailing
    cdef bint _leftover
    cdef bint _broken
    cdef bint _mid  # llhttp is inside a response
    # the response being read has a body that ends where the connection does (no
    # Content-Length, not chunked): httptools cannot tell llhttp of the EOF, so we do
    cdef bint _to_close
    cpdef bind(self, handler)
    cpdef send_head(self, method, target, headers, content_length)
    cpdef send_body(self, data)
    cpdef send_end(self)
    cdef _grown(self, Py_ssize_t n)
    cpdef feed(self, data)
    cdef bint _head_fits(self, bytes data)
    cdef _whole(self, ResponseHead head, bytes data, Py_ssize_t body)
    cpdef start_next(self)
    cpdef leftover(self)
