"""The configuration as immutable objects: what the proxy reads on every request.

Built once by ``fastgate.config.load``; nothing here is parsed or loaded per request.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, TypeAlias

from fastgate.browsers import KEEPALIVE_MSIE6, KEEPALIVE_SAFARI
from fastgate.config.errors import ConfigError
from fastgate.config.lookups import Lookup
from fastgate.config.referers import Referers
from fastgate.variables import Blank, Template

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fastgate._core import Key
    from fastgate.geoip import Database
    from fastgate.stylesheets import Stylesheet
    from fastgate.variables import Getter


@dataclass(frozen=True, slots=True)
class Where:
    """A directive's place, for messages that come after loading (runtime warnings)."""

    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int
    ssl: bool = False
    reuseport: bool = False
    backlog: int = 511
    default_server: bool = False
    proxy_protocol: bool = False  # a PROXY protocol header comes before the HTTP bytes
    http2: bool = False  # HTTP/2 as well: by ALPN over TLS, by its preface in clear
    udp: bool = False  # a stream server's datagrams (listen ... udp)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def unix(self) -> str | None:
        """A unix socket's path (``listen unix:PATH``: host "unix:PATH", port 0)."""
        return self.host[5:] if self.host.startswith("unix:") else None

    @property
    def written(self) -> str:
        """The address as nginx's messages write it."""
        return self.host if self.unix is not None else f"{self.host}:{self.port}"

    @property
    def socket_key(self) -> tuple[str, int, bool, bool]:
        """The listening socket it needs: one per address, kind and reuseport."""
        return (self.host, self.port, self.reuseport, self.udp)


@dataclass(frozen=True, slots=True)
class UpstreamServer:
    host: str
    port: int
    weight: int = 1
    max_fails: int = 1
    fail_timeout: float = 10.0
    backup: bool = False
    down: bool = False
    written: str = ""  # the address as the server directive gives it ("hash consistent")
    max_conns: int = 0  # exchanges in progress it may have at once (0: no limit)
    unix: str | None = None  # a unix socket's path (then host and port say nothing)

    @property
    def address(self) -> str:
        """As ``$upstream_addr`` gives it: a socket's as written (nginx's peer name)."""
        if self.unix is not None:
            return self.written or f"unix:{self.unix}"
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Balance:
    """How an upstream block picks a server, when not by round robin (nginx's
    ``least_conn``, ``ip_hash``, ``hash KEY [consistent]``, ``random [two]``)."""

    method: str  # "least_conn", "ip_hash", "hash", "random"
    key: Template | None = None  # hash's
    consistent: bool = False  # hash's
    two: bool = False  # random's: the less busy of two


@dataclass(frozen=True, slots=True)
class ConnPolicy:
    """How a client connection goes on after a request (``http.handler.RequestPolicy``),
    from the settings of the location that answered it, as nginx reads them."""

    keepalive_timeout: float
    keepalive_requests: int
    keepalive_time: float
    lingering_close: str
    lingering_time: float
    lingering_timeout: float
    keepalive_header: int = 0  # the Keep-Alive: timeout=N a keep-alive response names
    reset_timedout_connection: bool = False  # a connection that timed out is reset
    keepalive_disable: int = KEEPALIVE_MSIE6  # browsers.KEEPALIVE_* bits


# one object per distinct set of values, shared by every Settings with them (a
# configuration has a handful): a pure memo, bounded, so a connection compares by
# identity on the request path instead of six values
@lru_cache(maxsize=1024)
def conn_policy(keepalive_timeout: float, keepalive_requests: int, keepalive_time: float,
                lingering_close: str, lingering_time: float,
                lingering_timeout: float, keepalive_header: int = 0,
                reset_timedout_connection: bool = False,
                keepalive_disable: int = KEEPALIVE_MSIE6) -> ConnPolicy:
    return ConnPolicy(keepalive_timeout, keepalive_requests, keepalive_time,
                      lingering_close, lingering_time, lingering_timeout, keepalive_header,
                      reset_timedout_connection, keepalive_disable)


@dataclass(frozen=True)
class Upstream:
    name: str
    servers: tuple[UpstreamServer, ...]
    # idle connections kept per worker; fastgate speaks HTTP/1.1 upstream and pools by
    # default (nginx needs "keepalive N" plus proxy_http_version 1.1 for the same)
    keepalive: int = 32
    keepalive_timeout: float = 60.0
    keepalive_requests: int = 1000
    keepalive_time: float = 3600.0  # a connection older than this carries no more requests
    balance: Balance | None = None  # None: smooth weighted round robin
    implicit: bool = False  # made for a "proxy_pass http://host:port" without a block


def socket_upstream(path: str, written: str = "") -> Upstream:
    """The group of one nginx makes for a ``unix:PATH`` address without an upstream
    block: named "unix:PATH", its one server the socket (its Host is localhost;
    ``written``: its address as the value gave it)."""
    return Upstream(f"unix:{path}", (UpstreamServer("localhost", 0, written=written,
                                                    unix=path),), implicit=True)


@dataclass(frozen=True, slots=True)
class UpstreamTls:
    """How an ``https://`` proxy_pass speaks TLS to its servers (the ``proxy_ssl_*``
    settings of its location): ``name`` is checked against the certificate when
    ``verify`` and sent as SNI when ``server_name``."""

    name: str
    server_name: bool = False
    verify: bool = False
    trusted_certificate: str | None = None
    crl: str | None = None
    protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    ciphers: str | None = None
    certificate: str | None = None  # a client certificate, with its key
    certificate_key: str | None = None
    password_file: tuple[str, ...] | None = None
    conf_command: tuple[tuple[str, str], ...] = ()  # MODULE_ssl_conf_command's
    module: str = "proxy"  # whose MODULE_ssl_* settings these are (for messages)


@dataclass(frozen=True, slots=True)
class Resolver:
    """``resolver ADDRESS... [valid=TIME] [ipv6=on|off]``: the DNS servers a proxy_pass
    with variables asks, and how long an answer is kept (None: its TTL)."""

    addresses: tuple[tuple[str, int], ...]
    valid: float | None = None
    ipv6: bool = True


@dataclass(frozen=True, slots=True)
class ProxyPass:
    """``proxy_pass URL``: the upstream group and the URI part, if the URL has one."""

    scheme: str
    upstream: str  # name of an upstream group (implicit groups are named "host:port")
    host_header: str  # what Host defaults to: the URL's host[:port] as written
    uri: str | None  # None: pass the request URI unchanged; else replaces the prefix
    # the worker's connection pool (UpstreamGroup) for it: the upstream's name, or for
    # https one pool per distinct TLS setting ("NAME tls:N")
    pool: str = ""
    # method and body go as the client sent them (no proxy_method, proxy_set_body or
    # proxy_pass_request_body off), to a known group: what the callback path can carry
    as_is: bool = True
    # gzip on: 1, a request whose Accept-Encoding names gzip leaves the callback path
    # (which relays bodies as they come) for the task path's filters; 2 (gzip_vary on
    # too), every request does (whether Vary is added depends on the response)
    gzip: int = 0
    # a URL with variables, made per request (then the fields above are empty): its
    # host is an upstream block's name, an address, or a name the resolver resolves
    template: Template | None = None
    # an https:// URL whose proxy_ssl_name has variables: its pool is chosen per request,
    # one per name (never a connection made for one name reused for another)
    tls_name: Template | None = None
    host_bytes: bytes = field(init=False, repr=False, compare=False)  # host_header, encoded
    port: str = field(init=False, compare=False)  # $proxy_port: the URL's, or the scheme's

    def __post_init__(self) -> None:
        if not self.pool:
            object.__setattr__(self, "pool", self.upstream)
        object.__setattr__(self, "host_bytes", self.host_header.encode("latin-1"))
        tail = self.host_header.rsplit("]", 1)[-1]
        _, colon, port = tail.rpartition(":")
        if self.upstream.startswith("unix:"):
            port = ""  # (a socket has none: nginx's $proxy_port is empty)
        elif not (colon and port.isascii() and port.isdigit()):
            port = "443" if self.scheme == "https" else "80"
        object.__setattr__(self, "port", port)


