"""The reference engine: h11, strict and pure Python. No h11 type leaves this module."""

from __future__ import annotations

import re
from typing import Any

import h11
from h11 import _abnf, _headers, _readers, _util

from fastgate._wire import escape_past_ascii, serialize
from fastgate.errors import UpstreamError
from fastgate.http.engine import (
    HEAD_FRAMING,
    INVALID_LENGTH,
    TOO_BIG,
    ClientHandler,
    Headers,
    ProtocolError,
    RequestHead,
    ResponseHead,
    ServerHandler,
    buffers_overflow,
    closed_mid_body,
    closed_mid_head,
    has_name_only_nginx_reads,
    header_lines_only_nginx_reads,
    in_line,
    is_method,
    line_too_long,
    read_as_one_one,
    read_so_far,
    refused_head,
    request_framing_error,
    unfinished_too_large,
    upstream_framing_error,
)
from fastgate.http.h11_scan import (
    fields_bytes,
    head_framing,
    plain_fields,
    plain_framing,
    request_head_scan,
    response_heads_problem,
)

_NO_BODY_STATUS = (204, 304)
_KEEP_ALIVE: Headers = [(b"Connection", b"keep-alive")]
# the end of a message without trailers: h11's events are frozen, one serves every send
_END = h11.EndOfMessage()

# how a request line begins, as nginx reads it: a method (capitals, "_", "-") and a space
_METHOD_SO_FAR = re.compile(rb"[A-Z_-]*\Z|[A-Z_-]+ ")

# h11's request line with bytes past ASCII (obs-text) taken in the target, as nginx
# takes them (and the httptools engine); everything else is h11's own grammar
_REQUEST_LINE = re.compile(_abnf.request_line.replace(
    f"(?P<target>{_abnf.request_target})", r"(?P<target>[\x21-\x7e\x80-\xff]+)"
).encode("ascii"))
_HIGH = re.compile(rb"[\x80-\xff]")
_CHUNK_LINES_SEEN = 65536  # how far into the buffer a chunk line or trailers are read


class _Connection(h11.Connection):
    """h11's server connection, its request heads read with ``_REQUEST_LINE``: h11 has
    no public hook for its grammar, so the reader h11 picks for a client that is IDLE
    (its own ``maybe_read_from_IDLE_client``) is replaced here whenever a cycle begins
    (the raw UTF-8 target tests fail if h11 stops reading through ``_reader``). A
    target with bytes past ASCII is given to h11 percent-encoded (its Request insists
    on ASCII); ``raw_target`` keeps it as it came, for the request just read."""

    def __init__(self, role: Any, **kwargs: Any) -> None:
        self.raw_target: bytes | None = None
        self.refused_head = b""  # the lines of a head h11 refused
        # the lines of the head read last (a head h11 refuses once it is read: its bytes)
        self.read_lines: list[Any] = []
        # the Content-Length values as they came (h11 folds "5, 5" into "5")
        self.raw_lengths: list[bytes] = []
        super().__init__(role, **kwargs)
        self._reader = self._read_request

    def start_next_cycle(self) -> None:
        super().start_next_cycle()
        self._reader = self._read_request  # (the client is IDLE again)

    def keep_asked_alive(self, request: h11.Request) -> None:
        """An HTTP/1.0 request that asks for keep-alive keeps it, as nginx (and the
        httptools engine) keep it: h11 ends every 1.0 connection after one exchange
        (``ab -k`` made a connection per request). Its response then needs a length: h11
        closes one that has none, and says so. Called as h11 has just read the request:
        nothing has moved to MUST_CLOSE yet (the client is sending its body), so the
        flag alone is put back; it was set, as it is whenever a client is IDLE."""
        if request.http_version == b"1.0" and not self._cstate.keep_alive:
            tokens = _headers.get_comma_header(request.headers, b"connection")
            if b"keep-alive" in tokens and b"close" not in tokens:
                self._cstate.keep_alive = True

    def _read_request(self, buf: Any) -> h11.Request | None:
        """h11's ``maybe_read_from_IDLE_client`` with ``_REQUEST_LINE``."""
        lines = buf.maybe_extract_lines()
        if lines is None:
            if buf.is_next_line_obviously_invalid_request_line():
                self.refused_head = bytes(buf)
                raise h11.LocalProtocolError("illegal request line")
            return None
        if not lines:
            raise h11.LocalProtocolError("no request line received")
        self.read_lines = lines
        try:
            matches = _util.validate(_REQUEST_LINE, lines[0], "illegal request line: {!r}",
                                     lines[0])
            if read_as_one_one(bytes(matches["http_version"])):
                matches["http_version"] = b"1.1"  # (HTTP/1.2: read as 1.1, as nginx)
            target = bytes(matches["target"])
            self.raw_target = None
            if _HIGH.search(target):
                self.raw_target = target
                matches["target"] = escape_past_ascii(target)
            try:
                headers = list(_readers._decode_header_lines(lines[1:]))
            except h11.LocalProtocolError:
                taken = header_lines_only_nginx_reads([bytes(line) for line in lines[1:]])
                if taken is None:
                    raise
                headers = taken  # (a name only nginx reads: the phases screen it)
            self.raw_lengths = [bytes(v) for n, v in headers
                                if len(n) == 14 and bytes(n).lower() == b"content-length"]
            return h11.Request(headers=headers, _parsed=True, **matches)
        except h11.LocalProtocolError:
            self.refused_head = self.head_read()
            raise

    def head_read(self) -> bytes:
        """The head read last, whole, as it came."""
        return b"".join(bytes(line) + b"\r\n" for line in self.read_lines) + b"\r\n"


