"""Our protocol-engine interface: what the proxy needs from an HTTP/1.1 implementation,
and nothing of any particular one.

Two roles:

* ``ServerEngine`` parses requests arriving from a client and frames the responses we
  send back. It calls its ``ServerHandler`` as it parses (``on_request``, ``on_body``,
  ``on_end``, ``on_error``) — callbacks, as httptools does, so no event objects are
  allocated per chunk. After ``on_end`` it delivers nothing more until
  ``start_next()``, which keeps pipelined requests in order.
* ``ClientEngine`` frames requests we send to an upstream and parses its responses,
  calling a ``ClientHandler``.

Heads cross the interface as ``RequestHead`` and ``ResponseHead``, small immutable
classes compiled with the fast lane (``fastgate/_wire.pyx``; a request makes one of
each, so they must be cheap to build); header names and values are bytes, names as
received (``lower()`` them to compare). Errors are
``ProtocolError`` carrying the HTTP status to answer with, as h11's do.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

from fastgate._wire import RequestHead, ResponseHead, normal_host
from fastgate.decimals import decimal
from fastgate.errors import ProtocolError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Headers", "ProtocolError", "RequestHead", "ResponseHead", "ServerHandler",
           "UnreadLine", "ServerEngine", "ClientHandler", "ClientEngine", "upstream_framing_error",
           "LLHTTP_METHODS", "is_method", "read_as_one_one"]

Headers = list[tuple[bytes, bytes]]

# the methods llhttp (the fast engine's parser) knows in a request; it refuses any other
# name, so the fast engine hands it a stand-in for those (httptools_engine)
LLHTTP_METHODS = frozenset(m.encode() for m in (
    "DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND PROPPATCH "
    "SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE M-SEARCH NOTIFY "
    "SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE QUERY").split())

_METHOD_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ_-"

# nginx's words for two heads both engines refuse as it does (400): a chunked body an
# HTTP/1.0 hop before us may not have read as one, and a length that is not digits
TE_ON_HTTP10 = 'client sent HTTP/1.0 request with "Transfer-Encoding" header'
INVALID_LENGTH = 'client sent invalid "Content-Length" header'
# an upstream's response head longer than proxy_buffer_size: a 502, in nginx's words;
# a head is measured as its reason and header lines, each "NAME: VALUE\r\n", and this:
# "HTTP/1.1 200 " and the CRLFs ending the status line and the head
TOO_BIG = "upstream sent too big header while reading response header from upstream"
HEAD_FRAMING = 19


def is_method(name: bytes) -> bool:
    """A method name as nginx takes one (``ngx_http_parse_request_line``): capital letters,
    ``_`` and ``-``. Any such name is served (and proxied) as nginx does; ``get`` or
    ``G3T`` is a 400."""
    return bool(name) and not name.translate(None, _METHOD_CHARS)


class ServerHandler(Protocol):
    def on_request(self, head: RequestHead) -> None: ...
    def on_body(self, data: bytes) -> None: ...
    def on_end(self) -> None: ...
    def on_error(self, error: ProtocolError) -> None: ...
    def on_eof(self) -> None:
        """The client closed its side between requests."""


class ServerEngine(Protocol):
    """Parses one client connection's requests; frames our responses to it."""

    def feed(self, data: bytes) -> None:
        """Bytes from the client. ``b""`` means the client closed its side."""

    def start_next(self) -> None:
        """The current response is complete: parse the next pipelined request."""

    def send_continue(self) -> bytes:
        """``100 Continue``, if the client is waiting for it (else ``b""``)."""

    def send_head(self, status: int, reason: bytes, headers: Headers,
                  content_length: int | None, head_only: bool = False,
                  chunked: bool = True) -> bytes:
        """Frame a response head. ``content_length`` None: the engine picks chunked (1.1,
        when ``chunked``) or close-delimited (1.0, or not ``chunked``: the connection
        ends with the body). ``head_only``: a HEAD request or 204/304 — no body."""

    def send_body(self, data: bytes) -> bytes: ...

    def send_end(self, trailers: Headers | None = None) -> bytes:
        """The response's end; ``trailers`` after a chunked body (else dropped)."""

    def no_keep_alive(self) -> None:
        """The response about to be framed ends the connection (``Connection: close``),
        as nginx's ``r->keepalive = 0``."""

    def keep_alive_names(self, timeout: int) -> None:
        """The ``Keep-Alive: timeout=N`` the responses that keep the connection name
        beside their ``Connection: keep-alive`` from now on (0: none), as the answering
        location's ``keepalive_timeout`` says."""

    def switch_protocol(self, status: int, reason: bytes, headers: Headers) -> tuple[bytes, bytes]:
        """Send a 101; returns (head bytes, bytes already received after the request)."""

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another request after this response."""

    @property
    def discarding(self) -> bool:
        """The response is complete and kept the connection, but the request's body has
        not been read to its end: the rest of it is to be read and dropped (nginx's
        discarded body), then the connection carries the next request (``on_end``
        says when)."""

    @property
    def backlogged(self) -> bool:
        """The engine holds bytes of a request after the current one: the connection
        stops reading until ``start_next`` (pipelining is bounded by one read)."""


class ClientHandler(Protocol):
    def on_response(self, head: ResponseHead) -> None: ...
    def on_informational(self, head: ResponseHead) -> None: ...
    def on_body(self, data: bytes) -> None: ...
    def on_end(self) -> None: ...
    def on_error(self, error: ProtocolError) -> None: ...

    def on_whole(self, head: ResponseHead, body: bytes) -> None:
        """A whole response at once (an engine may call this instead of
        ``on_response``, ``on_body``, ``on_end``): the same, in one call."""


class ClientEngine(Protocol):
    """Frames requests to one upstream connection; parses its responses."""

    def send_head(self, method: bytes, target: bytes, headers: Headers,
                  content_length: int | None) -> bytes:
        """``content_length`` None: chunked; 0: none (``Content-Length: 0`` for POST,
        PUT, PATCH); -1: no body and no framing header whatever the method."""

    def send_body(self, data: bytes) -> bytes: ...
    def send_end(self) -> bytes: ...
    def feed(self, data: bytes) -> None: ...

    @property
    def reusable(self) -> bool:
        """Both messages ended cleanly and the upstream allows keep-alive — never after
        a HEAD, or a 204/304 whose head claims a body: their framing cannot see a body
        a broken server sends anyway, which the next request would read."""

    def start_next(self) -> None: ...

    def leftover(self) -> bool:
        """Bytes received beyond the framed response (never reuse such a connection)."""

    def trailing_data(self) -> bytes:
        """Bytes received after a 101 response: the tunnel's first bytes."""


