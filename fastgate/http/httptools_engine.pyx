# cython: language_level=3
# cython: embedsignature=True
"""The fast engine: httptools (llhttp, C) parses; responses and requests are framed here.

llhttp cannot pause and tells no offsets, so it is given a request a step at a time,
each step ending no later than the request does (a head or a chunked body ends just
after a CRLF CRLF, a Content-Length body after its length): each request starts a
step, where a method llhttp does not know (nginx takes any ``[A-Z_-]+``) is swapped for
a stand-in, and bytes past ASCII in the request line (nginx takes them in a target,
llhttp does not) are given to llhttp percent-encoded, the target as it came put back
in the head. Requests after the current one are queued (head, body chunks, end) and
delivered only after ``start_next()`` — the same contract as the h11 engine. Both engines run the same
test suite; a differential test feeds both the same hostile byte streams.

The fast lane: a read that holds exactly one whole message of the common simple shape
is parsed by ``fastgate._wire`` in one C pass (no llhttp callbacks into Python); it
accepts a strict subset of what llhttp accepts, so anything else goes to llhttp as
before, with llhttp between messages either way.

Compiled: the engine's methods run several times per request, so both sides are C
classes (fields at fixed offsets, internal steps as C methods); llhttp's callbacks are
still Python-visible methods, as httptools calls them by name.
"""

from collections import deque
import httptools

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcmp, memcpy

from fastgate._wire cimport (RequestHead, ResponseHead, escape_past_ascii, fields_size,
                             parse_request, parse_response, phrase_of, piece_size,
                             put_piece, serialize, write_fields)
from fastgate._wire import REASONS
from fastgate.errors import FastgateError
from fastgate.http.engine import (HEAD_FRAMING, LLHTTP_METHODS, TOO_BIG, ProtocolError,
                                  buffers_overflow, closed_mid_body, closed_mid_head,
                                  field_too_long, in_line, line_too_long,
                                  may_name_only_nginx_reads, names_only_nginx_reads,
                                  read_so_far, refused_head, request_framing_error,
                                  unfinished_too_large, upstream_framing_error)


# the most bytes given to llhttp at once: pipelined requests are parsed no further
# ahead than one slice
cdef Py_ssize_t SLICE = 16384


# what llhttp is given in place of a method it does not know (any name nginx takes):
# llhttp frames a request the same whatever its method, CONNECT alone aside
cdef bytes _STAND_IN = b"PUT"
cdef bytes _KEEP_ALIVE = b"Connection: keep-alive\r\n"

cdef extern from "string.h":  # (glibc's; pyconfig.h defines _GNU_SOURCE)
    void *memmem(const void *haystack, size_t haystacklen, const void *needle,
                 size_t needlelen) nogil