def _in_words(problem: ProtocolError, head: bytes) -> ProtocolError:
    """A ``_head_problem`` of ``head`` (its bytes so far) as nginx says it: a 414
    keeps its own words (and its buffer's worth of line)."""
    if problem.unread is not None:
        return problem
    return refused_head(problem.reason, problem.status, head)


def _request(method: bytes, target: bytes, headers: Headers) -> h11.Request:
    """h11's request to send upstream. Headers ``plain_fields`` has checked as h11
    would are given as checked (h11's regular expressions per header were a tenth of
    the engine's time); so is one with a header named as only nginx reads
    (``ignore_invalid_headers off`` passes it on, as nginx's) — h11 would refuse the
    name; its values were checked where they came from (the client's parser,
    proxy_set_header's). h11 checks the rest, and the method, target and framing of all."""
    if plain_fields(headers) or has_name_only_nginx_reads(headers):
        return h11.Request(method=method, target=target, headers=headers, _parsed=True)
    return h11.Request(method=method, target=target, headers=_trimmed(headers))


def _response(status: int, reason: bytes, headers: Headers) -> h11.Response:
    """h11's response to send, its headers given as checked when ``plain_fields`` has
    checked them as h11 would (h11 checks any other — their values' ends trimmed:
    ``_trimmed`` — and the framing of all)."""
    if type(status) is int and type(reason) is bytes and plain_fields(headers):
        return h11.Response(status_code=status, reason=reason, headers=headers,
                            _parsed=True)
    return h11.Response(status_code=status, reason=reason, headers=_trimmed(headers))


def _trimmed(headers: Headers) -> Headers:
    """``headers`` without SP or HTAB at the ends of their values. Such a line is legal
    (the field line's OWS, RFC 9112 section 5, which every reader drops), and nginx and
    the httptools engine send it as it is (``return 302 "/x$uri"`` for ``/a%20``); h11
    refuses it, so the h11 engine sends the value without them. A value h11 refuses
    for anything else (a CR, an LF, another control byte) stays refused."""
    return [(n, v.strip(b" \t")) if type(v) is bytes else (n, v) for n, v in headers]