# a request line as nginx reads one (its method: capitals, "_" and "-")
_LINE = re.compile(rb"([A-Z_-]+) ([\x21-\x7e\x80-\xff]+) HTTP/(\d\.\d)")
_FIELD = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*")
_LINE_END = re.compile(rb"[\r\n]")
# how a target nginx reads begins: a path, or a scheme and "://"
_TARGET_START = re.compile(rb"/|[A-Za-z]+://")


class UnreadLine(RequestHead):
    """The head of a request whose line could not be read as one: no method, target or
    headers, and ``line``, the line's bytes as they came (as ``$request`` holds them:
    nginx's r->request_line, from the line's first byte)."""

    def __init__(self, unread: bytes, version: bytes = b"") -> None:
        super().__init__(b"", b"", version, [], 0, False, False, None)
        self.line = unread.decode("utf-8", "surrogateescape")


def read_so_far(error: ProtocolError, head: bytes) -> ProtocolError:
    """``error``, knowing what ``head`` (the refused head's bytes as they came, from
    its request line on) shows was read before it: its line, if it is one, and the
    header lines up to the first that is not one — the engines' parsers keep neither
    once they fail. A line that is not one is kept as it came (``unread``), up to its
    first CR or LF, as nginx logs it."""
    if error.unread is not None:  # (a 414 keeps its buffer's worth, whole line or not)
        return error
    head = head.lstrip(b"\r\n")
    lines = head.split(b"\r\n")
    line = _LINE.fullmatch(lines[0])
    if line is None:
        end = _LINE_END.search(head)
        error.unread = head if end is None else head[:end.start()]
        return error
    headers = []
    for text in lines[1:]:
        field = _FIELD.fullmatch(text)
        if field is None:
            break
        headers.append((field[1], field[2]))
    return error.having_read((line[1], line[2], line[3]), headers)