@dataclass(frozen=True, slots=True)
class AppPass:
    """``fastcgi_pass``, ``uwsgi_pass``, ``scgi_pass``, ``memcached_pass`` or
    ``grpc_pass ADDRESS``
    (``kind``): an upstream group (a block's name, or the implicit group of
    ``host:port``), or a unix socket's path."""

    kind: str  # "fastcgi", "uwsgi", "scgi", "memcached", "grpc": its settings' prefix
    upstream: str = ""  # the group's name ("" for a unix socket); with TLS, its pool's
    unix: str | None = None  # the socket's path
    secure: bool = False  # suwsgi://, grpcs://: over TLS (uwsgi_ssl_*, grpc_ssl_*)
    # the host the address names, a socket's path (as nginx: its TLS name by default)
    tls_host: str = ""
    authority: str = ""  # as written ("localhost" for a socket): grpc_pass's :authority
    # with variables (fastcgi_pass $to): the value, made concrete per request
    template: Template | None = None
    tls_name: Template | None = None  # MODULE_ssl_name with variables, over TLS


@dataclass(frozen=True, slots=True)
class ImageFilter:
    """``image_filter``: what it does (off, test, size, rotate, resize, crop), the most
    width and height (a number, ``2**64 - 1`` for "-", or a value with variables) and
    the angle to turn by (0: none)."""

    mode: str
    width: int | Template = 0
    height: int | Template = 0
    angle: int | Template = 0


@dataclass(frozen=True, slots=True)
class CgiParam:
    """``fastcgi_param``, ``uwsgi_param``, ``scgi_param NAME VALUE [if_not_empty]``."""

    name: bytes
    value: Template
    if_not_empty: bool = False


ALIAS_ALL = -1


@dataclass(frozen=True, slots=True)
class CharsetMap:
    """One direction of a ``charset_map``: bytes to bytes (``table``: 256 of them),
    bytes to UTF-8 (``table``: a str.translate table from a byte, read as Latin-1, to
    its character), or UTF-8 to bytes (``table``: a code point to its byte). As
    nginx's, a byte the map does not name is itself below 0x80 and "?" above; a
    character it does not name becomes an HTML character reference."""

    kind: str  # "bytes", "to_utf8", "from_utf8"
    table: bytes | dict[int, str] | dict[int, int]


@dataclass(frozen=True, slots=True)
class Root:
    """``root PATH`` or ``alias PATH``: where a URI's file is (and what ``$document_root``
    is, FastCGI's SCRIPT_FILENAME is built from it). A relative path is under the prefix,
    as nginx's."""

    path: str  # the path, made absolute (when it has no variables)
    template: Template | None = None  # a path with variables, rendered per request
    prefix: str = ""
    # alias: how many characters of the URI it replaces (the length of its location's
    # name, inherited by nested locations as nginx's clcf->alias), or ALIAS_ALL in a regex
    # location (the rendered alias is the whole path); 0: root, the URI is appended
    alias: int = 0

    def render(self, r: object) -> str:
        if self.template is None:
            return self.path
        return os.path.join(self.prefix, self.template.render(r))

    def file(self, r: object, uri: str) -> str:
        """The file ``uri`` names (nginx's ngx_http_map_uri_to_path): root's path with
        the URI appended, or alias's with the URI's part past its location's name."""
        base = self.render(r)
        if self.alias == 0:
            return base + uri
        if self.alias == ALIAS_ALL:
            return base
        return base + uri[self.alias:]


@dataclass(frozen=True, slots=True)
class Return:
    code: int
    text: Template | None  # body for 2xx/4xx/5xx codes, Location for 301/302/303/307/308


@dataclass(frozen=True, slots=True)
class AccessRule:
    """``allow`` or ``deny`` an address, a network, ``all`` (``network`` None), or the
    clients of a unix socket (``unix``)."""

    allow: bool
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    unix: bool = False


@dataclass(frozen=True, slots=True)
class SetVar:
    """``set $name value``: a variable of the request's own."""

    name: str  # lower case, without "$"
    value: Template


@dataclass(frozen=True, slots=True)
class Rewrite:
    """``rewrite regex replacement [flag]``. ``flag`` is "", "last", "break",
    "redirect" or "permanent"; ``redirect`` is the status of a redirect (301, 302) or 0.
    As nginx compiles a replacement: its first "?" written in it (never one a capture or
    variable brings) begins the new arguments, ``args``; a redirect's URL keeps its "?"
    and says so (``question``); a replacement that ends in "?" drops the old arguments
    (``keep_args`` false), else they follow."""

    regex: re.Pattern[str]
    replacement: Template  # the new URI (a redirect: the whole URL)
    flag: str
    redirect: int
    args: Template | None = None
    keep_args: bool = True
    question: bool = False
    pattern: str = ""  # the regex as written (rewrite_log names it)


@dataclass(frozen=True, slots=True)
class Break:
    """``break``: the rewrite directives of the current set stop here."""


@dataclass(frozen=True, slots=True)
class Condition:
    """An ``if`` condition: ``op`` "" (a variable: false when empty or "0"), "=", "!=",
    "~", "~*", "!~", "!~*", or a file test "-f", "-d", "-e", "-x" (with "!": negated)."""

    op: str
    left: Template
    right: Template | None = None
    regex: re.Pattern[str] | None = None
    source: str = ""  # as written, for messages
    pattern: str = ""  # the regex as written (rewrite_log names it)


@dataclass(frozen=True)
class If:
    """``if (condition) { ... }``: ``body`` runs when the condition holds; in a location,
    the request then takes ``location``, the if's own configuration, inherited from the
    enclosing location as nginx does (what "if is evil" describes)."""

    condition: Condition
    body: tuple[RewriteOp, ...]
    location: Location | None = None


RewriteOp: TypeAlias = "Return | Rewrite | SetVar | Break | If"


@dataclass(frozen=True, slots=True)
class ErrorPage:
    target: str  # "@name" or a URI (may hold variables: rendered per request)
    target_template: Template
    code: int | None  # "=code" replaces the status; "=" alone takes the target's status
    keep_target_status: bool = False


@dataclass(frozen=True, slots=True)
class TryFiles:
    """``try_files FILE... LAST``: the first FILE that exists (a directory when it ends
    in "/", else anything but one) becomes the URI the location serves; when none does,
    the last argument decides: ``=CODE`` or a named location or a URI (internal
    redirect)."""

    files: tuple[Template, ...]
    fallback_code: int | None
    # "@name" or a URI, with its variables ("/index.php?q=$uri"), rendered per request
    fallback_target: Template | None


@dataclass(frozen=True, slots=True)
class Require:
    values: tuple[Template, ...]
    status: int


@dataclass(frozen=True, slots=True)
class LimitZone:
    """``limit_req_zone`` / ``limit_conn_zone``: a table shared by the workers."""

    name: str
    kind: str  # "req" or "conn"
    key: Template
    size: int  # bytes
    rate: int = 0  # milli-requests per second (limit_req)
    uses_jwt: bool = False  # the key reads $jwt_*: the token is verified first
    sync: bool = False  # shared by the fleet too (with fastgate_cluster)


