# The request's fields, declared here so that the other compiled modules (the callback
# exchange) read and write them as C struct members.

from fastgate._wire cimport ConnectionInfo, RequestHead


cdef class Request:
    cdef public RequestHead head
    cdef public str method
    cdef str _target  # made on first use, as are version and memo
    cdef public str uri  # $uri: normalised, decoded
    cdef public str args
    # $args is found though empty (nginx's r->args.data set, its length 0): a rewrite's
    # or an internal redirect's target had a "?", or ``set $args`` ran; a client's
    # empty "?" leaves it unfound, as nginx's
    cdef public bint args_found
    cdef public str host
    cdef public str scheme
    cdef public str remote_addr
    cdef public int remote_port
    cdef public str server_addr
    cdef public int server_port
    cdef public object server  # Server | None
    cdef public object location  # Location | None
    cdef public int status
    cdef public double start  # wall clock at arrival
    cdef public double arrived  # the monotonic clock at arrival: the request's duration
    cdef public long long request_length
    cdef public long long body_bytes_sent
    cdef public long long bytes_sent
    cdef public str upstream_addr
    cdef public str upstream_status
    cdef public list upstream_headers  # the upstream response's, once its head came
    cdef public list sent_headers  # the response head's, as sent (framing aside)
    cdef public double upstream_time  # seconds to the upstream's response head; -1: none
    # seconds to the end of the upstream's response (or of its failed try); -1: not yet
    cdef public double upstream_response_time
    cdef public double upstream_connect_time  # seconds to connect (0: pooled); -1: none
    cdef public long long upstream_bytes_received  # of the current server's exchange
    cdef public long long upstream_bytes_sent  # to it, the same
    # the whole body, read before it goes upstream (proxy_request_buffering) or before
    # the content phase (mirror_request_body): bytes, or a BufferedBody in a file; None:
    # not read whole (it streams from the connection)
    cdef public object body_buffer
    # [(addr, status, seconds, connect, header, received, sent)] of the servers tried
    # before the current one, or None
    cdef public list upstream_tried
    # the target and scheme of the request made for the upstream (the error log's
    # "upstream:" field, nginx's schema, peer and URI); the scheme where it is not the
    # location's proxy_pass's (a URL with variables), else None
    cdef public bytes upstream_target
    cdef public str upstream_scheme
    cdef public str proxy_host
    cdef public str proxy_port
    cdef public long long connection_id
    cdef public long long connection_requests
    cdef public bint pipelined  # $pipe: read from bytes that came with an earlier request
    cdef public ConnectionInfo connection  # what the connection knows ($ssl_protocol)
    cdef public object token  # Token | None
    cdef public tuple captures
    cdef dict _memo
    cdef dict _variables  # ``set``'s, shared with its subrequests (made on first use)
    cdef object _headers
    cdef str _request_id
    # WWW-Authenticate for a 401 the access phase caused (None: it caused none)
    cdef public object challenge
    cdef public bint redirected  # error_page has sent it elsewhere (once, as nginx)
    cdef public int uri_changes  # internal redirects so far (nginx's r->uri_changes)
    # the target as the client wrote it no longer stands for the request (nginx's
    # valid_unparsed_uri cleared): a rewrite, ``set $args``, an internal redirect to a
    # URI, a subrequest — not a jump to a named location. proxy_pass without a URI part
    # then sends the URI and arguments as they are now, escaped
    cdef public bint uri_remade
    # a rewrite changed the URI: 1, and it stays in the location it is in ("break"): 2
    cdef public int rewritten
    # the rest of the request runs in a task: the callback exchange is not for it
    cdef public bint in_task
    cdef public bint limited  # limit_req/limit_conn ran (once per request, as nginx)
    cdef public bint real_address  # the realip module set the address (once, as nginx)
    cdef public bint expect_trailers  # add_trailer's trailers end the chunked response
    # the response went whole and the connection stands ($request_completion's "OK")
    cdef public bint completed
    # the token was verified where auth_jwt has NGINX Plus's form: $jwt_* in its encoding
    cdef public bint jwt_plus
    cdef public int access_code  # satisfy any: the refusal so far (401 over 403)
    cdef public str limit_req_status
    cdef public str limit_conn_status
    cdef public object conn_slots  # [(table, key)] limit_conn counts to release, or None
    # the status an error_page imposes on whatever answers (None: the answer's own)
    cdef public object override
    # the headers an upstream's X-Accel-Redirect carries to the response that answers
    # (None: none)
    cdef public list carried

    cdef int _made(self, RequestHead head, object target, ConnectionInfo info,
                   long long requests, bint pipelined) except -1
    cpdef release_conn_slots(self)
    cpdef sent_body(self, Py_ssize_t framed, Py_ssize_t payload)
    cpdef discard_body(self)
    cpdef expect_tested(self)


# a client's request, made without a Python call (the dispatch's, which reads its
# connection's fields in C)
cdef Request new_request(RequestHead head, tuple target, ConnectionInfo info,
                         long long requests, bint pipelined)


# what ends a request, whichever path answered it (ops.dispatch's Completion derives):
# the callback exchange calls it in C
cdef class RequestEnd:
    cpdef complete(self, conn, Request req, double started)