def refused_head(text: str, status: int, head: bytes) -> ProtocolError:
    """A request head an engine's parser refused (``text``, ``status``: its parser's
    reason and answer; ``head``: the head's bytes as far as they came), in nginx's
    words for the same bytes, with what was read before the error (``read_so_far``).
    nginx reads the request line, then each header line in turn, then the head's
    headers together, and says what stopped it first: a method or a line it cannot
    read, a version past 1.x; a header line it cannot (``client sent invalid header
    line: "NAME\\x20..."``: the line as far as it read and the byte it stopped at); a
    header twice, a length or coding it refuses (``request_framing_error``). Where nginx
    reads a line our parsers refuse (a control byte or a bare CR in a value), the
    refusal is said the same way, at that byte; anything else keeps the parser's
    reason."""
    lines = head.lstrip(b"\r\n").split(b"\r\n")
    line = _LINE.fullmatch(lines[0]) if len(lines) > 1 else None
    if line is None or not _TARGET_START.match(line[2]):
        return _line_refused(lines[0], len(lines) > 1)
    request = (line[1], line[2], line[3])
    if line[3] not in (b"1.0", b"1.1") and not read_as_one_one(line[3]):
        return in_line(ProtocolError("client sent invalid version", 505, whole=True), request)
    ending = lines[-1].endswith(b"\r")  # (the last line, unfinished, was ending)
    if ending:
        lines[-1] = lines[-1][:-1]
    fields: Headers = []
    whole = False
    for i in range(1, len(lines)):
        text_line = lines[i]
        if not text_line:
            whole = i < len(lines) - 1  # (an empty line ended: the head's end)
            break
        at = _unreadable_at(text_line, ending or i < len(lines) - 1)
        if at is not None:
            shown = text_line[:at].decode("latin-1")
            stop = text_line[at] if at < len(text_line) else 0x0d  # (or the line's CR)
            return ProtocolError(
                f'client sent invalid header line: "{shown}\\x{stop:02x}..."', 400,
                whole=True, reading="headers").having_read(request, fields)
        name, _, value = text_line.partition(b":")
        fields.append((name, value.strip(b" \t")))
    error = request_framing_error(b"1.1" if read_as_one_one(line[3]) else line[3], fields,
                                  whole)
    if error is None:
        error = ProtocolError(text, status, reading="headers")
    return error.having_read(request, fields)


def _line_refused(line: bytes, ended: bool) -> ProtocolError:
    """nginx's refusal of a request ``line`` it cannot read (``ended``: its CRLF came):
    its method's (capitals, ``_``, ``-``, then a space), else the line's."""
    space = line.find(b" ")
    method = line if space < 0 else line[:space]
    words = "client sent invalid method" if not is_method(method) or (space < 0 and ended) \
        else "client sent invalid request"
    error = ProtocolError(words, 400, whole=True, reading="line")
    end = _LINE_END.search(line)  # (logged up to its first CR or LF, as nginx's)
    error.unread = line if end is None else line[:end.start()]
    return error


def _unreadable_at(line: bytes, ended: bool) -> int | None:
    """Where nginx's header line parser stops on ``line`` (a header line without its
    CRLF; ``ended``: the CRLF came), or where our parsers do: a name starting with a
    space, a control byte or a colon, or holding a space or a control byte; a value
    holding a control byte other than a tab (nginx stops at NUL only) — None if it
    reads the line whole. A line without a colon stops at its end (nginx takes it as
    a header without a value; both our parsers refuse it): its CR."""
    colon = line.find(b":")
    if colon == 0:
        return 0
    name = line if colon < 0 else line[:colon]
    bad = _NAME_STOP.search(name)
    if bad is not None:
        return bad.start()
    if colon < 0:
        return len(line) if ended else None
    bad = _VALUE_STOP.search(line, colon + 1)
    return None if bad is None else bad.start()


_NAME_STOP = re.compile(rb"[\x00-\x20\x7f]")
_VALUE_STOP = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def request_framing_error(version: bytes, fields: Sequence[tuple[bytes, bytes]],
                          whole: bool = True) -> ProtocolError | None:
    """nginx's refusal of a request's header lines (its unique-header handlers, then
    ``ngx_http_process_request_header``), in its order: a second Host, Content-Length
    or Transfer-Encoding as it is read (the two lines in the message as they came), a
    Host that is not valid; once the head is ``whole``, an HTTP/1.1 request without a
    Host; a Content-Length that is not digits; a Transfer-Encoding on HTTP/1.0, other
    than ``chunked`` (501), or beside a Content-Length — said of a head cut short too,
    as nginx would say it once the head ends. None: nginx takes the lines (an invalid
    Host alone is then refused where the request's host is read, in the same words)."""
    error = _framing_error(version, fields, whole)
    if error is None or error is _BAD_HOST:
        return None if error is None else _in_headers("client sent invalid host header")
    return error