@dataclass(frozen=True, slots=True)
class Cluster:
    """``fastgate_cluster``: the store the gateways of a fleet share (Redis)."""

    url: str  # redis://, rediss:// or unix://, as given
    shown: str  # the URL without its password, for messages
    timeout: float = 1.0  # connecting and each command; a request never waits on it
    ca: str | None = None  # rediss://: the CAs the store's certificate is checked against


@dataclass(frozen=True, slots=True)
class LimitReq:
    zone: str
    burst: int  # milli-requests
    delay: int | None  # milli-requests served without delay; None: nodelay


@dataclass(frozen=True, slots=True)
class LimitConn:
    zone: str
    limit: int


@dataclass(frozen=True, slots=True)
class Syslog:
    """``syslog:server=ADDR[:PORT][,facility=..][,severity=..][,tag=..][,nohostname]``."""

    server: tuple[str, int] | str  # (host, port) or the path of a unix socket
    facility: int = 23  # local7
    severity: int = 6  # info: access_log lines; error_log lines take their own level
    tag: str = "fastgate"
    hostname: bool = True


@dataclass(frozen=True, slots=True)
class LogFile:
    """Where log lines go: a file, ``stderr``/``stdout``, or syslog."""

    path: str  # as the user wrote it for syslog, else absolute (or stderr/stdout)
    where: Where
    syslog: Syslog | None = None
    default: bool = False  # nginx's implicit logs/access.log: its directory is made


@dataclass(frozen=True, slots=True)
class AccessLog:
    file: LogFile  # "off" never appears: an "off" level has an empty tuple
    format: str
    condition: Template | None = None  # if=: a line only when it renders non-empty, not "0"
    buffer: int = 0  # buffer=: bytes gathered before a write (0: fastgate's 1 s batches)
    flush: float = 0.0  # flush=: the longest a buffered line waits


@dataclass(frozen=True, slots=True)
class LogFormat:
    name: str
    template: Template
    escape: str = "default"
    # escape=default's: what each of the template's variables writes when empty ("-"
    # where nginx's variable is not found), in order
    blanks: tuple[Blank, ...] = ()


# proxy_redirect's first parameter: a literal prefix (or "default"/"off"), a prefix
# with variables, or a regex
RedirectPattern: TypeAlias = "str | Template | re.Pattern[str]"


@dataclass(frozen=True)
class CookieRewrite:
    """One ``proxy_cookie_domain``/``proxy_cookie_path`` rule: a Set-Cookie attribute
    value that ``regex`` finds something in is replaced whole; otherwise a domain equal
    to ``pattern`` (case-insensitive, a leading dot kept aside) or a path that starts
    with it has that part replaced."""

    pattern: Template | None
    regex: re.Pattern[str] | None
    replacement: Template


@dataclass(frozen=True)
class CookieFlags:
    """One ``proxy_cookie_flags`` rule: the cookie it names (case-insensitive; or a
    caseless regex) and the flags to set (secure, httponly, samesite=strict|lax|none)
    or clear (nosecure, nohttponly, nosamesite), each a value that may have variables."""

    name: Template | None
    regex: re.Pattern[str] | None
    flags: tuple[Template, ...]


@dataclass(frozen=True)
class UserFile:
    """A file's path with variables (``auth_basic_user_file``'s for each request,
    ``ssl_certificate``'s for each handshake); a relative one is taken from the
    configuration's directory, as nginx's conf prefix."""

    path: Template
    base: str

    def resolve(self, r: object) -> str:
        path = self.path.render(r)
        return path if path.startswith("/") else f"{self.base}/{path}"


