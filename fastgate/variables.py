"""Variables: the registry of names, compiled value templates, and lazy ``map`` blocks.

A value such as ``"Bearer $jwt_claim_sub-$host"`` is compiled once, at load, into a
``Template``: literal text and getter functions. Rendering calls only the getters it
holds, so a variable is computed only when something uses it. ``map`` results are
memoised per request in ``r.memo``.

Getters take the request state object of the proxy (``fastgate.proxy.request.Request``)
and read its attributes; this module does not import it, so there is no cycle and the
config can be tested without a server.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import time
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from fastgate import browsers, client_certificate, geoip, secure_link, ssl_variables, userid
from fastgate._core import ClaimGetter
from fastgate.config.errors import ConfigError
from fastgate.config.referers import VALID
from fastgate.cookie_header import cookie_of

Getter = Callable[[Any], str]

# $name or ${name}; names are [A-Za-z0-9_] as in nginx
_VAR = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def _header(name: str) -> Getter:
    wanted = name.replace("_", "-")

    def get(r: Any) -> str:
        values = [v for n, v in r.headers if n == wanted]
        if not values:
            return ""
        # nginx joins repeated headers with ", " (and "; " for Cookie)
        return ("; " if wanted == "cookie" else ", ").join(values)

    return get


def _content_length(r: Any) -> str:
    """The request's Content-Length; for a chunked body read whole, its length once
    read (nginx's: what the stock fastcgi_params and uwsgi_params send as
    CONTENT_LENGTH, without which an application reads no body)."""
    given = _CONTENT_LENGTH(r)
    if given:
        return given
    body = r.body_buffer
    if body is None:
        return ""
    return str(len(body) if isinstance(body, bytes) else body.size)


_CONTENT_LENGTH = _header("content_length")


def _arg(name: str) -> Getter:
    def get(r: Any) -> str:
        return query_arg(r.args, name)

    return get


def found_arg(args: str, name: str) -> str | None:
    """The value of the first ``name=value`` of a query string, undecoded, empty or not;
    None when there is none: nginx's ngx_http_arg (``name`` alone, without "=", is not
    it: it reads on)."""
    if not args:
        return None
    for part in args.split("&"):
        key, eq, value = part.partition("=")
        if eq and key.lower() == name:
            return value
    return None


def query_arg(args: str, name: str) -> str:
    """``$arg_NAME``: ``found_arg``'s value, empty when there is none."""
    return found_arg(args, name) or ""


def _cookie(name: str) -> Getter:
    def get(r: Any) -> str:
        return cookie_value(r.headers, name)

    return get


def cookie_value(headers: list[tuple[str, str]], name: str) -> str:
    return cookie_of(headers, name) or ""


def memoised(name: str, evaluate: Callable[[Any], str]) -> Getter:
    """A lookup's getter (map, geo, split_clients): computed once per request, in its
    memo; one that refers to itself reads empty, never loops."""

    def get(r: Any) -> str:
        memo = r.memo
        if name in memo:
            value: str = memo[name]
            return value
        memo[name] = ""
        value = evaluate(r)
        memo[name] = value
        return value

    return get


def _claim(name: str) -> Getter:
    """``$jwt_claim_NAME`` (compiled: it runs on every request that forwards a claim)."""
    return ClaimGetter(name, plus_text)


def plus_text(value: Any) -> str:
    """A claim or header value as NGINX Plus's variables give it: a string as it is
    (no JSON quotes), an array as its elements joined by commas, a number or a boolean
    as its JSON text, an object as JSON; nothing for a missing one or null."""
    if value is None:
        return ""
    if type(value) is str:
        return value
    if type(value) is list:
        return ",".join(plus_text(v) for v in value)
    return _JSON(value)


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class NestedClaim:
    """``auth_jwt_claim_set $var A B``: the claim at payload[A][B] (``header``:
    ``auth_jwt_header_set``, in the JOSE header), encoded as ``$jwt_claim_*`` is (empty
    when any step is missing or not an object). A class, not a closure: one empty is
    not found (SSI's echo says "(none)"), where the configuration's other variables
    are found empty (``found_though_empty``)."""

    __slots__ = ("path", "header")

    def __init__(self, path: tuple[str, ...], header: bool) -> None:
        self.path = path
        self.header = header

    def __call__(self, r: Any) -> str:
        tok = r.token
        if tok is None:
            return ""
        value: Any = tok.header if self.header else tok.payload
        for step in self.path:
            if type(value) is not dict or step not in value:
                return ""
            value = value[step]
        return plus_text(value) if r.jwt_plus else _JSON(value)


def nested_claim(path: tuple[str, ...], header: bool = False) -> Getter:
    return NestedClaim(path, header)


def basic_credentials(headers: list[tuple[bytes, bytes]]) -> tuple[str, bytes] | None:
    """(user, password) of an ``Authorization: Basic`` header, or None: none, another
    scheme, or not base64 of ``user:password``."""
    for name, value in headers:
        if len(name) == 13 and name.lower() == b"authorization":
            scheme, _, rest = value.strip().partition(b" ")
            if scheme.lower() != b"basic":
                return None
            try:
                decoded = base64.b64decode(rest.strip(), validate=True)
            except ValueError:
                return None
            user, sep, password = decoded.partition(b":")
            if not sep:
                return None
            return user.decode("utf-8", "surrogateescape"), password
    return None