cdef bytes _length_line(content_length):
    # (its digits written here: bytes' % costs a thousand instructions per response)
    cdef char line[48]
    cdef long long n
    cdef int k = 0, j
    if type(content_length) is not int or not 0 <= content_length <= 9223372036854775807:
        return b"Content-Length: %d\r\n" % content_length  # (as any value was written)
    n = content_length
    memcpy(line, b"Content-Length: ", 16)
    while True:
        line[16 + k] = <char>(48 + n % 10)
        n //= 10
        k += 1
        if n == 0:
            break
    for j in range(k // 2):  # (the digits came last first)
        line[16 + j], line[15 + k - j] = line[15 + k - j], line[16 + j]
    line[16 + k] = 13
    line[17 + k] = 10
    return PyBytes_FromStringAndSize(line, 18 + k)


cdef inline _on_request(h, RequestHead head):
    # (a client connection's, in C; any other handler's by name)
    if isinstance(h, ServerEvents):
        (<ServerEvents>h).on_request(head)
    else:
        h.on_request(head)


cdef inline _on_end(h):
    if isinstance(h, ServerEvents):
        (<ServerEvents>h).on_end()
    else:
        h.on_end()


cdef _response_parser(handler):
    """llhttp for an upstream's responses: a line may end in a bare LF, as nginx's
    (and h11's) upstream parsers read it — an application that writes "\n" works
    behind nginx. (A client's request never: bare LF there is a 400.)"""
    p = httptools.HttpResponseParser(handler)
    p.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
    return p


cdef _request_parser(handler):
    """llhttp for a client's requests: spaces after a chunk's size are taken, as nginx
    (which reads them as the start of an extension) and h11 take them — the size is the
    same either way, and the body goes upstream framed anew, never as it came."""
    p = httptools.HttpRequestParser(handler)
    p.set_dangerous_leniencies(lenient_spaces_after_chunk_size=True)
    return p


cdef inline bint _method_char(unsigned char c):
    return 65 <= c <= 90 or c == 95 or c == 45  # A-Z _ - (ngx_http_parse_request_line)


cdef inline bint _no_body_status(int status):
    return status == 204 or status == 304


cdef bytes _chunk(bytes data):
    """One chunk of a chunked body (RFC 9112 section 7.1)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


# "HTTP/1.1 200 OK\r\n" for every status with a standard reason phrase, indexed by status
# in C (a dict would make an int object per 4xx/5xx)
cdef list _LINES = [None] * 1000
for _status, _phrase in REASONS.items():
    _LINES[_status] = b"HTTP/1.1 %d %s\r\n" % (_status, _phrase)


cdef bytes _status_line(int status, bytes reason):
    cdef object line
    if 0 <= status < 1000:
        line = _LINES[status]
        if line is not None and reason == phrase_of(status):
            return <bytes>line
    return b"HTTP/1.1 %d %s\r\n" % (status, reason)


cdef bytes _head(bytes a, bytes b, bytes c, bytes d, list headers, bytes framing,
                 bytes fate):
    """A message's head in one allocation: its first line in up to four pieces (None:
    none), its header lines, the framing and connection lines (None: none), the empty
    line — what joining a list of the pieces made, without the list."""
    cdef bytes out = PyBytes_FromStringAndSize(
        NULL, piece_size(a) + piece_size(b) + piece_size(c) + piece_size(d)
        + fields_size(headers) + piece_size(framing) + piece_size(fate) + 2)
    cdef char* w = put_piece(put_piece(put_piece(put_piece(PyBytes_AS_STRING(out), a), b),
                                       c), d)
    w = put_piece(put_piece(write_fields(w, headers), framing), fate)
    w[0] = 13
    w[1] = 10
    return out


cdef inline bytes _trimmed(bytes value):
    """A header value without its trailing whitespace: llhttp keeps it, h11 drops it as
    RFC 9110 says a value has none; so here too, for both engines to read one value
    (requests and upstream responses alike)."""
    if value and (value[-1] == 32 or value[-1] == 9):
        return value.rstrip(b" \t")
    return value


cdef class _Message:
    """A request parsed ahead of the one being served (pipelining)."""

    # (its fields and C methods: httptools_engine.pxd)

    def __init__(self, head):
        self.head = head
        self.chunks = []
        self.ended = False
        self.error = None


cdef class _UpgradeBody:
    """The body of a request that asks to upgrade. httptools tells llhttp such a request
    has no body, whatever its head says, and everything after the head is the new
    protocol's; nginx reads the body its head declares first (and the new protocol
    begins after it, once the upstream switches). This frames that body: its
    Content-Length counted, a chunked one through a parser of its own given a head
    with the same framing."""

    # (its fields and C methods: httptools_engine.pxd)

    def __init__(self, _Message msg):
        self.msg = msg
        msg.ended = False  # (llhttp ended it at its head)
        self.left = msg.head.content_length
        self._p = None
        self._tail = b""
        if self.left < 0:
            self._p = _request_parser(self)
            self._p.feed_data(b"POST / HTTP/1.1\r\nHost: -\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n")

    def on_body(self, body):
        self.msg.chunks.append(body)

    def on_message_complete(self):
        self.msg.ended = True

    cdef bytes feed(self, bytes data):
        """``data`` into the body: what follows the body (the new protocol's), or None
        while it has not ended. ProtocolError for a chunked body that is malformed."""
        cdef Py_ssize_t n = len(data), pos = 0, i, end
        if self._p is None:
            if n < self.left:
                if n:
                    self.msg.chunks.append(data)
                self.left -= n
                return None
            if self.left:
                self.msg.chunks.append(data[:self.left])
            rest = data[self.left:]
            self.left = 0
            self.msg.ended = True
            return rest
        # chunked: a step at a time, each up to a CRLF CRLF (where such a body ends), so
        # that its parser is never given a byte past the end
        while pos < n:
            i = (self._tail + data[pos:]).find(b"\r\n\r\n")
            end = n if i < 0 else pos + i + 4 - len(self._tail)
            try:
                self._p.feed_data(data[pos:end])
            except httptools.HttpParserError as e:
                raise ProtocolError(f"invalid request: {e}", 400) from None
            self._tail = (self._tail + data[pos:end])[-3:]
            pos = end
            if self.msg.ended:
                return data[pos:]
        return None


cdef class HttptoolsServer:
    """Server side of one client connection."""

    # (its fields and C methods: httptools_engine.pxd)

    def __init__(self, handler, Py_ssize_t max_header_bytes=32768, Py_ssize_t max_line=8192,
                 Py_ssize_t first_buffer=1024):
        self._h = handler
        self._alive = _KEEP_ALIVE
        self._p = _request_parser(self)
        # (the most a head can have: the first buffer's lines and all the large ones)
        self._max_header_bytes = first_buffer + max_header_bytes
        self._max_line = max_line
        self._first_buffer = first_buffer
        self._buffers = max_header_bytes // max_line
        self._one_buffer = max(first_buffer, max_line)
        self._headers = []
        self._url = b""
        self._size = 0
        self._queue = deque()
        self._active = False
        self._request_ended = False
        self._response_done = False
        self._keep_alive = True
        self._failed = False
        self._eof = False
        self._version = b"1.1"
        self._chunked_response = False
        self._head_only = False
        self._continue_pending = False
        self._upgrade_rest = b""
        self._stopped = False
        self._upgraded = False
        self._upgrade_body = None
        self._body_expected = False
        self._current_failed = False
        self._mid = False
        self._pending_error = None
        self._renamed = None
        self._head_so_far = b""
        self._collecting = False
        self._held = None
        self._held_eof = False
        self._method = None
        self._target = None
        self._eol = 0
        self._start = None
        self._in_body = False
        self._body_left = 0
        self._tail = b""

    # --- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self):
        self._headers = []
        self._url = b""
        self._size = 0
        self._mid = True
        self._in_body = False

    def on_url(self, url):
        cdef Py_ssize_t n
        self._url += url
        n = len(self._url) if self._target is None else len(self._target)
        # nginx's 414: the line, CRLF included (method, two spaces, "HTTP/1.1", CRLF
        # besides the target), longer than a buffer. (llhttp's methods have 12 bytes at
        # most: its own is asked for only near the limit.)
        if self._method is not None:
            n += len(self._method)
        elif n + 12 + 12 > self._one_buffer:
            n += len(self._p.get_method())
        else:
            return
        # (no buffer holds a longer line; one longer than a large buffer may still sit
        # in the first, larger one: the whole head's placing, at its end, says)
        if n + 12 > self._one_buffer:
            raise ProtocolError("client sent too long URI", 414, whole=True)

    def on_header(self, name, value):
        line = len(name) + len(value) + 4
        if line > self._one_buffer:
            raise self._version_refused() or self._read_so_far(
                field_too_long(name + b": " + value + b"\r\n", self._max_line))
        self._size += line
        if self._in_body:
            # a chunked body's trailer field: dropped, as nginx's chunked parser skips
            # them — never one more header of a request whose head the phases checked
            return
        self._headers.append((name, _trimmed(value)))
        if self._size > self._max_header_bytes:
            # (past all the buffers: where nginx's placing of the lines ran out)
            raise (self._version_refused()
                   or buffers_overflow(self._line_read(), self._headers, self._first_buffer,
                                    self._max_line, self._buffers)
                   or self._read_so_far(field_too_long(name + b": " + value + b"\r\n",
                                                       line)))

    cdef tuple _line_read(self):
        """The request line (the line has been read: a header has come, or the head is
        whole)."""
        p = self._p
        return (self._method if self._method is not None else p.get_method(),
                self._url if self._target is None else self._target,
                p.get_http_version().encode())

    cdef _version_refused(self):
        """nginx's 505 for the request line's version, which it reads before any header
        (a header too long after "HTTP/2.0" is its 505, not a 400); None when the
        version is one it serves."""
        version = self._p.get_http_version().encode()
        if version in (b"1.0", b"1.1"):
            return None
        return in_line(ProtocolError("client sent invalid version", 505, whole=True),
                       self._line_read())

    cdef _read_so_far(self, error):
        """``error``, knowing the request's line and the headers read before it."""
        return error.having_read(self._line_read(), self._headers)

    def on_headers_complete(self):
        try:
            self._head_read()
        except ProtocolError as e:
            # (refused in its line, nginx has read no header of it)
            raise e if e.reading == "line" else self._read_so_far(e)

    cdef _head_read(self):
        p = self._p
        if self._renamed is not None:  # (names_only_nginx_reads' stand-ins: the names)
            for i, name in self._renamed:
                self._headers[i] = (name, self._headers[i][1])
            self._renamed = None
        headers = self._headers
        if self._size + len(self._url) + 40 > self._one_buffer:
            # (a head that may be longer than one buffer: does nginx's placing of it fit
            # them? The method and the line's 14 other bytes are 40 at most.)
            error = buffers_overflow(self._line_read(), headers, self._first_buffer,
                                     self._max_line, self._buffers)
            if error is not None:
                raise self._version_refused() or error
        length = 0
        chunked = False
        expect = False
        upgrade = None
        host_count = 0
        odd = False
        for n, v in headers:
            ln = n.lower()
            if ln == b"content-length":
                length = int(v)
            elif ln == b"transfer-encoding":
                # (as h11 and nginx: chunked is the only coding, and only once)
                odd = odd or chunked or v.lower() != b"chunked"
                chunked = True
            elif ln == b"expect" and v.lower() == b"100-continue":
                expect = True
            elif ln == b"upgrade":
                upgrade = v
            elif ln == b"host":
                host_count += 1
        version = p.get_http_version().encode()
        if version not in (b"1.0", b"1.1"):  # (nginx refuses it in the line, first)
            raise in_line(ProtocolError("client sent invalid version", 505, whole=True),
                          self._line_read())
        if odd or (chunked and version == b"1.0") or (version == b"1.1" and host_count != 1):
            raise request_framing_error(version, headers) or ProtocolError(
                "invalid request head", 400, reading="headers")
        method, self._method = self._method, None
        self._in_body = True
        self._body_left = -1 if chunked else length
        head = RequestHead(
            method=method if method is not None else p.get_method(),
            target=self._url if self._target is None else self._target,
            version=version,
            headers=headers,
            content_length=-1 if chunked else length,
            keep_alive=p.should_keep_alive(),
            expect_continue=expect and version == b"1.1",
            upgrade=upgrade if p.should_upgrade() else None,
        )
        self._queue.append(_Message(head))

    def on_body(self, body):
        if self._body_left > 0:
            self._body_left -= len(body)
        (<_Message>self._queue[-1]).chunks.append(body)

    def on_message_complete(self):
        self._mid = False
        (<_Message>self._queue[-1]).ended = True

    # --- the engine interface --------------------------------------------------------------

    cpdef feed(self, data):
        if self._failed or self._upgraded:
            return
        if self._collecting:
            self._collect(data)
            return
        if self._upgrade_body is not None:
            self._more_upgrade_body(data)
            return
        if self._held is not None:
            if data:
                self._held += data
            else:
                self._held_eof = True
            return
        if data and self._active and self._request_ended:
            self._held = data  # the next request: parsed when this one is answered
            return
        if not (self._active or self._mid or self._queue or self._eof
                or self._start is not None) and data:
            head = parse_request(data, self._one_buffer, self._one_buffer)
            if head is not None:
                self._serve(head)
                return
        if not data:
            self._eof = True
            if self._start is not None:  # (its request line not ended)
                self._fail(closed_mid_head(self._start))
            elif self._mid and not self._in_body:
                self._fail(closed_mid_head(self._head_so_far))
            elif self._mid:  # (inside a message's body: a truncated request)
                self._fail(closed_mid_body())
            elif not self._active and not self._queue:
                self._h.on_eof()
            self._deliver()
            return
        self._parse(data)

    cdef _parse(self, bytes data):
        """``data`` through llhttp a step at a time (``_step``): once the request being
        served has been read whole, or a further one waits in the queue, the rest is held
        back."""
        cdef Py_ssize_t n, pos = 0, end, start, eol, line_at = 0, digit
        cdef bytes piece, line
        cdef bint stand_in, escaped, began
        cdef _Message msg
        if self._start is not None:
            data = self._start + data
            self._start = None
        n = len(data)
        while True:
            start = pos
            stand_in = escaped = False
            began = not self._mid
            if began:
                self._method = None
                self._target = None
                self._one_one = False
                start = self._line_start(data, pos)
                if start < 0:
                    self._start = data[pos:]  # wait for the rest of the request line
                    return
                stand_in = self._method is not None
                escaped = self._target is not None
                line_at = start
            end = self._step(data, start)
            if began and self._one_one and self._eol < end:
                # HTTP/1.2 .. 1.9: llhttp refuses them; nginx reads them as 1.1 (RFC 9110
                # section 2.5), so llhttp is given "1.1", a digit for a digit
                digit = self._eol - (2 if data[self._eol - 1] == 13 else 1)
                data = data[:digit] + b"1" + data[digit + 1:]
            if stand_in or escaped:
                eol = self._eol if self._eol < end else end
                line = data[start + len(self._method):eol] if stand_in else data[start:eol]
                if escaped:
                    line = escape_past_ascii(line)
                piece = data[pos:start] + (_STAND_IN if stand_in else b"") + line + data[eol:end]
            else:
                piece = data[pos:end] if pos or end < n else data
            pos = end
            try:
                self._p.feed_data(piece)
            except httptools.HttpParserUpgrade as e:
                offset = e.args[0] if e.args else len(piece)
                self._stopped = True
                msg = self._queue[-1]
                if msg.head.content_length != 0:
                    # the body its head declares comes first (see _UpgradeBody)
                    self._upgrade_body = _UpgradeBody(msg)
                    self._mid = True
                    rest = piece[offset:] + data[pos:]
                    if rest:
                        self._more_upgrade_body(rest)
                    else:
                        self._deliver()
                    return
                self._upgrade_rest = piece[offset:] + data[pos:]
                msg.ended = True
                self._deliver()
                return
            except httptools.HttpParserCallbackError as e:
                cause = e.__context__
                if isinstance(cause, ProtocolError) and cause.status == 414:
                    # (the line's first bytes are all in this read: see _line_start)
                    cause = line_too_long(data[line_at:], self._max_line)
                self._fail(cause if isinstance(cause, ProtocolError)
                           else ProtocolError(f"invalid request: {e}", 400))
                self._deliver()
                return
            except httptools.HttpParserError as e:
                if self._renamed is None and not self._in_body:
                    # (the head as it came, this read's part of it too)
                    head = (b"" if began else self._head_so_far) + data[start:end]
                    if may_name_only_nginx_reads(head):
                        self._head_so_far = b""
                        self._collecting = True
                        self._collect(head + data[end:])
                        return
                if self._in_body:
                    error = ProtocolError(f"invalid request: {e}", 400)
                else:  # (llhttp keeps nothing of what it read: the head is here)
                    error = refused_head(str(e), 400, (b"" if began else self._head_so_far)
                                         + data[start:end])
                self._fail(error)
                self._deliver()
                return
            if not self._mid:
                self._tail = b""
            elif len(piece) >= 3:
                self._tail = piece[-3:]
            else:
                self._tail = (self._tail + piece)[-3:]
            if self._mid and not self._in_body:  # a head that spans reads: kept
                self._head_so_far = (b"" if began else self._head_so_far) + data[start:end]
            elif self._head_so_far:
                self._head_so_far = b""
            self._deliver()
            if pos >= n:
                return
            if self._active and (self._request_ended or len(self._queue) > 1):
                # the request being served is whole, or a later one is queued behind it
                self._held = data[pos:]
                return

    cdef _collect(self, bytes data):
        """A head with a header name only nginx reads, which llhttp refused: its bytes
        until it is whole (within the headers' limit), then llhttp is given it again
        with stand-ins for those names (``names_only_nginx_reads``); they come back
        once it is read, for the phases to screen as nginx does (ignore_invalid_headers
        drops them, or passes them when off)."""
        if not data:  # (the client's EOF)
            self._eof = True
            self._collecting = False
            self._fail(closed_mid_head(self._head_so_far))
            self._deliver()
            return
        head = self._head_so_far + data
        cdef Py_ssize_t i = head.find(b"\r\n\r\n")
        if i < 0:
            self._head_so_far = head
            if len(head) > self._max_header_bytes:
                self._collecting = False
                self._fail(read_so_far(unfinished_too_large(head), head))
                self._deliver()
            return
        self._collecting = False
        self._head_so_far = b""
        retry = names_only_nginx_reads(head[:i + 4])
        if retry is None:
            self._fail(refused_head("invalid header token", 400, head[:i + 4]))
            self._deliver()
            return
        self._p = _request_parser(self)  # (llhttp keeps its error)
        self._mid = False
        self._tail = b""
        self._renamed = retry[1]
        self._parse(retry[0] + head[i + 4:])

    cdef _more_upgrade_body(self, bytes data):
        """``data`` after the head of an upgrade request with a body: the body's until it
        ends, the new protocol's after (held until the upstream switches)."""
        if not data:
            self._eof = True
            self._fail(closed_mid_body())
            self._deliver()
            return
        try:
            rest = self._upgrade_body.feed(data)
        except ProtocolError as e:
            self._fail(e)
            self._deliver()
            return
        if rest is not None:
            self._upgrade_body = None
            self._mid = False
            self._upgrade_rest = rest
        self._deliver()

    cdef Py_ssize_t _line_start(self, bytes data, Py_ssize_t pos):
        """Where the request starting at ``pos`` has its method (llhttp skips empty lines
        before a request), once its request line is whole (-1 before: more is needed),
        with ``_method`` set when llhttp must be given a stand-in and ``_target`` (the
        target as it came) when the line has bytes past ASCII, ``_eol`` where it ends.
        A line longer than a buffer goes to llhttp as it is (414 there)."""
        cdef const unsigned char* p = data
        cdef Py_ssize_t n = len(data), i = pos, start, eol, t0, t1
        while i < n and (p[i] == 13 or p[i] == 10):
            i += 1
        start = i
        eol = data.find(b"\n", start)
        if eol < 0:
            while i < n and _method_char(p[i]):
                i += 1
            if i < n and (p[i] != 32 or i == start):
                return start  # no request line begins so (TLS, say): llhttp refuses it now
            if start < n and n - pos < self._max_line:
                return -1
            return start  # (empty lines only: llhttp skips them)
        self._eol = eol
        t1 = eol - 1 if eol > start and p[eol - 1] == 13 else eol  # (the line's end)
        self._one_one = (t1 - start > 9 and 50 <= p[t1 - 1] <= 57 and p[t1 - 9] == 32
                         and memcmp(p + t1 - 8, b"HTTP/1.", 7) == 0)
        while i < eol and _method_char(p[i]):
            i += 1
        if i > start and p[i] == 32:
            method = data[start:i]
            if method not in LLHTTP_METHODS:
                self._method = method
        for t0 in range(start, eol):
            if p[t0] >= 128:
                break
        else:
            return start
        # the target: after the method's space, up to the next space (or the line's end)
        t0 = i + 1 if p[i] == 32 else i
        t1 = data.find(b" ", t0, eol)
        if t1 < 0:
            t1 = eol - 1 if eol > t0 and p[eol - 1] == 13 else eol
        self._target = data[t0:t1]
        return start

    cdef Py_ssize_t _step(self, bytes data, Py_ssize_t pos):
        """Where the next step through llhttp ends: never past the end of the request
        being parsed. A request's head, and a chunked body, end just after a CRLF CRLF
        (llhttp takes no bare LF, see the e2e tests), which may straddle two reads; a
        Content-Length body after its last byte."""
        cdef Py_ssize_t n = len(data)
        cdef Py_ssize_t limit = pos + SLICE if n - pos > SLICE else n
        cdef Py_ssize_t i
        if self._mid and self._in_body and self._body_left > 0:
            return pos + self._body_left if self._body_left < limit - pos else limit
        if not self._tail:
            i = data.find(b"\r\n\r\n", pos, limit)
            return limit if i < 0 else i + 4
        i = (self._tail + data[pos:limit]).find(b"\r\n\r\n")
        return limit if i < 0 else pos + i + 4 - len(self._tail)

    cdef _fail(self, error):
        self._failed = True
        cdef _Message msg = self._queue[-1] if self._queue else None
        if msg is not None and not msg.ended:
            msg.error = error
        else:
            self._pending_error = error

    cdef _deliver(self):
        """Hand the handler what belongs to the current request; queue the rest."""
        cdef _Message msg
        h = self._h
        while self._queue:
            msg = self._queue[0]
            if not self._active:
                if not self._response_done and self._request_ended:
                    return  # the previous response is still being written
                self._active = True
                self._request_ended = False
                self._response_done = False
                self._version = msg.head.version
                self._keep_alive = msg.head.keep_alive
                self._continue_pending = msg.head.expect_continue
                self._body_expected = msg.head.content_length != 0
                _on_request(h, msg.head)
            elif self._request_ended:
                return
            chunks, msg.chunks = msg.chunks, []
            for c in chunks:
                h.on_body(c)
            if msg.error is not None:
                self._queue.popleft()
                self._current_failed = True
                h.on_error(msg.error)
                return
            if not msg.ended:
                return
            self._queue.popleft()
            self._request_ended = True
            _on_end(h)
            return
        if not self._active and self._pending_error is not None:
            err, self._pending_error = self._pending_error, None
            h.on_error(err)
        elif not self._active and self._eof:
            h.on_eof()

    cdef _serve(self, RequestHead head):
        """A whole bodiless request from the fast lane: what ``_deliver`` does for one."""
        self._active = True
        self._request_ended = False
        self._response_done = False
        self._version = head.version
        self._keep_alive = head.keep_alive
        self._continue_pending = False
        self._body_expected = False
        h = self._h
        _on_request(h, head)
        self._request_ended = True
        _on_end(h)

    cpdef start_next(self):
        if not self._keeps_alive():
            return
        self._active = False
        self._request_ended = False
        self._response_done = False
        if self._stopped:
            # an upgrade request answered without a switch: what followed it is the
            # next request, as nginx reads it (llhttp, stopped there, starts anew)
            self._stopped = False
            self._p = _request_parser(self)
            self._tail = b""
            rest, self._upgrade_rest = self._upgrade_rest, b""
            if rest:
                self._held = rest + self._held if self._held is not None else rest
        if self._queue or self._pending_error is not None or (
                self._eof and self._held is None):
            self._deliver()
        if self._held is not None and not (self._active or self._failed):
            held, self._held = self._held, None
            self._parse(held)
            if self._held is None and self._held_eof:
                self._held_eof = False
                self.feed(b"")

    @property
    def backlogged(self):
        """Bytes of a later request are held back: the connection should stop reading
        until the current response is done (``start_next``)."""
        return self._backlogged()

    cdef bint _backlogged(self):
        return self._held is not None

    def send_continue(self):
        if not self._continue_pending:
            return b""
        self._continue_pending = False
        return b"HTTP/1.1 100 Continue\r\n\r\n"

    cpdef send_head(self, status, reason, headers,
                  content_length, head_only=False, bint chunked=True):
        self._continue_pending = False
        no_body = head_only or _no_body_status(status) or status < 200
        framing = None
        self._chunked_response = False
        self._head_only = no_body
        if not _no_body_status(status):
            if content_length is not None:
                framing = _length_line(content_length)
            elif not no_body:
                if self._version == b"1.1" and chunked:
                    self._chunked_response = True
                    framing = b"Transfer-Encoding: chunked\r\n"
                else:
                    self._keep_alive = False  # close-delimited
        # (nginx names the connection's fate on every response, 1.1's too)
        return _head(_status_line(status, reason), None, None, None, headers, framing,
                     self._alive if self._keep_alive else b"Connection: close\r\n")

    cpdef send_body(self, data):
        if self._head_only or not data:
            return b""
        return _chunk(data) if self._chunked_response else data

    cpdef send_end(self, trailers=None):
        self._response_done = True
        if self._chunked_response and not self._head_only:
            if trailers:
                return b"0\r\n" + serialize(trailers) + b"\r\n"
            return b"0\r\n\r\n"
        return b""

    def no_keep_alive(self):
        self._keep_alive = False

    def keep_alive_names(self, int timeout):
        self._alive = (_KEEP_ALIVE if timeout <= 0 else
                       _KEEP_ALIVE + b"Keep-Alive: timeout=%d\r\n" % timeout)

    def switch_protocol(self, status, reason, headers):
        self._upgraded = True
        self._keep_alive = False
        out = _head(_status_line(status, reason), None, None, None, headers, None, None)
        rest, self._upgrade_rest = self._upgrade_rest, b""
        if self._held is not None:
            # what the client sent while waiting for the switch (a first frame): the
            # new protocol's as well
            rest, self._held = rest + self._held, None
        return out, rest

    @property
    def keep_alive(self):
        return self._keeps_alive()

    @property
    def discarding(self):
        return (self._keep_alive and not self._current_failed and self._active
                and not self._request_ended and self._response_done and not self._upgraded)

    cdef bint _keeps_alive(self):
        # a parse error further on (a pipelined request) does not end this exchange: it
        # is reported, and answered, when its turn comes (as h11 does)
        return (self._keep_alive and not self._current_failed and self._request_ended
                and self._response_done and not self._upgraded)

    @property
    def failed(self):
        """The request being served was malformed (later ones wait for their turn)."""
        return self._current_failed


class _HeadDone(FastgateError):
    """Raised from on_headers_complete to stop llhttp after a HEAD response's head."""


cdef class HttptoolsClient:
    """Client side of one upstream connection."""

    # (its fields and C methods: httptools_engine.pxd)

    def __init__(self, handler):
        self._h = handler
        self._p = _response_parser(self)
        self._headers = []
        self._reason = b""
        self._chunked = False
        self._head_request = False
        self._unframed = False
        self._sent_done = False
        self._recv_done = False
        self._keep_alive = True
        self._upgraded = False
        self._trailing = b""
        self._leftover = False
        self._broken = False
        self._mid = False
        self._to_close = False

    cpdef bind(self, handler):
        self._h = handler

    # --- framing our request ----------------------------------------------------------------

    cpdef send_head(self, method, target, headers,
                  content_length):
        self._head_request = method == b"HEAD"
        self._unframed = self._head_request
        self._sent_done = False
        self._recv_done = False
        framing = None
        # (the framing in nginx's words: upstreams see its capitals)
        if content_length is None:
            self._chunked = True
            framing = b"Transfer-Encoding: chunked\r\n"
        else:
            self._chunked = False
            # -1: no body and no framing header (a body the configuration dropped)
            if content_length > 0 or (content_length == 0
                                      and method in (b"POST", b"PUT", b"PATCH")):
                framing = _length_line(content_length)
        return _head(method, b" ", target, b" HTTP/1.1\r\n", headers, framing, None)

    cpdef send_body(self, data):
        if not data:
            return b""
        return _chunk(data) if self._chunked else data

    cpdef send_end(self):
        self._sent_done = True
        return b"0\r\n\r\n" if self._chunked else b""

    # --- parsing the response ------------------------------------------------------------------

    def on_message_begin(self):
        self._headers = []
        self._reason = b""
        self._mid = True
        self._head_size = HEAD_FRAMING

    def on_status(self, reason):
        self._reason += reason  # (llhttp hands the phrase over in the pieces it read)
        self._grown(len(reason))

    def on_header(self, name, value):
        if self._headers is None:
            return  # a chunked body's trailer field: dropped, as nginx's proxy drops it
        self._grown(len(name) + len(value) + 4)
        self._headers.append((name, _trimmed(value)))

    cdef _grown(self, Py_ssize_t n):
        self._head_size += n
        if self.head_limit and self._head_size > self.head_limit:
            # nginx's: a head that does not fit proxy_buffer_size
            raise ProtocolError(TOO_BIG, 502)

    def on_headers_complete(self):
        p = self._p
        status = p.get_status_code()
        if status < 100:
            # llhttp takes any three digits; a status below 100 has no class and no
            # meaning (h11 refuses it too): nothing of it goes on
            raise ProtocolError("upstream sent invalid status", 502)
        headers = self._headers
        length = -1
        chunked = False
        for n, v in headers:
            ln = n.lower()
            if ln == b"content-length":
                length = int(v)
            elif ln == b"transfer-encoding":
                chunked = True
        if chunked:
            invalid = upstream_framing_error(headers)
            if invalid is not None:
                raise ProtocolError(invalid, 502)
        head = ResponseHead(status, self._reason, p.get_http_version().encode(),
                            headers, length, p.should_keep_alive())
        # a chunked body's trailer fields are dropped (nginx's proxy skips them):
        # never into the head its variables read (on_header)
        self._headers = None
        if 100 <= status < 200:
            if status == 101:
                self._upgraded = True
            self._h.on_informational(head)
            return
        self._keep_alive = head.keep_alive
        if (status == 204 or status == 304) and (length > 0 or chunked):
            self._unframed = True
        self._to_close = (length < 0 and not chunked and status not in (204, 304)
                          and not self._head_request)
        if self._to_close:
            self._keep_alive = False
        self._h.on_response(head)
        if self._head_request:
            raise _HeadDone()

    def on_body(self, body):
        self._h.on_body(body)

    def on_message_complete(self):
        self._mid = False
        self._to_close = False
        if self._upgraded:
            return
        if self._p.get_status_code() < 200:
            return  # an interim response (100, 103): the real one follows
        self._recv_done = True
        self._keep_alive = self._keep_alive and self._p.should_keep_alive()
        self._h.on_end()

    cpdef feed(self, data):
        if self._broken:
            return
        if self._recv_done and data:
            self._leftover = True  # more than the response framed
            return
        if not data:
            # EOF: ends a close-delimited body, anything else is an error
            if self._to_close and not self._recv_done:
                self._to_close = False
                self._mid = False
                self._recv_done = True
                self._keep_alive = False
                self._h.on_end()
                return
            if not self._recv_done:
                self._broken = True
                self._h.on_error(ProtocolError("upstream closed the connection", 502))
            return
        if not (self._mid or self._upgraded) and self._head_fits(data):
            fast = parse_response(data, self._head_request)
            if fast is not None:
                self._whole(fast[0], data, fast[1])
                return
        try:
            self._p.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            offset = e.args[0] if e.args else len(data)
            self._trailing = data[offset:]
        except httptools.HttpParserCallbackError as e:
            cause = e.__context__
            if isinstance(cause, _HeadDone):
                # the HEAD response is complete at its head; a fresh parser for the next
                self._p = _response_parser(self)
                self._mid = False
                self._recv_done = True
                self._h.on_end()
                return
            self._broken = True
            self._h.on_error(cause if isinstance(cause, ProtocolError)
                             else ProtocolError(f"invalid upstream response: {e}", 502))
        except httptools.HttpParserError as e:
            self._broken = True
            self._h.on_error(ProtocolError(f"invalid upstream response: {e}", 502))

    cdef bint _head_fits(self, bytes data):
        """Whether a response head in ``data`` is within head_limit, for the fast lane
        to read (one past it is llhttp's: its callbacks measure it and refuse it)."""
        cdef Py_ssize_t limit = self.head_limit
        if not limit or PyBytes_GET_SIZE(data) <= limit:
            return True
        return memmem(PyBytes_AS_STRING(data), <size_t>limit, b"\r\n\r\n", 4) != NULL

    cdef _whole(self, ResponseHead head, bytes data, Py_ssize_t body):
        """A whole response from the fast lane, in one callback."""
        self._keep_alive = head.keep_alive
        self._recv_done = True
        h = self._h
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        # (the body copied out, not sliced: a slice object and its protocol per response)
        rest = (PyBytes_FromStringAndSize(PyBytes_AS_STRING(data) + body, n - body)
                if body < n else b"")
        if isinstance(h, ClientEvents):  # (a callback exchange's, in C)
            (<ClientEvents>h).on_whole(head, rest)
        else:
            h.on_whole(head, rest)

    @property
    def reusable(self):
        # never after a HEAD, or a 204/304 whose head claims a body: a server that
        # answers one with a body anyway (HEAD handled as GET) sends bytes the framing
        # cannot see, which the next request on the connection — any client's — would
        # read as its response
        return (self._sent_done and self._recv_done and self._keep_alive and not self._broken
                and not self._upgraded and not self._unframed)

    cpdef start_next(self):
        self._recv_done = False
        self._sent_done = False

    cpdef leftover(self):
        return self._leftover

    def trailing_data(self):
        data, self._trailing = self._trailing, b""
        return data