class H11Server:
    """Server side of one client connection."""

    def __init__(self, handler: ServerHandler, max_header_bytes: int = 32768,
                 max_line: int = 8192, first_buffer: int = 1024) -> None:
        self._h = handler
        # (the most a head can have: the first buffer's lines and all the large ones)
        self._conn = _Connection(h11.SERVER,
                                 max_incomplete_event_size=first_buffer + max_header_bytes)
        self._failed = False
        self._max_header_bytes = max_header_bytes
        self._max_line = max_line
        self._first_buffer = first_buffer
        # the longest line a buffer holds: one longer than a large buffer may still sit
        # in a larger first buffer (the whole head's placing says, buffers_overflow)
        self._line_cap = max(first_buffer, max_line)
        self._tail = b""
        # Content-Length and Transfer-Encoding lines seen in the head being read
        self._lengths = self._codings = 0
        self._line = 0  # bytes of its request line so far (-1: the line is whole)
        self._head_bytes = 0  # bytes read since its head began (the head's, and any after)
        self._in_head = False  # bytes of the next request's head have arrived
        self._in_body = False  # the head of the request being read has been
        self._eof = False  # the client has closed its side
        self._close = False  # the next response says Connection: close
        self._alive: Headers = _KEEP_ALIVE  # what one that keeps the connection says
        self._chunked = False  # the response being sent is chunked (trailers can follow)
        # the request asked for "100 Continue", and neither it nor a response went yet:
        # kept here, as nginx says it once asked however much of the body has come
        # (h11's own flag goes as soon as it reads the body, or its end)
        self._continue_pending = False
        # the answer to a head h11 refused is framed here: whether its body goes
        self._refusal_body: bool | None = None

    def feed(self, data: bytes) -> None:
        if self._failed:
            return
        conn = self._conn
        if data and conn.their_state is h11.IDLE:
            if not self._in_head and not len(conn._receive_buffer):  # no public accessor
                # RFC 9112 section 2.2: empty lines before a request-line are ignored
                data = data.lstrip(b"\r\n")
                if not data:
                    return
            self._in_head = True
            problem = self._head_problem(data)
            if problem is not None:
                self._failed = True
                # (what h11 holds of the head, unparsed until it is whole, then this)
                head = bytes(conn._receive_buffer) + data
                self._h.on_error(_in_words(problem, head))
                return
        if not data:
            self._eof = True
            if conn.their_state is h11.IDLE and len(conn._receive_buffer):
                self._failed = True  # (a head begun, not whole)
                self._h.on_error(closed_mid_head(bytes(conn._receive_buffer)))
                return
            if conn.their_state is h11.SEND_BODY:
                self._failed = True  # (a body begun, not whole)
                self._h.on_error(closed_mid_body())
                return
        try:
            self._conn.receive_data(data)
        except RuntimeError:  # data after the peer closed: nothing more to parse
            return
        self._drain()

    def _drain(self) -> None:
        conn = self._conn
        h = self._h
        while True:
            if self._in_body and self._bare_cr_or_lf_in_chunk_line():
                self._failed = True
                h.on_error(ProtocolError("bare CR or LF in a chunk-size line or trailer", 400))
                return
            try:
                ev = conn.next_event()
            except h11.RemoteProtocolError as e:
                self._failed = True
                if e.error_status_hint == 431:  # (an unfinished head past all buffers)
                    head = bytes(conn._receive_buffer)
                    h.on_error(read_so_far(unfinished_too_large(head), head))
                    return
                if self._in_body:  # (its head was read: a body h11 cannot read)
                    h.on_error(ProtocolError(str(e), e.error_status_hint))
                else:  # (refused as its head was read, or once it was: h11's framing)
                    h.on_error(refused_head(str(e), e.error_status_hint,
                                            conn.refused_head or conn.head_read()))
                return
            t = type(ev)
            if t is h11.Data:
                h.on_body(bytes(ev.data))  # type: ignore[union-attr]
            elif t is h11.Request:
                conn.keep_asked_alive(ev)  # type: ignore[arg-type]
                self._in_body = True
                self._tail = b""
                read = self._head_bytes  # (an upper bound of the head's size)
                self._lengths = self._codings = self._line = self._head_bytes = 0
                # the headers as received, taken once (iterating h11's Headers goes
                # through the Sequence ABC, item by item)
                raw = list(ev.headers.raw_items())  # type: ignore[union-attr]
                target = conn.raw_target
                if target is None:
                    target = bytes(ev.target)  # type: ignore[union-attr]
                # in nginx's order: the method as it comes, the line's length, its
                # version, then the headers' sizes and framing
                error = self._check_size(ev, target, raw, read)  # type: ignore[arg-type]
                error = (self._check_line(ev, error)  # type: ignore[arg-type]
                         or self._check_framing(ev, raw,  # type: ignore[arg-type]
                                                conn.raw_lengths))
                if error is not None:
                    self._failed = True
                    h.on_error(error)
                    return
                h.on_request(self._head(ev, target, raw))  # type: ignore[arg-type]
            elif t is h11.EndOfMessage:
                self._in_body = False
                self._in_head = len(conn._receive_buffer) > 0
                h.on_end()
                return  # nothing more until start_next(), as the interface promises
            elif t is h11.ConnectionClosed:
                h.on_eof()
                return
            else:  # NEED_DATA, or PAUSED until start_next()
                return

    def _bare_cr_or_lf_in_chunk_line(self) -> bool:
        """The chunk-size line or the trailer section at the reader's position, as far
        as it came, holds a CR that no LF follows (nginx and llhttp refuse it at that
        byte) or an LF that no CR precedes (llhttp refuses it; nginx takes it, as it
        takes bare LFs in a head, which both engines refuse: README). Looked at before
        h11 reads them: h11 takes a bare LF there, and waits for the CRLF that would end
        a line after a bare CR — the client held its connection until
        client_body_timeout. (Chunk data may hold any byte: not looked at.)"""
        reader = self._conn._reader
        if type(reader) is not _readers.ChunkedReader or reader._bytes_in_chunk:
            return False
        # (no public accessor; a size line or a trailer section longer than this is
        # refused by h11's own bound before it matters). h11 reads on from a chunk's
        # CRLF to the next size line, and from a last chunk's to the trailers, in one
        # step: all of it is looked at here.
        data = self._conn._receive_buffer._data
        pos = len(reader._bytes_to_discard)
        end = min(len(data), pos + _CHUNK_LINES_SEEN)
        trailer = reader._reading_trailer
        while True:
            lf = data.find(b"\n", pos, end)
            if lf < 0:  # a line not ended yet: a CR in it with something after
                cr = data.find(b"\r", pos, end)
                return 0 <= cr < end - 1
            line = bytes(data[pos:lf])
            pos = lf + 1
            if not line.endswith(b"\r") or b"\r" in line[:-1]:
                return True
            if trailer:
                if line == b"\r":  # the section's end: what follows is the next request
                    return False
            elif line.split(b";")[0].strip(b" \t\r").strip(b"0"):
                return False  # a chunk's size line: its data follows
            else:
                trailer = True  # the last chunk's: the trailers follow

    def _head_problem(self, data: bytes) -> ProtocolError | None:
        """What h11 would accept in a head but llhttp (our other engine) refuses: obs-fold
        (RFC 9112 section 5.2; h11 unfolds it) and a bare LF ending a line (section 2.2
        allows either). Both are refused, so the engines agree byte for byte. The last
        bytes of the previous read are kept: a CRLF, a fold or the head's end may
        straddle two reads."""
        if self._line >= 0:
            # nginx's 414 as the line grows past a buffer, not once the head is whole
            lf = data.find(b"\n")
            self._line += len(data) if lf < 0 else lf + 1
            if self._line > self._line_cap:
                so_far = bytes(self._conn._receive_buffer) + data
                if not _METHOD_SO_FAR.match(so_far):  # (nginx refused it at its method)
                    return ProtocolError("invalid method")
                return line_too_long(so_far, self._max_line)
            if lf >= 0:
                self._line = -1
            elif not _METHOD_SO_FAR.match(bytes(self._conn._receive_buffer) + data):
                # no request line begins so (TLS on a plain port, say): refused now, as
                # nginx does, not once a line's end or a buffer's worth has come
                return ProtocolError("invalid method")
        self._head_bytes += len(data)
        tail = self._tail
        window = tail + data
        self._tail = window[-3:]
        problem, lengths, codings = request_head_scan(window, len(tail))
        if problem == 1:
            return ProtocolError("obsolete line folding in request header")
        if problem == 2:
            return ProtocolError("bare LF in request head")
        # h11 folds equal Content-Length lines into one and calls a second
        # Transfer-Encoding unsupported (501); nginx refuses either twice with a 400
        self._lengths += lengths
        self._codings += codings
        if self._lengths > 1 or self._codings > 1:  # (refused_head says which)
            return ProtocolError("duplicate framing header")
        return None

    def _check_size(self, ev: h11.Request, target: bytes, raw: Headers,
                    read: int) -> ProtocolError | None:
        """nginx's client_header_buffer_size and large_client_header_buffers: a request
        line or a header line longer than one buffer, or a head its buffers do not
        hold, is refused. h11 only bounds heads that arrive in pieces, so the whole
        head is measured here (``read``: the bytes read since it began)."""
        if read + len(raw) <= self._line_cap:
            # a head no longer than a buffer fits, and so do its lines (each header line
            # measured as nginx keeps it, "NAME: VALUE" and CRLF, is at most a byte longer
            # than it came)
            return None
        request_line = (bytes(ev.method), target, bytes(ev.http_version))
        if len(target) + len(ev.method) + 12 > self._line_cap:  # (CRLF included)
            return line_too_long(b"%s %s HTTP/%s" % request_line, self._max_line)
        return buffers_overflow(request_line, raw, self._first_buffer, self._max_line,
                                self._max_header_bytes // self._max_line)

    @staticmethod
    def _check_line(ev: h11.Request, size: ProtocolError | None) -> ProtocolError | None:
        """What h11 lets through in the request line but nginx and llhttp refuse, and
        ``size`` (``_check_size``'s answer), in the order nginx reads them: a method name
        nginx refuses (h11 takes any token: "get / HTTP/2.0" is a 400), a line too long
        (414), a version other than 1.0 and 1.1 (505), then headers too large."""
        line = (bytes(ev.method), bytes(ev.target), bytes(ev.http_version))
        if not is_method(bytes(ev.method)):
            return in_line(ProtocolError("client sent invalid method", 400, whole=True), line)
        if size is not None and size.status == 414:
            return size
        if ev.http_version not in (b"1.0", b"1.1"):
            return in_line(ProtocolError("client sent invalid version", 505, whole=True), line)
        return size

    def _check_framing(self, ev: h11.Request, raw: Headers,
                       lengths: list[bytes]) -> ProtocolError | None:
        """What h11 lets through in the headers but nginx and llhttp refuse:
        Content-Length beside Transfer-Encoding (a smuggling attempt, RFC 9112 section
        6.3), a length twice or not of digits."""
        line = (bytes(ev.method), bytes(ev.target), bytes(ev.http_version))
        if len(lengths) > 1:  # (h11 folds equal lines into one: the head says how)
            return refused_head("duplicate Content-Length", 400, self._conn.head_read())
        error = None if plain_framing(line[2], raw) else request_framing_error(line[2], raw)
        if error is None and any(not v.strip(b" \t").isdigit() for v in lengths):
            # h11 folds "5, 5" into one length; nginx and llhttp take digits only
            error = ProtocolError(INVALID_LENGTH, 400, whole=True, reading="headers")
        return None if error is None else error.having_read(line, raw)

    def _head(self, ev: h11.Request, target: bytes, headers: Headers) -> RequestHead:
        version = bytes(ev.http_version)
        framing, _, keep_alive, upgrade = head_framing(version, headers)
        self._continue_pending = self._conn.they_are_waiting_for_100_continue
        return RequestHead(
            method=bytes(ev.method),
            target=target,
            version=version,
            headers=headers,
            content_length=framing,
            keep_alive=keep_alive,
            expect_continue=self._continue_pending,
            upgrade=upgrade,
        )

    def start_next(self) -> None:
        conn = self._conn
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            # RFC 9112 section 2.2: empty lines before the next request-line are ignored
            # (llhttp does; h11 would not). h11 has no public way to drop buffered bytes.
            buf = conn._receive_buffer
            if len(buf):
                held = bytes(buf)
                lead = len(held) - len(held.lstrip(b"\r\n"))
                if lead:
                    buf.maybe_extract_at_most(lead)
            self._in_head = len(buf) > 0
            self._tail = b""
            self._lengths = self._codings = self._line = self._head_bytes = 0
            if self._in_head:
                # a pipelined head that arrived while the previous request was served
                held = bytes(buf)
                problem = self._head_problem(held)
                if problem is not None:
                    self._failed = True
                    self._h.on_error(_in_words(problem, held))
                    return
            if self._in_head or self._eof:
                # (with nothing buffered and the client still there, h11 could only
                # answer NEED_DATA)
                self._drain()

    def send_continue(self) -> bytes:
        if not self._continue_pending:
            return b""
        self._continue_pending = False
        if self._conn.our_state is not h11.SEND_RESPONSE:
            return b""
        return self._conn.send(h11.InformationalResponse(status_code=100, headers=[],
                                                         reason=b"Continue")) or b""

    def send_head(self, status: int, reason: bytes, headers: Headers,
                  content_length: int | None, head_only: bool = False,
                  chunked: bool = True) -> bytes:
        self._continue_pending = False
        if self._failed and self._conn.our_state is not h11.SEND_RESPONSE:
            return self._refusal_head(status, reason, headers, content_length, head_only)
        if (not chunked and content_length is None and not head_only and status >= 200
                and status not in _NO_BODY_STATUS):
            # chunked_transfer_encoding off: h11 chunks every body of unknown length for
            # an HTTP/1.1 client, so this head is framed here (its fields checked by h11
            # first) and the body goes as it is, ended by the connection's close
            try:
                _response(status, reason, headers)
            except h11.LocalProtocolError as e:
                raise ProtocolError(f"cannot send response head: {e}", 502) from None
            self._close = True
            return self._refusal_head(status, reason, headers, None, head_only)
        headers = list(headers)  # (the caller's list is theirs)
        if content_length is not None and status not in _NO_BODY_STATUS:
            headers.append((b"Content-Length", b"%d" % content_length))
        if self._close:
            headers.append((b"Connection", b"close"))  # h11 then closes after it
        elif self._conn._cstate.keep_alive and (
                content_length is not None or status in _NO_BODY_STATUS
                or self._conn.their_http_version == b"1.1"):
            # (nginx names the connection's fate on every response; a 1.0 body of no
            # known length is close-delimited: h11 says "close" for it)
            headers.extend(self._alive)
        # h11 frames a body of unknown length chunked for an HTTP/1.1 client
        self._chunked = (content_length is None and not head_only
                         and status not in _NO_BODY_STATUS and status >= 200
                         and self._conn.their_http_version == b"1.1")
        try:
            out = self._conn.send(_response(status, reason, headers)) or b""
        except h11.LocalProtocolError as e:
            raise ProtocolError(f"cannot send response head: {e}", 502) from None
        if head_only and content_length is None:
            # h11 frames a HEAD's head as GET's would be; nginx (and the httptools
            # engine) name no framing for a body that is not sent
            out = out.replace(b"\r\nTransfer-Encoding: chunked\r\n", b"\r\n", 1)
        return out

    def _refusal_head(self, status: int, reason: bytes, headers: Headers,
                      content_length: int | None, head_only: bool) -> bytes:
        """The head of the answer to a head h11 refused before it made a request of it
        (h11 frames nothing in its error state), or of a body h11 would chunk: framed
        here, and it ends the connection (its body, if any, goes as it is:
        close-delimited when its length is not known)."""
        no_body = status in _NO_BODY_STATUS
        self._refusal_body = not (head_only or no_body)
        out = [b"HTTP/1.1 %d %s\r\n" % (status, reason), serialize(headers)]
        if content_length is not None and not no_body:
            out.append(b"Content-Length: %d\r\n" % content_length)
        if not any(n.lower() == b"connection" for n, _ in headers):
            out.append(b"Connection: close\r\n")
        out.append(b"\r\n")
        return b"".join(out)

    def send_body(self, data: bytes) -> bytes:
        if self._refusal_body is not None:
            return data if self._refusal_body else b""
        return self._conn.send(h11.Data(data=data)) or b""

    def send_end(self, trailers: Headers | None = None) -> bytes:
        if self._refusal_body is not None:
            return b""
        if trailers and self._chunked:
            return self._conn.send(h11.EndOfMessage(headers=trailers)) or b""
        return self._conn.send(_END) or b""

    def no_keep_alive(self) -> None:
        self._close = True

    def keep_alive_names(self, timeout: int) -> None:
        self._alive = _KEEP_ALIVE if timeout <= 0 else [
            *_KEEP_ALIVE, (b"Keep-Alive", b"timeout=%d" % timeout)]

    def switch_protocol(self, status: int, reason: bytes, headers: Headers) -> tuple[bytes, bytes]:
        out = self._conn.send(h11.InformationalResponse(status_code=status, reason=reason,
                                                        headers=headers)) or b""
        data, _closed = self._conn.trailing_data
        return out, bytes(data)

    @property
    def keep_alive(self) -> bool:
        conn = self._conn
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    @property
    def discarding(self) -> bool:
        conn = self._conn
        return (not self._close and not self._failed and conn.our_state is h11.DONE
                and conn.their_state is h11.SEND_BODY)

    @property
    def backlogged(self) -> bool:
        """Bytes of a later request wait in h11's buffer (it parses nothing ahead): the
        connection should stop reading until the current response is done."""
        conn = self._conn
        return conn.their_state is not h11.IDLE and conn.their_state is not h11.SEND_BODY \
            and len(conn._receive_buffer) > 0

    @property
    def failed(self) -> bool:
        return self._failed


def _claims_body(head: ResponseHead) -> bool:
    return head.content_length > 0 or any(
        n.lower() == b"transfer-encoding" for n, _ in head.headers)


class H11Client:
    """Client side of one upstream connection."""

    def __init__(self, handler: ClientHandler) -> None:
        self._h = handler
        self._conn = h11.Connection(h11.CLIENT)
        self._broken = False  # a response was refused: nothing more is read from it
        # the answer's framing cannot see a body the server may send anyway: a HEAD's,
        # or a 204/304 that says it has one (see reusable)
        self._unframed = False
        # a response head not whole yet, kept to be checked whole (None: its body)
        self._pending: bytes | None = None
        # the longest response head taken (the location's proxy_buffer_size, set per
        # request by who sends it; 0: h11's own bound)
        self.head_limit = 0

    def bind(self, handler: ClientHandler) -> None:
        """Pooled connections serve one request after another: change who is told."""
        self._h = handler

    def send_head(self, method: bytes, target: bytes, headers: Headers,
                  content_length: int | None) -> bytes:
        self._unframed = method == b"HEAD"
        self._pending = b""
        if content_length is None:
            headers = [*headers, (b"Transfer-Encoding", b"chunked")]
        elif content_length > 0 or (content_length == 0
                                    and method in (b"POST", b"PUT", b"PATCH")):
            headers = [*headers, (b"Content-Length", str(content_length).encode())]
        try:
            if not _HIGH.search(target):
                return self._conn.send(_request(method, target, headers)) or b""
            # bytes past ASCII go as they came (nginx's): h11 is given them escaped, the
            # request line then says them as they are
            escaped = escape_past_ascii(target)
            out = self._conn.send(_request(method, escaped, headers))
        except h11.LocalProtocolError as e:
            # a request h11 will not send (two Host headers from proxy_set_header: nginx
            # and the httptools engine send both): our side's failure, the server not
            # blamed, and the client answered
            raise UpstreamError("local", f"the upstream request is not sent: {e}") from None
        assert out is not None
        return out.replace(b" " + escaped + b" ", b" " + target + b" ", 1)

    def send_body(self, data: bytes) -> bytes:
        return self._conn.send(h11.Data(data=data)) or b""

    def send_end(self) -> bytes:
        return self._conn.send(_END) or b""

    def feed(self, data: bytes) -> None:
        if self._broken:
            return
        limit = self.head_limit
        if limit:  # (h11 bounds a head that is not whole yet: no public setter)
            self._conn._max_incomplete_event_size = limit
        if self._pending is not None and data:
            problem = self._head_problem(data)
            if problem is not None:
                self._broken = True
                self._h.on_error(ProtocolError(problem, 502))
                return
        try:
            self._conn.receive_data(data)
        except RuntimeError:
            return
        conn = self._conn
        h = self._h
        while True:
            try:
                ev = conn.next_event()
            except h11.RemoteProtocolError as e:
                too_big = limit and str(e) == "Receive buffer too long"
                h.on_error(ProtocolError(TOO_BIG if too_big else str(e), 502))
                return
            t = type(ev)
            if t is h11.Data:
                h.on_body(bytes(ev.data))  # type: ignore[union-attr]
            elif t is h11.Response:
                head = self._head(ev)  # type: ignore[arg-type]
                if limit and HEAD_FRAMING + len(head.reason) + fields_bytes(
                        head.headers) > limit:
                    self._broken = True  # (one whole in a read: h11 did not bound it)
                    h.on_error(ProtocolError(TOO_BIG, 502))
                    return
                # (a head framed by its Content-Length has no Transfer-Encoding, and
                # h11 keeps one Content-Length: nothing for the check to weigh)
                invalid = None if head.content_length >= 0 else upstream_framing_error(
                    head.headers)
                if invalid is not None:
                    self._broken = True
                    h.on_error(ProtocolError(invalid, 502))
                    return
                if head.status in (204, 304) and _claims_body(head):
                    self._unframed = True
                h.on_response(head)
            elif t is h11.InformationalResponse:
                h.on_informational(self._head(ev))  # type: ignore[arg-type]
                if conn.their_state is h11.SWITCHED_PROTOCOL:
                    return
            elif t is h11.EndOfMessage:
                h.on_end()
                return
            elif t is h11.ConnectionClosed:
                h.on_error(ProtocolError("upstream closed the connection", 502))
                return
            else:
                return

    def _head_problem(self, data: bytes) -> str | None:
        """What is wrong with the response heads ``data`` completes (interim ones and
        the final one), checked whole before h11 reads them (``response_heads_problem``:
        what h11 takes and nginx refuses); None when nothing is, or when the final head
        is not whole yet (kept for the next read)."""
        assert self._pending is not None
        problem, self._pending = response_heads_problem(self._pending + data)
        return problem

    def _head(self, ev: h11.Response | h11.InformationalResponse) -> ResponseHead:
        headers = list(ev.headers.raw_items())
        version = bytes(ev.http_version)
        framing, has_length, keep_alive, _ = head_framing(version, headers)
        return ResponseHead(
            status=ev.status_code,
            reason=bytes(ev.reason),
            version=version,
            headers=headers,
            content_length=framing if has_length else -1,
            keep_alive=keep_alive,
        )

    @property
    def reusable(self) -> bool:
        # never after a HEAD, or a 204/304 that claims a body: the httptools engine's
        # reason
        conn = self._conn
        return (conn.our_state is h11.DONE and conn.their_state is h11.DONE
                and not self._unframed)

    def start_next(self) -> None:
        self._conn.start_next_cycle()

    def leftover(self) -> bool:
        """Bytes after the end of the response: the upstream sent more than it framed,
        so the connection must not be reused."""
        return len(self._conn._receive_buffer) > 0  # h11 exposes no public accessor

    def trailing_data(self) -> bytes:
        data, _ = self._conn.trailing_data
        return bytes(data)