_BAD_HOST = ProtocolError("client sent invalid host header", 400)


def _framing_error(version: bytes, fields: Sequence[tuple[bytes, bytes]],
                   whole: bool) -> ProtocolError | None:
    """request_framing_error's reading; ``_BAD_HOST`` when an invalid Host line comes
    before what else it would refuse."""
    host = length = coding = None
    bad_host = False
    for field in fields:
        name = field[0]
        if len(name) not in (4, 14, 17):
            continue
        low = name.lower()
        if low == b"host":
            if bad_host:
                return _BAD_HOST
            if host is not None:
                return _twice("client sent duplicate host header", field, host)
            host = field
            # (nginx stops at it as its line is read; of a head cut short the last line
            # may not have ended)
            bad_host = normal_host(field[1]) is None and (whole or field is not fields[-1])
        elif low == b"content-length":
            if length is not None:
                return _BAD_HOST if bad_host else _twice(
                    "client sent duplicate header line", field, length)
            length = field
        elif low == b"transfer-encoding":
            if coding is not None:
                return _BAD_HOST if bad_host else _twice(
                    "client sent duplicate header line", field, coding)
            coding = field
    error = _head_error(version, host, length, coding, whole)
    return _BAD_HOST if error is not None and bad_host else error


def _head_error(version: bytes, host: tuple[bytes, bytes] | None,
                length: tuple[bytes, bytes] | None, coding: tuple[bytes, bytes] | None,
                whole: bool) -> ProtocolError | None:
    """nginx's ngx_http_process_request_header: the checks of the head as a whole."""
    if whole and host is None and version == b"1.1":
        return _in_headers('client sent HTTP/1.1 request without "Host" header')
    if length is not None and decimal(length[1]) is None:  # (ngx_atoof's)
        return _in_headers(INVALID_LENGTH)
    if coding is None:
        return None
    if version == b"1.0":
        return _in_headers(TE_ON_HTTP10)
    # nginx reads the coding before the length beside it (501 either way); of a head
    # cut short (our parser stopped inside the coding's line) the coding is not known
    # yet, the length beside it is
    if coding[1].lower() != b"chunked" and (whole or length is None):
        return _in_headers('client sent unknown "Transfer-Encoding": '
                           f'"{coding[1].decode("latin-1")}"', 501)
    if length is not None:
        return _in_headers('client sent "Content-Length" and "Transfer-Encoding" headers '
                           'at the same time')
    return None


def _in_headers(words: str, status: int = 400) -> ProtocolError:
    return ProtocolError(words, status, whole=True, reading="headers")


def _twice(words: str, field: tuple[bytes, bytes], first: tuple[bytes, bytes]) -> ProtocolError:
    return _in_headers(_two_lines(words, field, first))


def _two_lines(words: str, field: tuple[bytes, bytes], first: tuple[bytes, bytes]) -> str:
    """nginx's words for a header it takes once, given twice (a request's or an
    upstream's): both lines as they came."""
    def shown(f: tuple[bytes, bytes]) -> str:
        return f"{f[0].decode('latin-1')}: {f[1].decode('latin-1')}"
    return f'{words}: "{shown(field)}", previous value: "{shown(first)}"'


def duplicate_header(headers: Sequence[tuple[bytes, bytes]], low: bytes) -> ProtocolError:
    """nginx's refusal of a header it takes once (``low``, its name in lower case)
    that ``headers`` has twice: both lines in its message, as they came."""
    first = None
    for field in headers:
        if field[0].lower() == low:
            if first is not None:
                return _twice("client sent duplicate header line", field, first)
            first = field
    raise ValueError(f"{low!r} is not in the headers twice")


def closed_mid_head(head: bytes) -> ProtocolError:
    """The client closed its side with ``head`` (its bytes from the request line on)
    not whole: nginx's "client prematurely closed connection", answered with nothing,
    logged as a 400 with what was read."""
    error = read_so_far(ProtocolError("client prematurely closed connection", 400,
                                      whole=True), head)
    error.reading = "headers" if error.line is not None else "line"
    error.gone = True
    return error