@dataclass(frozen=True)
class ProxyBind:
    """``proxy_bind ADDRESS [transparent]``: the local address connections to upstreams
    leave from (rendered per request when it has variables; empty: the system's
    choice), and whether it may be an address that is not this host's (IP_TRANSPARENT,
    for ``$remote_addr``; needs CAP_NET_ADMIN)."""

    value: Template
    transparent: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything inherited http → server → location (nginx's merge rules; one place:
    ``fastgate.config.merge``). Defaults are nginx's unless the comment says otherwise."""

    auth_jwt: str = "off"  # "off", "on", or "var" (token from auth_jwt_source)
    # NGINX Plus's form (auth_jwt "realm" [token=$var]): the realm of the challenge, and
    # $jwt_claim_*/$jwt_header_* in Plus's encoding; None: the seed module's form
    auth_jwt_realm: Template | None = None
    auth_jwt_source: Template | None = None
    # ("http"|"cookie"|"arg", name) when the source is one such variable: a token given
    # twice there is refused
    auth_jwt_source_var: tuple[str, str] | None = None
    auth_jwt_key: tuple[Key, ...] = ()
    auth_jwt_key_file: tuple[Key, ...] = ()
    auth_jwt_alg: str = "any"
    auth_jwt_require: Require | None = None
    auth_jwt_leeway: float = 0.0
    auth_jwt_options: bool = False
    # tokens are checked against the cluster's revocation list (after the signature)
    auth_jwt_revocation: bool = False
    auth_jwt_cache: int = 10000
    auth_jwt_key_request: str | None = None  # a JWKS URL, fetched by each worker
    auth_jwt_key_request_interval: float | None = None  # None: Cache-Control, else 300 s
    auth_jwt_issuer: tuple[str, ...] = ()
    auth_jwt_audience: tuple[str, ...] = ()
    proxy_set_header: tuple[tuple[str, Template], ...] = ()
    # upstream response headers not passed to the client, and hidden ones passed after
    # all (lower case)
    proxy_hide_header: tuple[str, ...] = ()
    proxy_pass_header: tuple[str, ...] = ()
    # an upstream status >= 300 with an error_page goes through the error_page
    proxy_intercept_errors: bool = False
    # the realip module: the peers trusted to say who the client is, the header they
    # say it in, and whether trusted addresses in it are skipped
    # (addresses.UNIX: the clients of a unix socket)
    set_real_ip_from: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network | str, ...] = ()
    real_ip_header: str = "x-real-ip"
    real_ip_recursive: bool = False
    # the GeoIP module's databases (opened at load), and the proxies whose
    # X-Forwarded-For names the address looked up
    geoip_country: Database | None = None
    geoip_org: Database | None = None
    geoip_city: Database | None = None
    geoip_proxy: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    geoip_proxy_recursive: bool = False
    # the access module: allow/deny rules in order (the first that matches decides;
    # None is "all"), and whether all access checks must pass or any one
    access_rules: tuple[AccessRule, ...] = ()
    satisfy: str = "all"
    valid_referers: Referers | None = None  # $invalid_referer's lists
    post_action: str | None = None  # a location asked once the response is done
    # $secure_link: "HASH[,EXPIRES]" and the string whose MD5 the hash must be; or the
    # older form's secret (the hash in the URI)
    # the browser module: modern_browser's (browser, version) and "unlisted", which a
    # level inherits together; ancient_browser's strings and "netscape4", likewise
    modern_browsers: tuple[tuple[int, int], ...] = ()
    modern_unlisted: bool = False
    ancient_browsers: tuple[str, ...] = ()
    ancient_netscape4: bool = False
    modern_browser_value: str = "1"
    ancient_browser_value: str = "1"
    secure_link: Template | None = None
    secure_link_md5: Template | None = None
    secure_link_secret: str | None = None
    auth_delay: float = 0.0  # seconds a 401 of the access phase waits (brute-force brake)
    # proxy_redirect: ("default", None), ("off", None) or (pattern, replacement), in order
    proxy_redirect: tuple[tuple[RedirectPattern, Template | None], ...] = (("default", None),)
    # a Location that is a path, made absolute (with Host, or the server's name, and the
    # port when it is not the scheme's own) as nginx's header filter does
    absolute_redirect: bool = True
    port_in_redirect: bool = True
    server_name_in_redirect: bool = False
    proxy_connect_timeout: float = 60.0
    proxy_bind: ProxyBind | None = None
    # Set-Cookie rewriting: rules in order, the first that applies to a value wins
    proxy_cookie_domain: tuple[CookieRewrite, ...] = ()
    proxy_cookie_path: tuple[CookieRewrite, ...] = ()
    proxy_cookie_flags: tuple[CookieFlags, ...] = ()
    proxy_read_timeout: float = 60.0
    proxy_send_timeout: float = 60.0
    proxy_buffer_size: int = 4096  # the longest upstream response head (a memory page)
    auth_basic: Template | None = None  # the realm; None: off
    auth_basic_user_file: str | UserFile | None = None  # UserFile: a path with variables
    auth_request: str | None = None  # the authoriser's URI or @name; None: off
    mirror: tuple[str, ...] = ()  # URIs (or @names) each request is copied to
    mirror_request_body: bool = True
    auth_request_set: tuple[tuple[str, Template], ...] = ()
    resolver: Resolver | None = None
    resolver_timeout: float = 30.0
    proxy_method: Template | None = None
    proxy_set_body: Template | None = None
    proxy_pass_request_headers: bool = True
    proxy_pass_request_body: bool = True
    # read the client's body whole before anything goes upstream (nginx's default): in
    # memory up to client_body_buffer_size ($request_body), in a temporary file beyond,
    # in client_body_temp_path (None: the system's temporary directory)
    proxy_request_buffering: bool = True
    client_body_buffer_size: int = 16 * 1024
    client_body_temp_path: str | None = None
    # client_body_in_file_only: "on" every body read goes to a named file, kept after
    # the request ($request_body_file names it), "clean" removed after it, "off" not
    client_body_in_file_only: str = "off"
    proxy_ssl_server_name: bool = False
    # None: the proxy_pass URL's host; a Template: rendered for each request
    proxy_ssl_name: str | Template | None = None
    proxy_ssl_verify: bool = False  # nginx's default: upstream certificates unchecked
    proxy_ssl_trusted_certificate: str | None = None
    proxy_ssl_crl: str | None = None
    # proxy_store and its kin: off (False), under root or alias (True), or a path; and
    # the stored files' modes
    # *_ignore_headers: the upstream headers not acted on, in lower case
    proxy_ignore_headers: frozenset[str] = frozenset()
    fastcgi_ignore_headers: frozenset[str] = frozenset()
    uwsgi_ignore_headers: frozenset[str] = frozenset()
    scgi_ignore_headers: frozenset[str] = frozenset()
    proxy_store: Template | bool = False
    proxy_store_access: int = 0o600
    fastcgi_store: Template | bool = False
    fastcgi_store_access: int = 0o600
    uwsgi_store: Template | bool = False
    uwsgi_store_access: int = 0o600
    scgi_store: Template | bool = False
    scgi_store_access: int = 0o600
    root: Root | None = None  # None: nginx's default, "html" under the prefix
    # the static, index and autoindex modules, and the not-modified and range filters
    index: tuple[Template, ...] = ()  # () : nginx's "index.html"
    autoindex: bool = False
    autoindex_exact_size: bool = True
    autoindex_format: str = "html"  # html, xml, json, jsonp
    autoindex_localtime: bool = False
    etag: bool = True
    if_modified_since: str = "exact"  # off, exact, before
    max_ranges: int | None = None  # None: unlimited
    log_not_found: bool = True
    # the rewrite module: its regexes' matches and the URIs it makes logged (notice)
    rewrite_log: bool = False
    # disable_symlinks: "off" (links followed), "on", "if_not_owner"; from=: the part of
    # a path not checked
    disable_symlinks: str = "off"
    disable_symlinks_from: Template | None = None
    random_index: bool = False
    # the WebDAV module: the methods it answers (none: it declines), its files' modes
    dav_methods: frozenset[str] = frozenset()
    dav_access: int = 0o600
    create_full_put_path: bool = False
    min_delete_depth: int = 0
    # the FastCGI module
    fastcgi_param: tuple[CgiParam, ...] = ()
    fastcgi_index: str | None = None
    fastcgi_split_path_info: re.Pattern[str] | None = None
    fastcgi_pass_request_headers: bool = True
    fastcgi_pass_request_body: bool = True
    fastcgi_connect_timeout: float = 60.0
    fastcgi_send_timeout: float = 60.0
    fastcgi_read_timeout: float = 60.0
    fastcgi_intercept_errors: bool = False
    fastcgi_hide_header: tuple[str, ...] = ()
    fastcgi_pass_header: tuple[str, ...] = ()
    fastcgi_buffer_size: int = 4096  # the longest response head (one memory page)
    fastcgi_catch_stderr: tuple[str, ...] = ()
    # the Content-Type of fastgate's own responses (``return``): by the URI's extension
    # (``types``; None: nginx's built-in three), else ``default_type``
    types: dict[str, str] | None = None
    default_type: str = "text/plain"
    # the charset module: the charset added to a response's Content-Type (None: off),
    # for these types, when it names none; the charset of responses that name none
    # (None: off), and whether a response's own is recoded too; the http block's
    # charset_map tables, by (from, to) in lower case, each pair both ways
    charset: Template | None = None
    charset_types: tuple[str, ...] = ("text/html", "text/xml", "text/plain",
                                      "text/vnd.wap.wml", "application/javascript",
                                      "application/rss+xml")
    source_charset: Template | None = None
    override_charset: bool = False
    charset_maps: dict[tuple[str, str], CharsetMap] = field(default_factory=dict)
    # every charset the configuration names (charset, source_charset, charset_map), in
    # lower case, as first written: nginx's one list, which an upstream's X-Accel-Charset
    # must name a charset of
    charset_names: dict[str, str] = field(default_factory=dict)
    # the memcached module
    memcached_connect_timeout: float = 60.0
    memcached_send_timeout: float = 60.0
    memcached_read_timeout: float = 60.0
    memcached_buffer_size: int = 4096
    memcached_gzip_flag: int = 0
    # the sub filter module: (match, replacement) pairs, in order
    sub_filter: tuple[tuple[Template, Template], ...] = ()
    sub_filter_once: bool = True
    sub_filter_types: tuple[str, ...] = ("text/html",)
    # the gzip filter (proxy.gzip) and the core module's gzip_* tests of a request;
    # gzip_window and gzip_hash as zlib's window bits and memory level
    gzip: bool = False
    gzip_types: tuple[str, ...] = ("text/html",)
    gzip_min_length: int = 20
    gzip_comp_level: int = 1
    gzip_window: int = 15
    gzip_hash: int = 8
    gzip_vary: bool = False
    gzip_proxied: frozenset[str] = frozenset({"off"})
    gzip_http_version: tuple[int, int] = (1, 1)
    gzip_disable: tuple[re.Pattern[str], ...] = ()
    gzip_disable_msie6: bool = False
    gzip_static: str = "off"  # off, on, always
    gunzip: bool = False
    # the XSLT filter: the location's stylesheets (each with its parameters), the
    # parameters of every stylesheet (name, value, a string rather than XPath), the
    # types it takes, and xml_entities' declarations
    xslt_stylesheet: tuple[tuple[Stylesheet, tuple[Template, ...]], ...] = ()
    xslt_param: tuple[tuple[str, Template, bool], ...] = ()
    xslt_types: tuple[str, ...] = ("text/xml",)
    xslt_last_modified: bool = False
    xml_entities: bytes | None = None
    # the image filter (proxy.image_filter): qualities and sharpening as numbers or
    # values with variables
    image_filter: ImageFilter | None = None
    image_filter_jpeg_quality: int | Template = 75
    image_filter_webp_quality: int | Template = 80
    image_filter_sharpen: int | Template = 0
    image_filter_transparency: bool = True
    image_filter_interlace: bool = False
    image_filter_buffer: int = 1024 * 1024
    # the degradation module: the heap size past which "degrade" answers (0: never)
    degradation_sbrk: int = 0
    degrade: int = 0
    sub_filter_last_modified: bool = False
    # the addition filter: the URIs whose answers go before and after a response's body
    # ("": none), for these types (text/html always)
    add_before_body: str = ""
    add_after_body: str = ""
    addition_types: tuple[str, ...] = ("text/html",)
    # the SSI filter (ssi_types: text/html always); a subrequest's answer kept for a
    # variable (SSI's include set=) is at most subrequest_output_buffer_size
    ssi: bool = False
    ssi_silent_errors: bool = False
    ssi_last_modified: bool = False
    ssi_types: tuple[str, ...] = ("text/html",)
    ssi_value_length: int = 255
    subrequest_output_buffer_size: int = 4096
    # the slice module: the size of the slices $slice_range asks for (0: no slicing)
    slice: int = 0
    # limit_rate and limit_rate_after (sizes that may hold variables: proxy.rate), and
    # whether a proxied or FastCGI-family answer is relayed "buffered" (it then has the
    # rate, as nginx's buffered relay has; fastgate buffers neither)
    limit_rate: Template | None = None
    limit_rate_after: Template | None = None
    proxy_buffering: bool = True
    fastcgi_buffering: bool = True
    uwsgi_buffering: bool = True
    scgi_buffering: bool = True
    # a client that goes away leaves its upstream exchange to end (the answer dropped)
    proxy_ignore_client_abort: bool = False
    # SO_KEEPALIVE on the connections each module makes to its servers
    proxy_socket_keepalive: bool = False
    fastcgi_socket_keepalive: bool = False
    uwsgi_socket_keepalive: bool = False
    scgi_socket_keepalive: bool = False
    grpc_socket_keepalive: bool = False
    memcached_socket_keepalive: bool = False
    # the mp4 module: the most of a file read for its atoms at once, and of a moov
    mp4_buffer_size: int = 512 * 1024
    mp4_max_buffer_size: int = 10 * 1024 * 1024
    mp4_start_key_frame: bool = False
    # the uwsgi module
    uwsgi_param: tuple[CgiParam, ...] = ()
    uwsgi_pass_request_headers: bool = True
    uwsgi_pass_request_body: bool = True
    uwsgi_connect_timeout: float = 60.0
    uwsgi_send_timeout: float = 60.0
    uwsgi_read_timeout: float = 60.0
    uwsgi_intercept_errors: bool = False
    uwsgi_hide_header: tuple[str, ...] = ()
    uwsgi_pass_header: tuple[str, ...] = ()
    uwsgi_buffer_size: int = 4096
    uwsgi_modifier1: int = 0
    uwsgi_modifier2: int = 0
    uwsgi_string: str = ""
    # the SCGI module
    scgi_param: tuple[CgiParam, ...] = ()
    scgi_pass_request_headers: bool = True
    scgi_pass_request_body: bool = True
    scgi_connect_timeout: float = 60.0
    scgi_send_timeout: float = 60.0
    scgi_read_timeout: float = 60.0
    scgi_intercept_errors: bool = False
    scgi_hide_header: tuple[str, ...] = ()
    scgi_pass_header: tuple[str, ...] = ()
    scgi_buffer_size: int = 4096
    proxy_ssl_protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    proxy_ssl_ciphers: str | None = None
    proxy_ssl_certificate: str | None = None
    proxy_ssl_certificate_key: str | None = None
    proxy_ssl_password_file: tuple[str, ...] | None = None
    proxy_ssl_conf_command: tuple[tuple[str, str], ...] = ()
    # suwsgi://'s (uwsgi_ssl_*), as proxy_ssl_*'s
    uwsgi_ssl_server_name: bool = False
    uwsgi_ssl_name: str | Template | None = None
    uwsgi_ssl_verify: bool = False
    uwsgi_ssl_trusted_certificate: str | None = None
    uwsgi_ssl_crl: str | None = None
    uwsgi_ssl_protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    uwsgi_ssl_ciphers: str | None = None
    uwsgi_ssl_certificate: str | None = None
    uwsgi_ssl_certificate_key: str | None = None
    uwsgi_ssl_password_file: tuple[str, ...] | None = None
    uwsgi_ssl_conf_command: tuple[tuple[str, str], ...] = ()
    # the gRPC module (grpc_pass): its request headers, as proxy_set_header's, and
    # grpcs://'s TLS (grpc_ssl_*)
    grpc_set_header: tuple[tuple[str, Template], ...] = ()
    grpc_hide_header: tuple[str, ...] = ()
    grpc_pass_header: tuple[str, ...] = ()
    grpc_ignore_headers: frozenset[str] = frozenset()
    grpc_connect_timeout: float = 60.0
    grpc_send_timeout: float = 60.0
    grpc_read_timeout: float = 60.0
    grpc_intercept_errors: bool = False
    grpc_buffer_size: int = 4096
    grpc_ssl_server_name: bool = False
    grpc_ssl_name: str | Template | None = None
    grpc_ssl_verify: bool = False
    grpc_ssl_trusted_certificate: str | None = None
    grpc_ssl_crl: str | None = None
    grpc_ssl_protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    grpc_ssl_ciphers: str | None = None
    grpc_ssl_certificate: str | None = None
    grpc_ssl_certificate_key: str | None = None
    grpc_ssl_password_file: tuple[str, ...] | None = None
    grpc_ssl_conf_command: tuple[tuple[str, str], ...] = ()
    proxy_next_upstream: tuple[str, ...] = ("error", "timeout")
    proxy_next_upstream_tries: int = 0
    # seconds from a request's first try after which no other server is tried (0: none)
    proxy_next_upstream_timeout: float = 0.0
    add_header: tuple[tuple[str, Template, bool], ...] = ()
    # add_trailer: (name, value, always), sent after a chunked response's body
    add_trailer: tuple[tuple[str, Template, bool], ...] = ()
    expires: Expires | None = None  # None: off
    error_page: tuple[tuple[int, ErrorPage], ...] = ()
    # an error page's own error may go to error_page again (until the redirect bound)
    recursive_error_pages: bool = False
    # nginx's error pages (4xx, 5xx) to MSIE and Chrome padded past their "friendly"
    # page's threshold; MSIE told of a 301/302 by a page that refreshes to it
    msie_padding: bool = True
    msie_refresh: bool = False
    client_max_body_size: int = 1024 * 1024
    client_header_timeout: float = 60.0
    client_body_timeout: float = 60.0
    send_timeout: float = 60.0  # a client that reads nothing of a response for this long
    keepalive_timeout: float = 75.0
    keepalive_header: int = 0  # keepalive_timeout's second value (0: no Keep-Alive header)
    keepalive_requests: int = 1000
    keepalive_time: float = 3600.0  # a keep-alive connection's whole life
    # reading what a client still sends, either a request body nothing read (discarded:
    # the connection then carries on) or past a close: at most lingering_time in all,
    # lingering_timeout between reads; lingering_close on, off or always
    lingering_close: str = "on"
    lingering_time: float = 30.0
    lingering_timeout: float = 5.0
    # a request's connection closed for a timeout (its head's, its body's, sending
    # its answer) is reset (RST), not closed
    reset_timedout_connection: bool = False
    # a body of unknown length goes chunked to an HTTP/1.1 client (else close-delimited)
    chunked_transfer_encoding: bool = True
    # the browsers whose requests end their connection: "msie6" (a POST), "safari"
    keepalive_disable: frozenset[str] = frozenset({"msie6"})
    client_header_buffer_size: int = 1024
    large_client_header_buffers: tuple[int, int] = (4, 8192)
    # header names outside [A-Za-z0-9-] never reach a variable or the backend
    underscores_in_headers: bool = False
    merge_slashes: bool = True  # read from the address's default server, as nginx
    ignore_invalid_headers: bool = True
    access_log: tuple[AccessLog, ...] | None = None  # None: not set anywhere
    # TLS (fastgate.config.tls): certificates and keys pair up in order (an RSA and an
    # ECDSA certificate may serve side by side, as in nginx); a path with variables is
    # loaded at each handshake (fastgate.ops.certificates)
    ssl_certificate: tuple[str | UserFile, ...] = ()
    ssl_certificate_key: tuple[str | UserFile, ...] = ()
    ssl_protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")
    ssl_ciphers: str | None = None  # None: Python's default list (stricter than nginx's)
    ssl_prefer_server_ciphers: bool | None = None  # None: Python's (the server's order)
    ssl_session_tickets: bool = True
    ssl_ecdh_curve: str = "auto"
    # (mode: off, none, server; the number of sessions, None: OpenSSL's), nginx's default
    ssl_session_cache: tuple[str, int | None] = ("none", None)
    ssl_session_timeout: int = 300
    ssl_conf_command: tuple[tuple[str, str], ...] = ()
    ssl_dhparam: str | None = None
    # client certificates: "off", "on" (one is required) or "optional"; the CAs that
    # sign them (ssl_client_certificate, also named to the client; ssl_trusted_certificate
    # only checks), how many CAs above the certificate may be, revoked ones
    ssl_verify_client: str = "off"
    ssl_reject_handshake: bool = False  # a handshake that selects this server fails
    ssl_client_certificate: str | None = None
    ssl_trusted_certificate: str | None = None
    ssl_verify_depth: int = 1
    ssl_crl: str | None = None
    # a verified client certificate's status asked of an OCSP responder: "off", "on"
    # (each certificate of the chain but the root) or "leaf"; the responder (""; the
    # certificate's own), whether answers are kept until their nextUpdate
    ssl_ocsp: str = "off"
    ssl_ocsp_responder: str = ""
    ssl_ocsp_cache: str = ""  # the shared cache's name (ssl_ocsp_cache); "": none
    ssl_password_file: tuple[str, ...] | None = None  # the passphrases, tried in order
    ssl_on: bool = False  # the deprecated "ssl on": every listen of the server is ssl
    http2: bool = False  # "http2 on" (nginx 1.25.1+): every listen of the server is http2
    http2_max_concurrent_streams: int = 128
    # server push (nginx 1.22's HTTP/2 module): URIs pushed with a location's answers
    # (an empty tuple: none, "off" included), Link rel=preload headers pushed too, and the
    # pushes a connection may have going at once
    http2_push: tuple[Template, ...] = ()
    http2_push_preload: bool = False
    http2_max_concurrent_pushes: int = 10
    http2_body_preread_size: int = 64 * 1024  # a stream's window before its body is read
    limit_req: tuple[LimitReq, ...] = ()
    limit_req_status: int = 503
    limit_req_log_level: str = "error"
    limit_req_dry_run: bool = False
    limit_conn: tuple[LimitConn, ...] = ()
    limit_conn_status: int = 503
    limit_conn_log_level: str = "error"
    limit_conn_dry_run: bool = False
    # the userid module: "off", "log" (read only), "v1" or "on" (cookies set)
    userid: str = "off"
    userid_name: str = "uid"
    userid_domain: str = ""  # "; domain=NAME", as written into the cookie
    userid_path: str = "; path=/"
    userid_expires: int = 0  # seconds; 2145916555: nginx's "max" date
    userid_flags: tuple[str, ...] = ()
    userid_p3p: str = ""
    userid_service: int | None = None
    userid_mark: str = ""
    # derived: a response gains or changes cookies here (proxy_cookie_*, userid): one
    # test per proxied response, one per local one
    edits_set_cookie: bool = field(init=False, repr=False, compare=False)
    # derived: a proxied response's head gains or changes more than the upstream sent
    # (cookies, add_header, expires, charset, add_trailer): one test per response
    edits_response: bool = field(init=False, repr=False, compare=False)
    # derived: keepalive_* and lingering_* as one shared object (conn_policy), so a
    # client connection sees by identity whether a request's location changes them
    conn_policy: ConnPolicy = field(init=False, repr=False, compare=False)
    sets_userid: bool = field(init=False, repr=False, compare=False)
    # the charset module may recode a response's body here
    recodes: bool = field(init=False, repr=False, compare=False)
    # a response's body may change here (sub_filter, recoding, SSI, additions:
    # proxy.output; the image filter and XSLT: proxy.held): one test per response
    # where none does
    filters_bodies: bool = field(init=False, repr=False, compare=False)
    # those, or gzip, or gunzip: a response's head and body may change on their way out
    filters_output: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sets_userid", self.userid in ("on", "v1"))
        object.__setattr__(self, "conn_policy", conn_policy(
            self.keepalive_timeout, self.keepalive_requests, self.keepalive_time,
            self.lingering_close, self.lingering_time, self.lingering_timeout,
            self.keepalive_header, self.reset_timedout_connection,
            (KEEPALIVE_MSIE6 if "msie6" in self.keepalive_disable else 0)
            | (KEEPALIVE_SAFARI if "safari" in self.keepalive_disable else 0)))
        object.__setattr__(self, "recodes", self.charset is not None and (
            self.source_charset is not None or self.override_charset))
        object.__setattr__(self, "filters_bodies", bool(
            self.sub_filter or self.recodes or self.ssi or self.add_before_body
            or self.add_after_body or self.xslt_stylesheet
            or (self.image_filter is not None and self.image_filter.mode != "off")))
        object.__setattr__(self, "filters_output",
                           self.filters_bodies or self.gzip or self.gunzip)
        object.__setattr__(self, "edits_set_cookie", bool(
            self.proxy_cookie_path or self.proxy_cookie_domain or self.proxy_cookie_flags
            or self.sets_userid))
        object.__setattr__(self, "edits_response", bool(
            self.edits_set_cookie or self.add_header or self.expires is not None
            or self.charset is not None or self.add_trailer))

    def error_page_for(self, status: int) -> ErrorPage | None:
        for code, page in self.error_page:
            if code == status:
                return page
        return None