def _protocol(r: Any) -> str:
    """$server_protocol: an HTTP/2 stream says HTTP/2.0 (it reaches the phases as an
    HTTP/1.1 request, see ``fastgate.http.http2``)."""
    return "HTTP/2.0" if r.connection.http2 else f"HTTP/{r.version}"


def request_line(r: Any) -> str:
    """$request: the line as it came (nginx's r->request_line) — an error page's URI
    made the request a GET, its line keeps the method; an absolute-form target stays
    whole, and so does a target refused once read (``/%2e%2e/x``: its $request_uri is
    empty); for a line the HTTP layer could not read, its bytes (http.engine.UnreadLine:
    nginx's too), else empty (logged as "-")."""
    head = r.head
    method = head.method if head is not None else b""
    if not method:
        return getattr(head, "line", "")
    target = head.target.decode("utf-8", "surrogateescape")
    return f"{method.decode('latin-1')} {target} {_protocol(r)}"


def _request_method(r: Any) -> str:
    """$request_method: a subrequest's is its main request's (nginx's r->main), whose
    method it is made for; its own is GET."""
    if not r.uri_changes:  # (a subrequest is made internal: a main one, mostly, not)
        return str(r.method)
    main = r.memo.get(SUBREQUEST_KEY)
    return str(r.method if main is None else main.method)


def _remote_user(r: Any) -> str:
    creds = basic_credentials(r.head.headers) if r.head is not None else None
    return creds[0] if creds is not None else ""


def user_variable(name: str) -> Getter:
    """``$name`` as ``set $name`` gave it, this request or one it is a subrequest of
    (empty until then: nginx's uninitialised variable)."""

    def get(r: Any) -> str:
        value: str = r.variables.get(name, "")
        return value

    return get


def set_or(name: str, get: Getter) -> Getter:
    """A map's (geo's, split_clients') variable that a ``set`` or a named capture also
    writes: nginx's lookup variables are changeable, and what a set stored is what reads
    give from then on (before it, the lookup's value, memoised as ever)."""

    def read(r: Any) -> str:
        given = r.variables
        if name in given:
            value: str = given[name]
            return value
        return get(r)

    return read


def set_user_variable(r: Any, name: str, value: str) -> None:
    r.variables[name] = value


def set_named_captures(r: Any, m: re.Match[str]) -> None:
    """A regex's named captures (``(?<name>...)``) become the request's variables when it
    matches, as nginx's ngx_http_regex_exec sets them: a location's, a map key's, an
    if's, a rewrite's, a server_name's (one that did not take part: empty)."""
    named = m.re.groupindex
    if named:
        v = r.variables
        for name, i in named.items():
            v[name.lower()] = m.group(i) or ""


# a named capture in a regex as written in the configuration (PCRE's or Python's form)
NAMED_CAPTURE = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")


def _response_header(headers_of: Callable[[Any], Any]) -> Callable[[str], Getter]:
    """``$upstream_http_NAME``, ``$sent_http_NAME``, ``$upstream_trailer_NAME``: a field
    of the upstream's response head, of ours, or of the upstream's trailers
    (``headers_of``), as nginx joins repeated ones; empty until they exist."""

    def factory(name: str) -> Getter:
        wanted = name.replace("_", "-").encode("latin-1")

        def get(r: Any) -> str:
            headers = headers_of(r)
            if not headers:
                return ""
            values = [v.decode("latin-1") for n, v in headers if n.lower() == wanted]
            return ", ".join(values)

        return get

    return factory


def _upstream_cookie(name: str) -> Getter:
    """``$upstream_cookie_NAME``: the value a Set-Cookie of the upstream's response gives
    the cookie NAME (the first that names it, case-insensitively; up to its ";"), as
    nginx's ngx_http_parse_set_cookie_lines."""
    wanted = name.encode("latin-1")

    def get(r: Any) -> str:
        for n, v in r.upstream_headers or ():
            if n.lower() != b"set-cookie" or len(v) <= len(wanted) \
                    or v[:len(wanted)].lower() != wanted:
                continue
            rest: bytes = v[len(wanted):].lstrip(b" ")
            if not rest.startswith(b"="):
                continue
            return rest[1:].lstrip(b" ").partition(b";")[0].decode("latin-1")
        return ""

    return get


# struct tcp_info (Linux): tcpi_rtt, tcpi_rttvar, tcpi_snd_cwnd, tcpi_rcv_space, at their
# offsets in the 104 bytes nginx's getsockopt(TCP_INFO) reads
_TCP_INFO = struct.Struct("=68xIIxxxxI12xI")


def _tcpinfo(index: int) -> Getter:
    """``$tcpinfo_rtt``, ``_rttvar``, ``_snd_cwnd``, ``_rcv_space``: the client
    connection's, asked of the kernel when read (empty where it has none: a unix
    socket)."""

    def get(r: Any) -> str:
        sock = r.connection.sock
        if sock is None:
            return ""
        try:
            raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        except OSError:
            return ""
        return str(_TCP_INFO.unpack_from(raw)[index]) if len(raw) >= 100 else ""

    return get


def _connection_time(r: Any) -> str:
    """``$connection_time``: seconds since the connection was accepted, to the
    millisecond."""
    started = r.connection.started
    ms = max(int((time.monotonic() - started) * 1000), 0) if started else 0
    return f"{ms // 1000}.{ms % 1000:03d}"