def closed_mid_body() -> ProtocolError:
    """The client closed its side before its body was whole: nginx's "client
    prematurely closed connection", answered with nothing, logged as a 400."""
    error = ProtocolError("client prematurely closed connection", 400, whole=True)
    error.gone = True
    return error


def line_too_long(head: bytes, max_line: int) -> ProtocolError:
    """nginx's 414: a request line (CRLF included) longer than one of
    large_client_header_buffers. nginx logs as $request the buffer the line did not
    end in: ``head``'s first ``max_line`` bytes from the line's start."""
    error = ProtocolError("client sent too long URI", 414, whole=True, reading="line")
    error.unread = head.lstrip(b"\r\n")[:max_line]
    return error


def field_too_long(text: bytes, shown: int) -> ProtocolError:
    """nginx's 494 for the header line ``text`` that outgrew its buffers, logged with
    the ``shown`` bytes of it the last buffer held (at most NGX_MAX_ERROR_STR - 300)."""
    return ProtocolError(
        f'client sent too long header line: "{text[:min(shown, 1748)].decode("latin-1")}..."',
        494, whole=True, reading="headers")


def unfinished_too_large(head: bytes) -> ProtocolError:
    """nginx's 494 for a ``head`` that has outgrown all of its buffers before its end:
    its last line, unfinished, is the header line too long — unless its request line,
    which nginx read first, has a version it refuses (505)."""
    lines = head.lstrip(b"\r\n").split(b"\r\n", 1)
    line = _LINE.fullmatch(lines[0]) if len(lines) > 1 else None
    if line is not None and line[3] not in (b"1.0", b"1.1") and not read_as_one_one(line[3]):
        return in_line(ProtocolError("client sent invalid version", 505, whole=True),
                       (line[1], line[2], line[3]))
    return field_too_long(head[head.rfind(b"\r\n") + 2:], len(head))


def head_overflow(lines: Sequence[int], first: int, size: int,
                  count: int) -> tuple[int, int] | None:
    """Where a head runs out of nginx's buffers, placed as
    ngx_http_alloc_large_header_buffer places it: ``lines`` are the bytes of its
    request line, header lines and final CRLF, ``first`` is client_header_buffer_size
    and ``count`` x ``size`` large_client_header_buffers. A line that does not fit
    what is left of a buffer moves, whole, to the next one, and what it leaves behind
    is lost — so heads that add up to less than the buffers can still outgrow them.
    None when the head fits, else (the line's index, its bytes in the buffer it
    outgrew)."""
    cap, used, busy = first, 0, 0
    for i, n in enumerate(lines):
        if used + n <= cap:
            used += n
            continue
        partial = cap - used
        if partial >= size or busy == count:
            return i, partial
        if n > size:  # (moved, it fills the new buffer and goes on still)
            return i, size
        busy += 1
        cap, used = size, n
    return None


def buffers_overflow(line: tuple[bytes, bytes, bytes], fields: Sequence[tuple[bytes, bytes]],
                     first: int, size: int, count: int) -> ProtocolError | None:
    """nginx's answer to a whole head (request ``line``, header ``fields``) that does
    not fit its buffers (``head_overflow``): 414 for the line, 494 for a header
    line; None when it fits. A head no longer than one buffer always fits."""
    lines = [len(line[0]) + len(line[1]) + 12,
             *[len(name) + len(value) + 4 for name, value in fields], 2]
    if sum(lines) <= max(first, size):
        return None
    spot = head_overflow(lines, first, size, count)
    if spot is None:
        return None
    i, shown = spot
    if i == 0:
        return line_too_long(b"%s %s HTTP/%s" % line, size)
    if i > len(fields):  # (the final CRLF: nginx's "too large request")
        return ProtocolError("client sent too large request", 494, whole=True,
                             reading="headers").having_read(line, fields)
    name, value = fields[i - 1]
    return field_too_long(name + b": " + value + b"\r\n", shown).having_read(line, fields[:i - 1])


def read_as_one_one(version: bytes) -> bool:
    """A version nginx reads as HTTP/1.1: 1.2 to 1.9, as RFC 9110 section 2.5 asks (a
    higher minor version is processed as the highest one the recipient implements). The
    engines' parsers read one digit after the dot; nginx reads up to three (1.10, 1.999),
    which stay a 400 here."""
    return len(version) == 3 and version[:2] == b"1." and 50 <= version[2] <= 57