@dataclass(frozen=True, eq=False)
class JwtCheck:
    """What a location's ``auth_jwt`` checks a token against. Locations whose keys,
    algorithm, leeway, cache size, issuers and audiences are the same share one (the
    worker builds one ``Verifier``, and so one cache, per ``JwtCheck``: a token verified
    under ``/api/`` is a cache hit under ``/api/v2/``). Compared by identity: the loader
    shares them; a dict lookup by one costs no field hashing."""

    keys: tuple[Key, ...]  # the static keys (auth_jwt_key, auth_jwt_key_file)
    algorithm: str
    leeway: float
    cache_size: int
    issuers: tuple[str, ...]
    audiences: tuple[str, ...]
    # auth_jwt_key_request's URL and interval: the keys it fetches join the static ones
    key_request: str | None = None
    key_request_interval: float | None = None


@dataclass(frozen=True)
class Location:
    """A ``location`` block, with its settings merged."""

    modifier: str  # "=", "^~", "", "~", "~*", "@"
    pattern: str
    settings: Settings
    where: Where
    regex: re.Pattern[str] | None = None
    proxy_pass: ProxyPass | None = None
    app_pass: AppPass | None = None  # fastcgi_pass, uwsgi_pass, scgi_pass, memcached_pass
    # the rewrite module's directives, in order (the location rewrite phase)
    rewrites: tuple[RewriteOp, ...] = ()
    try_files: TryFiles | None = None
    # a content handler of the location's own (nginx's clcf->handler for modules that are
    # not proxies): "fastgate" (fastgate_status), "stub" (stub_status), "empty_gif", "flv",
    # "mp4"
    own_content: str = ""
    internal: bool = False  # reached only by internal redirects
    jwt: JwtCheck | None = None  # auth_jwt's check (None: auth_jwt off)
    children: LocationTree | None = None
    # limit_except: the methods it names (GET brings HEAD) and the configuration every
    # other method gets (the location's, with the block's directives over it)
    limit_except: tuple[frozenset[str], Location] | None = None

    @functools.cached_property
    def named_captures(self) -> tuple[tuple[str, int], ...]:
        """The regex's named captures: (lowercased name, group number)."""
        if self.regex is None:
            return ()
        return tuple((n.lower(), i) for n, i in self.regex.groupindex.items())

    @property
    def name(self) -> str:
        return f"{self.modifier} {self.pattern}".strip()

    @functools.cached_property
    def subrequest_direct(self) -> bool:
        """A subrequest (auth_request's, mirror's) may come here without running the
        location's phases: it answers with ``return`` first, or proxies with no
        rewrite-module directive and no try_files before."""
        if self.rewrites and isinstance(self.rewrites[0], Return):
            return True
        return self.proxy_pass is not None and not self.rewrites and self.try_files is None