def _jwt_header(name: str) -> Getter:
    def get(r: Any) -> str:
        tok = r.token
        if tok is None:
            return ""
        if r.jwt_plus:
            return plus_text(tok.header.get(name))
        text: str = tok.header_text(name)
        return text

    return get


@dataclass(frozen=True)
class _NoProxyHeader:
    addr: str = ""
    port: int = 0
    server_addr: str = ""
    server_port: int = 0


_NO_PROXY_HEADER = _NoProxyHeader()


NGINX_VERSION = "1.22.1"


def _document_root(r: Any, s: Any) -> str:
    """``root``'s path (nginx's default: "html" under the prefix, which the loader
    sets at the http level)."""
    root = s.root
    return root.render(r) if root is not None else ""


def _fastcgi_split(r: Any, s: Any) -> tuple[str, str]:
    """``$fastcgi_script_name`` and ``$fastcgi_path_info``: the URI split by
    fastcgi_split_path_info's two captures (whole when it does not match), and
    fastcgi_index added to a script name that ends in "/"."""
    uri: str = r.uri
    script, info = uri, ""
    split = s.fastcgi_split_path_info
    if split is not None:
        m = split.search(uri)
        if m is not None:
            script, info = m.group(1) or "", m.group(2) or ""
    if s.fastcgi_index is not None and script.endswith("/"):
        script += s.fastcgi_index
    return script, info


def _tls(read: Callable[[Any], str], connection: bool) -> Getter:
    """A TLS connection's variable: of a request's connection, or a stream session's."""
    if connection:
        return lambda r: read(r.connection.tls)
    return lambda r: read(r.tls)


def _per_location(get: Callable[[Any, Any], str]) -> Getter:
    """A variable the request's location's settings decide (before a location is
    chosen: empty)."""

    def getter(r: Any) -> str:
        loc = r.location
        return get(r, loc.settings) if loc is not None else ""

    return getter


def _invalid_referer(r: Any, s: Any) -> str:
    """``$invalid_referer``: the location's valid_referers decide (none configured:
    valid)."""
    referers = s.valid_referers
    if referers is None:
        return VALID
    value = r.header(b"referer")
    server = r.server
    found: str = referers.check(value.decode("latin-1") if value is not None else None,
                                server.server_names if server is not None else ())
    return found


def _proxy_protocol(r: Any) -> Any:
    """The connection's PROXY protocol header, or one naming nothing (empty values)."""
    return r.connection.proxy_protocol or _NO_PROXY_HEADER


def _port(port: int) -> str:
    return str(port) if port else ""


def _forwarded_for(r: Any) -> str:
    prior = _header("x_forwarded_for")(r)
    return f"{prior}, {r.remote_addr}" if prior else r.remote_addr


def _gzip_ratio(r: Any) -> str:
    """What went into the gzip filter over what came out, once it has (else empty)."""
    gz = r.memo.get(GZIP_KEY)
    return "" if gz is None else gz.ratio()


def _time_local(r: Any) -> str:
    """The time it is read (an access log's: the request's end), as nginx's cached time."""
    return time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime())


# a request's memo: set in a subrequest's (nginx's r != r->main)
SUBREQUEST_KEY = ("main",)
# a request's memo: its response's compressor (proxy.gzip), for $gzip_ratio; and that
# its response's head has gzip's Vary header (once, whether gzip_static or gzip added it)
GZIP_KEY = ("gzip",)
GZIP_VARY_KEY = ("gzip", "vary")
# a request's memo: a HEAD whose response is held whole for a filter (proxy.held): read
# as a GET by local content, asked of an upstream as the HEAD it is, as nginx's
HELD_HEAD_KEY = ("held", "head")
# a request's memo: the rate an upstream's answer gave (X-Accel-Limit-Rate; 0 relayed
# unbuffered), and what ``set $limit_rate`` wrote (proxy.rate)
RATE_KEY = ("limit_rate",)
SET_RATE = "limit_rate"  # (in the request's variables, as any set)


def _limit_rate(r: Any) -> str:
    """``$limit_rate``: the rate set for the response (by ``set $limit_rate`` or the
    upstream's X-Accel-Limit-Rate), else the location's once the response has begun (as
    nginx's write filter sets it), else 0."""
    given = r.memo.get(RATE_KEY)
    if given is not None:
        return str(given)
    text = r.variables.get(SET_RATE)
    if text is not None:
        return str(text)
    loc = r.location
    if r.status and loc is not None and loc.settings.limit_rate is not None:
        configured: str = loc.settings.limit_rate.render(r)
        return configured
    return "0"


# a request's memo: the slice module's state (``SliceState``)
SLICE_KEY = ("slice",)
# a request's memo: the trailers of a gRPC application's answer, as received
TRAILERS_KEY = ("upstream trailers",)
SENT_TRAILERS_KEY = ("sent trailers",)  # the response's, as they went ($sent_trailer_*)


class SliceState:
    """The slice module's state for one response (nginx's slice context): where the
    next slice starts, the slices' size, and the ETag they must all have."""

    __slots__ = ("start", "size", "etag")

    def __init__(self, start: int, size: int) -> None:
        self.start = start
        self.size = size
        self.etag: bytes | None = None

    @property
    def range(self) -> str:
        return f"bytes={self.start}-{self.start + self.size - 1}"