def in_line(error: ProtocolError, line: tuple[bytes, bytes, bytes]) -> ProtocolError:
    """``error``, refused in the request ``line`` (method, target, version) as nginx
    reads it — its method, its version past 1.x (505): before any Host, and logged
    as it came."""
    error.unread = b"%s %s HTTP/%s" % line
    error.reading = "line"
    return error


# a header name nginx reads though it is no token to llhttp or h11 — bytes past ASCII,
# the double quote, "(),/;<=>?@[\]{}" — calling it invalid: ignore_invalid_headers drops
# it (the default), or passes it on when off. A space, a control byte or DEL in a name
# still ends the request, as nginx's.
_NGINX_ONLY_NAME = re.compile(rb"[^\x00-\x20\x7f:]+")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")  # (both parsers' values)


def _only_nginx_reads(name: bytes) -> bool:
    return bool(_NGINX_ONLY_NAME.fullmatch(name)) and not _TOKEN.fullmatch(name)


def names_only_nginx_reads(head: bytes) -> tuple[bytes, list[tuple[int, bytes]]] | None:
    """``head`` (a whole request head, CRLF CRLF and all) with each header name only
    nginx reads stood in for by one of as many ``x`` (the head's size stays what the
    limits measure), and those names by their header's index; None when it has none
    (the parser refused it for something else)."""
    lines = head.split(b"\r\n")
    found = []
    for i in range(1, len(lines)):
        name, colon, value = lines[i].partition(b":")
        if colon and _only_nginx_reads(name):
            found.append((i - 1, name))
            lines[i] = b"x" * len(name) + colon + value
    if not found:
        return None
    return b"\r\n".join(lines), found


def may_name_only_nginx_reads(head: bytes) -> bool:
    """Whether ``head``, a head as far as it came (its request line first), names a
    header as only nginx reads, in a whole line or the one still coming."""
    for line in head.split(b"\r\n")[1:]:
        if _only_nginx_reads(line.partition(b":")[0]):
            return True
    return False


def has_name_only_nginx_reads(headers: Headers) -> bool:
    """Whether a header of ``headers`` is named as only nginx reads (passed on to an
    upstream under ``ignore_invalid_headers off``, as nginx's)."""
    return any(_only_nginx_reads(name) for name, _ in headers)


def header_lines_only_nginx_reads(lines: list[bytes]) -> list[tuple[bytes, bytes]] | None:
    """Header ``lines`` as nginx reads them, where one has a name only nginx reads
    (``names_only_nginx_reads``): (name, value) each, the value without the spaces
    around it; None when a line is no header even to nginx."""
    out = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not _NGINX_ONLY_NAME.fullmatch(name) \
                or not _FIELD_VALUE.fullmatch(value):
            return None
        out.append((name, value.strip(b" \t")))
    return out


def upstream_framing_error(headers: Headers) -> str | None:
    """Why a response head's framing cannot be trusted, in nginx's words, or None.

    As ``ngx_http_proxy_process_header``: ``Transfer-Encoding`` other than ``chunked``
    (h11 refuses it too, llhttp does not), twice (either header), or beside a
    ``Content-Length`` (RFC 9112 section 6.3: "ought to be handled as an error"; h11
    lets chunked win). Such a response is a 502 and none of it reaches the client:
    whichever framing a client or a cache downstream believed, it could be told a
    different story than the one checked here."""
    te: bytes | None = None
    cl: bytes | None = None
    for name, value in headers:
        n = name.lower()
        if n == b"transfer-encoding":
            if te is not None:
                return _two_lines(_UPSTREAM_TWICE, (b"Transfer-Encoding", value),
                                  (b"Transfer-Encoding", te))
            te = value
        elif n == b"content-length":
            if cl is not None:
                return _two_lines(_UPSTREAM_TWICE, (b"Content-Length", value),
                                  (b"Content-Length", cl))
            cl = value
    if te is None:
        return None
    if te.strip().lower() != b"chunked":
        return f'upstream sent unknown "Transfer-Encoding": "{te.decode("latin-1")}"'
    if cl is not None:
        return ('upstream sent "Content-Length" and "Transfer-Encoding" headers at the '
                'same time')
    return None


_UPSTREAM_TWICE = "upstream sent duplicate header line"