# ``find``'s captures when the answer is nginx's auto_redirect (compared by identity):
# a 301 to the location's name, not the location's content
AUTO_REDIRECT: tuple[str, ...] = ("<auto_redirect>",)


@dataclass(frozen=True, eq=False)  # compared (and hashed) by identity: a memo's key
class LocationTree:
    """Location matching, as ``ngx_http_core_find_location`` does it.

    1. an exact ``=`` match ends the search;
    2. a URI that is the name of a prefix location ending in "/" that proxies, without
       the slash, gets a 301 to that name (nginx's auto_redirect; an exact or prefix
       location of that very URI wins);
    3. otherwise the longest matching prefix is remembered (its nested locations are
       searched the same way, and a nested exact or regex match wins);
    4. a ``^~`` longest prefix skips the regexes;
    5. regexes (``~`` case-sensitive, ``~*`` case-insensitive) are tried in the order of the
       file; the first match wins and its captures become ``$1``, ``$2``...;
    6. otherwise the longest prefix is used. Named locations (``@name``) are only reached by
       ``error_page`` and ``try_files``.
    """

    exact: dict[str, Location] = field(default_factory=dict)
    prefixes: tuple[Location, ...] = ()  # longest pattern first
    regexes: tuple[Location, ...] = ()  # file order
    named: dict[str, Location] = field(default_factory=dict)
    # nginx's auto_redirect: a prefix location ending in "/" that proxies answers its
    # name without the slash with a 301 to the name, before any regex (so "/api" never
    # falls through to "location /" when "location /api/" is the protected one)
    redirects: dict[str, Location] = field(default_factory=dict)

    @classmethod
    def build(cls, locations: list[Location]) -> LocationTree:
        exact: dict[str, Location] = {}
        prefixes: dict[str, Location] = {}
        regexes: list[Location] = []
        named: dict[str, Location] = {}
        for loc in locations:
            if loc.modifier == "=":
                table = exact
            elif loc.modifier == "@":
                table = named
            elif loc.modifier in ("", "^~"):
                table = prefixes
            else:
                regexes.append(loc)
                continue
            if loc.pattern in table:
                if table is named:
                    continue  # nginx 1.22 takes it; the first answers (the loader warns)
                raise ConfigError(f'duplicate location "{loc.pattern}"', loc.where.file,
                                  loc.where.line)
            table[loc.pattern] = loc
        ordered = tuple(sorted(prefixes.values(), key=lambda loc: len(loc.pattern), reverse=True))
        redirects: dict[str, Location] = {}
        for loc in (*exact.values(), *ordered):
            name = loc.pattern
            if (loc.proxy_pass is not None and len(name) > 1 and name.endswith("/")
                    and name[:-1] not in exact and name[:-1] not in prefixes):
                redirects.setdefault(name[:-1], loc)
        return cls(exact, ordered, tuple(regexes), named, redirects)

    def find(self, uri: str) -> tuple[Location | None, tuple[str, ...]]:
        """The location for ``uri`` and the regex captures (``$0`` first) if a regex won:
        a pure function of the two (the request path keeps its answers, in
        ``proxy.locate``)."""
        loc, caps, _ = self._find(uri)
        return loc, caps

    def _find(self, uri: str) -> tuple[Location | None, tuple[str, ...], bool]:
        hit = self.exact.get(uri)
        if hit is not None:
            return hit, (), True
        if self.redirects:
            hit = self.redirects.get(uri)
            if hit is not None:
                return hit, AUTO_REDIRECT, True
        best = None
        for loc in self.prefixes:
            if uri.startswith(loc.pattern):
                best = loc
                break
        noregex = best is not None and best.modifier == "^~"
        if best is not None and best.children is not None:
            inner, caps, done = best.children._find(uri)
            if inner is not None:
                if done:
                    return inner, caps, True
                best = inner
                noregex = noregex or inner.modifier == "^~"
        if not noregex:
            for loc in self.regexes:
                assert loc.regex is not None
                m = loc.regex.search(uri)
                if m is not None:
                    if loc.children is not None:
                        inner, caps, done = loc.children._find(uri)
                        if inner is not None and done:
                            return inner, caps, True
                    return loc, (m.group(0),) + tuple(g or "" for g in m.groups()), True
        return best, (), noregex

    def all(self) -> list[Location]:
        """Every location, nested ones included (for load-time checks)."""
        out: list[Location] = []
        for loc in (*self.exact.values(), *self.prefixes, *self.regexes, *self.named.values()):
            out.append(loc)
            if loc.children is not None:
                out.extend(loc.children.all())
        return out