def _slice_range(r: Any) -> str:
    """``$slice_range``: the Range of the slice to ask for. Asked for by a request whose
    location has ``slice SIZE`` before its answer came, it starts the slicing (in the
    slice of the client's Range start: ``proxy.slices``); empty elsewhere."""
    state: SliceState | None = r.memo.get(SLICE_KEY)
    if state is None:
        loc = r.location
        size = loc.settings.slice if loc is not None else 0
        if not size or r.status or SUBREQUEST_KEY in r.memo:
            return ""
        state = r.memo[SLICE_KEY] = SliceState(size * (_slice_start(r) // size), size)
    return state.range


def _slice_start(r: Any) -> int:
    """nginx's ngx_http_slice_get_start: where the client's one Range starts (0 with
    If-Range, several ranges, a suffix range or none)."""
    if r.header(b"if-range") is not None:
        return 0
    value = r.header(b"range")
    if value is None or len(value) < 7 or value[:6].lower() != b"bytes=" or b"," in value:
        return 0
    rest = value[6:].lstrip(b" ")
    digits = len(rest) - len(rest.lstrip(b"0123456789"))
    return int(rest[:digits]) if digits and digits < 19 else 0


def _date_local(r: Any) -> str:
    """The SSI module's ``$date_local`` and ``$date_gmt`` outside SSI (where ``config
    timefmt`` changes them: ``proxy.ssi``), in its default format."""
    return time.strftime("%A, %d-%b-%Y %H:%M:%S %Z", time.localtime())


def _date_gmt(r: Any) -> str:
    return time.strftime("%A, %d-%b-%Y %H:%M:%S %Z", time.gmtime())


def _time_iso8601(r: Any) -> str:
    """The time it is read, with nginx's offset: "+00:00", not strftime's "+0000"."""
    text = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime())
    return text[:-2] + ":" + text[-2:]


def _tries(r: Any, field: int, current: str) -> str:
    """An ``$upstream_*`` value: the servers tried before, then the current one, as nginx
    writes them ("10.0.0.1:80, 10.0.0.2:80"; a time a try never reached is "-")."""
    tried = r.upstream_tried
    if not tried:
        return current
    parts = [_try_value(t, field) for t in tried]
    if current:
        parts.append(current)
    return ", ".join(parts)


def _try_value(entry: tuple[Any, ...], field: int) -> str:
    """One try's value (``proxy.exchange``'s record_try): a text, a time or a count; its
    response length is 0, as its answer never went on."""
    if field >= len(entry):
        return "0"
    value = entry[field]
    if isinstance(value, float):
        return f"{value:.3f}" if value >= 0 else "-"
    return str(value)


def _seconds(r: Any, value: float) -> str:
    """A time of the current try: empty without one, "-" where it never got so far."""
    if value >= 0:
        return f"{value:.3f}"
    return "-" if r.upstream_addr else ""


def _response_length(r: Any) -> str:
    """$upstream_response_length: the upstream's body as relayed, 0 where no answer came
    (a page fastgate made for a failed try is not the upstream's)."""
    if not r.upstream_status and not r.upstream_tried:
        return ""
    current = str(r.body_bytes_sent) if r.upstream_time >= 0 else "0"
    return _tries(r, 7, current if r.upstream_addr else "")


def _request_time(r: Any) -> str:
    return f"{time.time() - r.start:.3f}"


def _token_json(attr: str) -> Getter:
    def get(r: Any) -> str:
        tok = r.token
        return getattr(tok, attr).decode("utf-8") if tok is not None else ""

    return get


_HOSTNAME = socket.gethostname()

# nginx's own variables a configuration may define again (NGX_HTTP_VAR_CHANGEABLE):
# its set, map or capture replaces them; any other is "the duplicate variable"
CHANGEABLE = frozenset({
    "args", "limit_rate", "uid_reset", "memcached_key", "invalid_referer", "msie",
    "modern_browser", "ancient_browser", "proxy_host", "proxy_port",
    "ssl_protocol", "ssl_cipher", "ssl_ciphers", "ssl_curve", "ssl_curves", "ssl_sigalg",
    "ssl_sigalgs", "ssl_session_id", "ssl_session_reused", "ssl_early_data",
    "ssl_server_name", "ssl_alpn_protocol", "ssl_client_cert", "ssl_client_raw_cert",
    "ssl_client_escaped_cert", "ssl_client_s_dn", "ssl_client_i_dn",
    "ssl_client_s_dn_legacy", "ssl_client_i_dn_legacy", "ssl_client_serial",
    "ssl_client_fingerprint", "ssl_client_verify", "ssl_client_v_start",
    "ssl_client_v_end", "ssl_client_v_remain"})

# The fixed variables: name → getter.
BUILTIN: dict[str, Getter] = {
    "slice_range": _slice_range,
    "limit_rate": _limit_rate,
    "date_local": _date_local,
    "date_gmt": _date_gmt,
    "host": lambda r: r.host,
    "scheme": lambda r: r.scheme,
    "https": lambda r: "on" if r.scheme == "https" else "",
    **{name: _tls(read, connection=True) for name, read in (
        *ssl_variables.VARIABLES.items(), *ssl_variables.HTTP_ONLY.items())},
    "ssl_protocol": lambda r: r.connection.ssl_protocol,
    **client_certificate.VARIABLES,
    **client_certificate.LEGACY,
    "secure_link": _per_location(secure_link.secure_link),
    "secure_link_expires": secure_link.secure_link_expires,
    "modern_browser": _per_location(browsers.modern_browser),
    "ancient_browser": _per_location(browsers.ancient_browser),
    "msie": browsers.msie,
    "uid_got": _per_location(userid.uid_got),
    "uid_set": _per_location(userid.uid_set),
    "uid_reset": userid.uid_reset,
    "request_uri": lambda r: r.target,
    "uri": lambda r: r.uri,
    "document_uri": lambda r: r.uri,
    "args": lambda r: r.args,
    "query_string": lambda r: r.args,
    "is_args": lambda r: "?" if r.args else "",
    "request": request_line,
    "request_method": _request_method,
    "server_protocol": _protocol,
    "http2": lambda r: r.connection.http2,
    "remote_addr": lambda r: r.remote_addr,
    # the user name of a Basic Authorization header, checked or not (as nginx's)
    "remote_user": _remote_user,
    # the connection's peer, whatever set_real_ip_from made $remote_addr
    "realip_remote_addr": lambda r: r.connection.remote_addr,
    "realip_remote_port": lambda r: str(r.connection.remote_port) if r.connection.remote_port
    else "",
    "connection_time": _connection_time,
    "tcpinfo_rtt": _tcpinfo(0),
    "tcpinfo_rttvar": _tcpinfo(1),
    "tcpinfo_snd_cwnd": _tcpinfo(2),
    "tcpinfo_rcv_space": _tcpinfo(3),
    "gzip_ratio": _gzip_ratio,
    # what nginx's proxy cache sets: fastgate has none (its directives are warned and
    # ignored), so this is what nginx gives without one
    "upstream_cache_status": lambda r: "",
    "invalid_referer": _per_location(_invalid_referer),
    "binary_remote_addr": lambda r: r.remote_addr,
    # empty when realip took an address without a port, as nginx's
    "remote_port": lambda r: str(r.remote_port) if r.remote_port else "",
    "proxy_protocol_addr": lambda r: _proxy_protocol(r).addr,
    "proxy_protocol_port": lambda r: _port(_proxy_protocol(r).port),
    "proxy_protocol_server_addr": lambda r: _proxy_protocol(r).server_addr,
    "proxy_protocol_server_port": lambda r: _port(_proxy_protocol(r).server_port),
    "server_addr": lambda r: r.server_addr,
    "server_port": lambda r: str(r.server_port) if r.server_port else "",  # (a socket: none)
    "server_name": lambda r: r.server_name,
    "hostname": lambda r: _HOSTNAME,
    "pid": lambda r: str(os.getpid()),
    "status": lambda r: str(r.status),
    "request_time": _request_time,
    "request_length": lambda r: str(r.length()),
    "body_bytes_sent": lambda r: str(r.body_bytes_sent),
    "bytes_sent": lambda r: str(r.bytes_sent),
    "content_type": _header("content_type"),
    "content_length": _content_length,
    # grpc_set_header's default TE: "trailers" when the client's (first) TE names them
    "grpc_internal_trailers": lambda r: next(
        ("trailers" if "trailers" in v.lower() else "" for n, v in r.headers if n == "te"), ""),
    "upstream_addr": lambda r: _tries(r, 0, r.upstream_addr),
    "upstream_status": lambda r: _tries(r, 1, r.upstream_status),
    # the time to the response head: fastgate's upstream time is that already
    "upstream_header_time": lambda r: _tries(r, 4, _seconds(r, r.upstream_time)),
    # the upstream's response body as relayed (fastgate keeps no copy to measure apart)
    "upstream_response_length": _response_length,
    # (to the response's end, or its failed try's; a module that keeps no such time:
    # to its head)
    "upstream_response_time": lambda r: _tries(r, 2, _seconds(
        r, r.upstream_response_time if r.upstream_response_time >= 0 else r.upstream_time)),
    "upstream_connect_time": lambda r: _tries(r, 3, _seconds(r, r.upstream_connect_time)),
    "upstream_bytes_received": lambda r: _tries(
        r, 5, str(r.upstream_bytes_received) if r.upstream_addr else ""),
    "upstream_bytes_sent": lambda r: _tries(
        r, 6, str(r.upstream_bytes_sent) if r.upstream_addr else ""),
    # "OK" once the response went whole and the connection stands (the access log's
    # time), as nginx's r->request_complete; empty before, and for a cut one or a 444
    "request_completion": lambda r: "OK" if r.completed else "",
    "proxy_host": lambda r: r.proxy_host,
    "proxy_port": lambda r: r.proxy_port,
    "proxy_add_x_forwarded_for": _forwarded_for,
    "request_id": lambda r: r.request_id,
    "connection": lambda r: str(r.connection_id),
    "connection_requests": lambda r: str(r.connection_requests),
    "pipe": lambda r: "p" if r.pipelined else ".",
    # the body read whole into memory (proxy_request_buffering, a mirror), as the bytes
    # that came; empty where it was not read, streamed, or went to a file (as nginx's)
    "request_body": lambda r: (r.body_buffer.decode("utf-8", "surrogateescape")
                               if isinstance(r.body_buffer, bytes) else ""),
    # the body's file: client_body_in_file_only's, or one past client_body_buffer_size
    # (named when this asks); "" for a body in memory, streamed or not read
    "request_body_file": lambda r: (r.body_buffer.file_name()
                                    if hasattr(r.body_buffer, "file_name") else ""),
    # no static files, so no root: empty (the loader warns where they are read)
    "document_root": _per_location(lambda r, s: _document_root(r, s)),
    "request_filename": _per_location(
        lambda r, s: s.root.file(r, r.uri) if s.root is not None else r.uri),
    "realpath_root": _per_location(lambda r, s: os.path.realpath(_document_root(r, s))),
    "fastcgi_script_name": _per_location(lambda r, s: _fastcgi_split(r, s)[0]),
    "fastcgi_path_info": _per_location(lambda r, s: _fastcgi_split(r, s)[1]),
    # the nginx release whose behaviour fastgate follows (SERVER_SOFTWARE in the stock
    # fastcgi_params says "nginx/$nginx_version")
    "nginx_version": lambda r: NGINX_VERSION,
    # memcached_pass's key: nginx's module declares it, a set gives it its value
    "memcached_key": user_variable("memcached_key"),
    "time_local": _time_local,
    "time_iso8601": _time_iso8601,
    "msec": lambda r: f"{time.time():.3f}",
    "limit_req_status": lambda r: r.limit_req_status,
    "limit_conn_status": lambda r: r.limit_conn_status,
    "jwt_headers": _token_json("header_json"),
    "jwt_payload": _token_json("payload_json"),
    **geoip.VARIABLES,
}

# What an access log writes for an empty value: nothing for a variable nginx finds with
# zero length, "-" for one it does not find (a header not sent, no upstream, a cookie
# not given) — or, for the TLS ones, nothing on a TLS connection and "-" off one.
Blank: TypeAlias = "bytes | Callable[[Any], bytes]"

# the built-ins nginx finds though empty (its ngx_http_variable_null_value, a port of
# a unix socket's, "" from the referer check)
_FOUND_EMPTY = frozenset({
    "https", "is_args", "http2", "remote_port", "server_port", "realip_remote_port",
    "request_completion", "invalid_referer", "fastcgi_path_info"})
# the ssl module's: found whenever the connection is TLS (ngx_http_ssl_variable)
_FOUND_ON_TLS = frozenset({
    *ssl_variables.VARIABLES, *ssl_variables.HTTP_ONLY, "ssl_protocol",
    *client_certificate.VARIABLES, *client_certificate.LEGACY})


# found once the request line is read: nginx's r->uri is set then, empty for a target it
# refused (/%2e%2e/x), NULL for a line never read
_FOUND_ONCE_READ = frozenset({"uri", "document_uri"})
# found where the request has arguments, or had them set by a rewrite, an internal
# redirect's "?" or ``set`` (``Request.args_found``)
_FOUND_WITH_ARGS = frozenset({"args", "query_string"})


def _blank_on_tls(r: Any) -> bytes:
    return b"" if r.connection.tls is not None else b"-"


def _blank_once_read(r: Any) -> bytes:
    return b"" if r.head is not None and r.head.method else b"-"


def _blank_args(r: Any) -> bytes:
    return b"" if r.args_found else b"-"


def _blank_arg(name: str) -> Callable[[Any], bytes]:
    def blank(r: Any) -> bytes:
        return b"" if found_arg(r.args, name) is not None else b"-"

    return blank


def found_though_empty(name: str, get: Getter, defined: Mapping[str, Getter],
                       r: Any) -> bool:
    """Whether nginx finds the variable ``name`` (lowercased; its getter ``get``)
    though its value is empty — SSI's echo then prints nothing and takes no default —
    rather than not at all ("(none)"): a built-in nginx finds empty, a TLS one on a TLS
    connection, the configuration's own (map, geo, split_clients, set) but a claim's."""
    if name in _FOUND_EMPTY:
        return True
    if name in _FOUND_ON_TLS:
        return r.connection.tls is not None
    if name in _FOUND_ONCE_READ:
        return _blank_once_read(r) == b""
    if name in _FOUND_WITH_ARGS:
        return bool(r.args_found)
    if name.startswith("arg_") and defined.get(name) is not get:  # (not a set's)
        return found_arg(r.args, name[4:]) is not None
    return defined.get(name) is get and not isinstance(get, NestedClaim)


def log_blanks(text: str, found: Set[str]) -> tuple[Blank, ...]:
    """What an access log writes for each variable of ``text``, in order, when it is
    empty (see ``Blank``); ``found``: the configuration's own variables nginx always
    finds (map, geo, split_clients, set), lowercased."""
    out: list[Blank] = []
    for m in _VAR.finditer(text):
        low = (m.group(1) or m.group(2)).lower()
        if low in _FOUND_EMPTY or low in found:
            out.append(b"")
        elif low in _FOUND_ON_TLS:
            out.append(_blank_on_tls)
        elif low in _FOUND_ONCE_READ:
            out.append(_blank_once_read)
        elif low in _FOUND_WITH_ARGS:
            out.append(_blank_args)
        elif low.startswith("arg_"):
            out.append(_blank_arg(low[4:]))
        else:
            out.append(b"-")
    return tuple(out)


# Prefixed families: prefix → getter factory taking the rest of the name.
PREFIXES: dict[str, Callable[[str], Getter]] = {
    "http_": _header,
    "arg_": _arg,
    "cookie_": _cookie,
    "jwt_claim_": _claim,
    "jwt_header_": _jwt_header,
    "upstream_http_": _response_header(lambda r: r.upstream_headers),
    "sent_http_": _response_header(lambda r: r.sent_headers),
    "upstream_trailer_": _response_header(lambda r: r.memo.get(TRAILERS_KEY)),
    "sent_trailer_": _response_header(lambda r: r.memo.get(SENT_TRAILERS_KEY)),
    "upstream_cookie_": _upstream_cookie,
}

# Prefixes whose rest is case-sensitive (JSON member names); the rest is lowercased as
# nginx does for headers, arguments and cookies.
_CASE_SENSITIVE = ("jwt_claim_", "jwt_header_")


@dataclass(frozen=True, slots=True)
class Template:
    """A value with variables, compiled. ``parts`` alternate literal strings and getters."""

    source: str
    parts: tuple[str | Getter, ...]
    variables: frozenset[str] = frozenset()

    @property
    def is_literal(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    def render(self, r: Any) -> str:
        parts = self.parts
        if len(parts) == 1:
            p = parts[0]
            return p if isinstance(p, str) else p(r)
        return "".join([p if isinstance(p, str) else p(r) for p in parts])


@dataclass
class Registry:
    """The variables a configuration may use: built-ins, prefixes, and its own maps."""

    defined: dict[str, Getter] = field(default_factory=dict)
    # every jwt claim / header name the config references, so the hot path knows them
    claims: set[str] = field(default_factory=set)
    jwt_headers: set[str] = field(default_factory=set)
    uses_jwt: bool = False

    def define(self, name: str, getter: Getter) -> None:
        self.defined[name.lower()] = getter

    def is_taken(self, name: str) -> bool:
        """Whether a ``set``, ``map`` or named capture may not define ``name``: it is
        the configuration's already, or one of nginx's own variables that is not
        changeable. A name only a prefix gives (``$http_host_with_default``,
        ``$arg_x``) is free, and the variable defined shadows the prefix's, as in
        nginx, whose prefixed variables are looked up after the named ones."""
        low = name.lower()
        return low in self.defined or (low in BUILTIN and low not in CHANGEABLE)

    def getter(self, name: str) -> Getter:
        """The getter for ``name`` (without ``$``); ``KeyError`` if there is none."""
        found = find_variable(name, self.defined)
        if found is None:
            raise KeyError(name)
        low = name.lower()
        if low not in self.defined and not (name.isascii() and name.isdigit()):
            if low in ("jwt_headers", "jwt_payload"):
                self.uses_jwt = True
            elif low.startswith("jwt_claim_") and len(low) > 10:
                self.claims.add(name[10:])
                self.uses_jwt = True
            elif low.startswith("jwt_header_") and len(low) > 11:
                self.jwt_headers.add(name[11:])
                self.uses_jwt = True
        return found

    def compile(self, text: str, where: Any = None) -> Template:
        """Compile ``text``; an unknown variable is a ``ConfigError`` at ``where``."""
        parts: list[str | Getter] = []
        names: set[str] = set()
        pos = 0
        for m in _VAR.finditer(text):
            if m.start() > pos:
                parts.append(text[pos:m.start()])
            name = m.group(1) or m.group(2)
            try:
                parts.append(self.getter(name))
            except KeyError:
                raise _error(f'unknown "{name}" variable', where) from None
            names.add(name)
            pos = m.end()
        rest = text[pos:]
        if "$" in rest:
            i = rest.index("$")
            if rest[i + 1:i + 2] == "{":
                raise _error("the closing bracket in variable is missing", where)
            raise _error(f'invalid variable name in "{text}"', where)
        if rest:
            parts.append(rest)
        if not parts:
            parts.append("")
        return Template(text, tuple(parts), frozenset(names))


def find_variable(name: str, defined: Mapping[str, Getter]) -> Getter | None:
    """The getter for ``name`` (without ``$``): a regex capture, the configuration's own
    (``defined``: maps, set...), a built-in or a prefixed one (``$http_...``); None when
    there is none. For names known only at run time (SSI's echo) it is all there is."""
    if name.isascii() and name.isdigit():
        index = int(name)
        return lambda r: _capture(r, index)
    low = name.lower()
    found = defined.get(low) or BUILTIN.get(low)
    if found is not None:
        return found
    for prefix, factory in PREFIXES.items():
        if low.startswith(prefix) and len(low) > len(prefix):
            return factory(name[len(prefix):] if prefix in _CASE_SENSITIVE
                           else low[len(prefix):])
    return None


def _capture(r: Any, index: int) -> str:
    caps = r.captures
    if caps and index < len(caps):
        return caps[index] or ""
    return ""


def _error(message: str, where: Any) -> ConfigError:
    if where is None:
        return ConfigError(message)
    return ConfigError(message, where.file, where.line)


# --- map ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MapRegex:
    pattern: re.Pattern[str]
    value: Template


@dataclass(frozen=True)
class Map:
    """``map $source $name { ... }``: exact keys (case-insensitive, as nginx), hostname
    wildcards, regexes in order (``~`` / ``~*``, captures usable as ``$1``...; never
    tried on an empty value, as nginx's: ``~^$`` matches nothing), default."""

    name: str
    source: Template
    exact: dict[str, Template]
    regexes: tuple[MapRegex, ...]
    default: Template
    hostnames: bool = False
    # ".example.com" suffixes, longest first ("*.example.com" or ".example.com", which
    # also puts "example.com" among the exact keys); "www.example." prefixes, longest
    # first
    wild_head: tuple[tuple[str, Template], ...] = ()
    wild_tail: tuple[tuple[str, Template], ...] = ()

    def templates(self) -> tuple[Template, ...]:
        """Every template the map may render: its source and all its values."""
        return (self.source, self.default, *self.exact.values(),
                *(r.value for r in self.regexes), *(v for _, v in self.wild_head),
                *(v for _, v in self.wild_tail))

    def getter(self) -> Getter:
        return memoised(self.name, self.evaluate)

    def evaluate(self, r: Any) -> str:
        src = self.source.render(r)
        if self.hostnames and src.endswith("."):  # (one dot, as nginx: "example.com.")
            src = src[:-1]
        low = src.lower()
        hit = self.exact.get(low)
        if hit is not None:
            return hit.render(r)
        if self.hostnames:
            for suffix, value in self.wild_head:
                if low.endswith(suffix):
                    return value.render(r)
            for prefix, value in self.wild_tail:
                if low.startswith(prefix):
                    return value.render(r)
        if not src:  # (nginx's ngx_http_map_find tries no regex on an empty value)
            return self.default.render(r)
        for rx in self.regexes:
            m = rx.pattern.search(src)
            if m is not None:
                # (nginx's ngx_http_regex_exec: the match's captures are the request's
                # from now on, $1... of its location's regex too)
                set_named_captures(r, m)
                r.captures = (m.group(0),) + m.groups()
                return rx.value.render(r)
        return self.default.render(r)


# --- the stream block's variables -----------------------------------------------------------
# nginx's ngx_stream_variables.c and its modules' (proxy, upstream, ssl_preread): a
# namespace of their own, read from a stream session (``proxy.stream.Session``)


class Found(str):
    """A value that is there though it may be empty (nginx's variable found with zero
    length): an access log writes nothing for it, where it writes "-" for a value that
    is not there."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return True


def _preread(field: str) -> Getter:
    """``$ssl_preread_*``: there (perhaps empty) once a ClientHello was read, or part
    of one when prereading ended; not there when the bytes were not a ClientHello."""

    def get(r: Any) -> str:
        p = r.preread
        return Found(getattr(p, field)) if p is not None else ""

    return get


def _stream_time(r: Any) -> str:
    return f"{time.monotonic() - r.started:.3f}"


def _stream_proxy_protocol(r: Any) -> Any:
    return r.proxy_protocol or _NO_PROXY_HEADER


STREAM_BUILTIN: dict[str, Getter] = {
    "remote_addr": lambda r: r.remote_addr,
    "binary_remote_addr": lambda r: r.remote_addr,
    "remote_port": lambda r: str(r.remote_port) if r.remote_port else "",
    "realip_remote_addr": lambda r: r.realip_remote_addr,
    "realip_remote_port": lambda r: str(r.realip_remote_port) if r.realip_remote_port else "",
    "server_addr": lambda r: r.server_addr,
    "server_port": lambda r: str(r.server_port) if r.server_port else "",  # (a socket: none)
    "proxy_protocol_addr": lambda r: _stream_proxy_protocol(r).addr,
    "proxy_protocol_port": lambda r: _port(_stream_proxy_protocol(r).port),
    "proxy_protocol_server_addr": lambda r: _stream_proxy_protocol(r).server_addr,
    "proxy_protocol_server_port": lambda r: _port(_stream_proxy_protocol(r).server_port),
    "protocol": lambda r: "UDP" if r.listen.udp else "TCP",
    "connection": lambda r: str(r.connection_id),
    "status": lambda r: str(r.status),
    "limit_conn_status": lambda r: r.limit_conn_status,
    "bytes_received": lambda r: str(r.bytes_received),
    "bytes_sent": lambda r: str(r.bytes_sent),
    "session_time": _stream_time,
    "upstream_addr": lambda r: r.upstream_addrs(),
    "upstream_bytes_sent": lambda r: r.upstream_values("sent"),
    "upstream_bytes_received": lambda r: r.upstream_values("received"),
    "upstream_connect_time": lambda r: r.upstream_values("connect"),
    "upstream_first_byte_time": lambda r: r.upstream_values("first_byte"),
    "upstream_session_time": lambda r: r.upstream_values("session"),
    "ssl_preread_server_name": _preread("server_name"),
    "ssl_preread_alpn_protocols": _preread("alpn"),
    "ssl_preread_protocol": _preread("protocol"),
    **{name: _tls(read, connection=False) for name, read in ssl_variables.VARIABLES.items()},
    **client_certificate.VARIABLES,
    **geoip.VARIABLES,
    "hostname": lambda r: _HOSTNAME,
    "pid": lambda r: str(os.getpid()),
    "nginx_version": lambda r: NGINX_VERSION,
    "msec": lambda r: f"{time.time():.3f}",
    "time_local": _time_local,
    "time_iso8601": _time_iso8601,
}


class StreamRegistry(Registry):
    """The stream block's variables: its own maps, its built-ins and captures — none of
    HTTP's (``$uri``, ``$http_*`` are unknown there, as in nginx)."""

    def getter(self, name: str) -> Getter:
        if name.isascii() and name.isdigit():
            index = int(name)
            return lambda r: _capture(r, index)
        low = name.lower()
        found = self.defined.get(low) or STREAM_BUILTIN.get(low)
        if found is None:
            raise KeyError(name)
        return found