@dataclass(frozen=True)
class Server:
    listens: tuple[Listen, ...]
    server_names: tuple[str, ...]
    settings: Settings
    locations: LocationTree
    where: Where
    # the rewrite module's directives at server level: the server rewrite phase
    rewrites: tuple[RewriteOp, ...] = ()
    # the server's own settings as a location, for requests no location matches
    fallback: Location | None = None
    # checks before the server's rewrites (a client certificate, realip at server
    # level): one test per request where there are none
    checks_first: bool = False

    @property
    def name(self) -> str:
        """``$server_name``: the first name, without the leading dot of a
        ``.example.com`` (a regex keeps its ``~``), as nginx's merge makes it."""
        name = self.server_names[0] if self.server_names else ""
        return name[1:] if name.startswith(".") else name

    def location_for(self, uri: str) -> Location | None:
        """The location a subrequest's URI (or ``@name``) reaches."""
        if uri.startswith("@"):
            return self.locations.named.get(uri)
        loc, _ = self.locations.find(uri.partition("?")[0])
        return loc if loc is not None else self.fallback


@dataclass(frozen=True, slots=True)
class Expires:
    """``expires [modified] TIME|@TIME|epoch|max``: ``kind`` "after" (``seconds`` from
    the response, maybe negative), "modified" (from the response's Last-Modified, else
    as "after"), "daily" (the next time of day ``seconds`` after midnight, local time),
    "epoch" or "max"; "value": ``template``, with variables, parsed for each response
    (``modified`` given with it or not)."""

    kind: str
    seconds: float = 0.0
    template: Template | None = None
    modified: bool = False


@dataclass(frozen=True, slots=True)
class ErrorLogFile:
    """One ``error_log FILE [LEVEL]``."""

    file: LogFile
    level: str = "error"


@dataclass(frozen=True, slots=True)
class User:
    """``user NAME [GROUP]``, resolved at load: whom the workers run as."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class StreamServer:
    """A ``server`` of the ``stream`` block (nginx's ngx_stream_core_module and
    ngx_stream_proxy_module): TCP connections on ``listens`` are proxied to
    ``proxy_pass`` or answered with ``return``'s text. ``settings`` carries what the
    stream server shares with HTTP's: the TLS settings (``ssl_*``) and ``allow``/``deny``."""

    listens: tuple[Listen, ...]
    settings: Settings
    where: Where
    proxy_pass: Template | None = None  # an upstream name or HOST:PORT, rendered per session
    upstream: str | None = None  # proxy_pass without variables: the group, known at load
    return_value: Template | None = None
    sets: tuple[SetVar, ...] = ()  # set $name value, in order (pre-access)
    connect_timeout: float = 60.0
    timeout: float = 600.0  # proxy_timeout: the longest pause in both directions
    next_upstream: bool = True
    next_upstream_tries: int = 0  # 0: as many as the group has servers
    next_upstream_timeout: float = 0.0  # 0: no bound
    send_proxy_protocol: bool = False  # proxy_protocol on: a v1 header goes upstream first
    proxy_ssl: bool = False  # TLS to the upstream server, with settings' proxy_ssl_*
    half_close: bool = False
    proxy_requests: int = 0  # UDP: a client's datagrams a session takes (0: all)
    proxy_responses: int | None = None  # UDP: answers expected per datagram (None: any)
    # bytes per second from the client and from the upstream server (None: no limit);
    # sizes that may hold variables, read once connected as nginx reads them
    upload_rate: Template | None = None
    download_rate: Template | None = None
    tcp_nodelay: bool = True
    preread: bool = False  # ssl_preread: the ClientHello is read before proxying
    preread_timeout: float = 30.0
    preread_buffer_size: int = 16384
    proxy_protocol_timeout: float = 30.0
    ssl_handshake_timeout: float = 60.0
    alpn: tuple[str, ...] = ()  # ssl_alpn: the protocols offered, in order
    access_log: tuple[AccessLog, ...] = ()


@dataclass(frozen=True)
class Stream:
    """The ``stream`` block: its servers, and the upstream groups and log formats of its
    own — a namespace apart from HTTP's (its variables are reached by the templates
    that name them)."""

    servers: tuple[StreamServer, ...]
    upstreams: dict[str, Upstream] = field(default_factory=dict)
    log_formats: dict[str, LogFormat] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthHttp:
    """``auth_http URL``: the HTTP server a mail server asks who may log in and where
    to (nginx's ngx_mail_auth_http_module)."""

    host: str
    port: int
    host_header: str
    uri: str
    unix: str | None = None  # a unix socket's path (then host and port say nothing)

    @property
    def name(self) -> str:
        """As nginx's messages name it."""
        return f"unix:{self.unix}" if self.unix is not None else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class MailServer:
    """A ``server`` of the ``mail`` block (nginx's ngx_mail_*_module): an IMAP or POP3
    client logs in here; ``auth_http`` says whether and to which server, and the session
    is proxied there after fastgate logs in on the client's behalf."""

    listens: tuple[Listen, ...]
    protocol: str  # "imap", "pop3" or "smtp"
    settings: Settings  # the TLS settings (ssl_*)
    where: Where
    auth_http: AuthHttp
    # the replies the configuration decides (capability lists), made once at load
    capability: bytes = b""
    starttls_capability: bytes = b""
    starttls_only_capability: bytes = b""
    auth_capability: bytes = b""  # POP3's "AUTH" without an argument
    auth_methods: frozenset[str] = frozenset({"plain"})  # imap_auth / pop3_auth
    auth_http_headers: bytes = b""  # auth_http_header lines, each with its CRLF
    auth_http_timeout: float = 60.0
    auth_http_pass_client_cert: bool = False
    server_name: str = ""  # the salt's host (the machine's name unless set)
    timeout: float = 60.0  # the client's silence before login
    max_errors: int = 5
    client_buffer: int = 4096  # the longest command line before login
    proxy_buffer: int = 4096  # the longest reply line of the mail server during login
    proxy_timeout: float = 86400.0  # the client's silence once proxied
    pass_error_message: bool = False
    send_proxy_protocol: bool = False  # proxy_protocol on: a v1 header to the mail server
    starttls: str = "off"  # "on", "only" or "off"
    # SMTP's own
    smtp_greeting: bytes = b""  # "220 NAME ESMTP ready"
    smtp_helo: bytes = b""  # HELO's reply
    greeting_delay: float = 0.0  # smtp_greeting_delay: a client that speaks first is refused
    xclient: bool = True  # XCLIENT to the mail server: the client's address, login, name
    smtp_auth_upstream: bool = False  # proxy_smtp_auth: AUTH PLAIN to the mail server
    resolver: Resolver | None = None  # the client's name (PTR, then confirmed) for SMTP
    resolver_timeout: float = 30.0
    # set_real_ip_from: peers whose PROXY header (listen ... proxy_protocol) names the
    # client (addresses.UNIX: the clients of a unix socket)
    real_ip_from: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network | str, ...] = ()


@dataclass(frozen=True)
class Mail:
    """The ``mail`` block: its servers."""

    servers: tuple[MailServer, ...]


@dataclass(frozen=True)
class Config:
    path: str
    worker_processes: int = 1
    http_engine: str = "auto"
    worker_connections: int = 512
    # how long a graceful stop or a reload waits for in-flight requests before it closes
    # them (nginx waits without end unless set; a gateway should not hang a deploy)
    worker_shutdown_timeout: float = 30.0
    # every main-level error_log, each written from its own level up (nginx: several
    # may be given; the default is stderr at "error")
    error_logs: tuple[ErrorLogFile, ...] = (ErrorLogFile(LogFile("stderr", Where("", 0))),)
    pid: str | None = None  # None: "pid off"
    user: User | None = None  # set only when fastgate starts as root
    servers: tuple[Server, ...] = ()
    upstreams: dict[str, Upstream] = field(default_factory=dict)
    maps: tuple[Lookup, ...] = ()  # map, geo, split_clients
    log_formats: dict[str, LogFormat] = field(default_factory=dict)
    zones: dict[str, LimitZone] = field(default_factory=dict)
    ocsp_caches: dict[str, int] = field(default_factory=dict)  # ssl_ocsp_cache: name -> size
    cluster: Cluster | None = None  # fastgate_cluster
    # pools of https:// proxy_pass: pool name -> (upstream, its TLS settings)
    tls_pools: dict[str, tuple[str, UpstreamTls]] = field(default_factory=dict)
    jwt_checks: tuple[JwtCheck, ...] = ()  # every location's, each once
    claims: frozenset[str] = frozenset()  # $jwt_claim_* names the config references
    # the variables the configuration defines (map, set...) by name, for names met only
    # at run time (SSI's echo): with the built-ins, variables.find_variable
    variables: Mapping[str, Getter] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # "[warn] ... in FILE:LINE", printed at start
    log_files: tuple[LogFile, ...] = ()  # every log the configuration names, opened at start
    stream: Stream | None = None  # the stream block: TCP proxying
    mail: Mail | None = None  # the mail block: IMAP and POP3 proxying
