"""The proxy module: ``proxy_pass``, ``proxy_set_header``, the proxy timeouts,
``proxy_next_upstream``; the buffering knobs (fastgate streams bodies)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastgate.config import addresses
from fastgate.config.context import (
    HSL,
    LIF,
    LMT,
    LOCATION,
    Context,
    Handler,
    Level,
    Spec,
    unix_group,
)
from fastgate.config.directives.args import (
    access_arg,
    appending,
    bitmask,
    check_header_name,
    flag_arg,
    header_value,
    ignored,
    number_arg,
    setting,
    size_arg,
    store_arg,
    time_arg,
)
from fastgate.config.directives.ignored import off_is_ours
from fastgate.config.directives.slots import check_slot
from fastgate.config.directives.tls import (
    conf_command,
    readable_file,
    ssl_password_file,
    ssl_protocols,
)
from fastgate.config.errors import ConfigError
from fastgate.config.model import (
    CookieFlags,
    CookieRewrite,
    ProxyBind,
    ProxyPass,
    RedirectPattern,
)
from fastgate.config.parser import Directive
from fastgate.config.regex import compile_regex
from fastgate.config.values import (
    is_token,
    parse_flag,
    parse_host_port,
)
from fastgate.variables import Template


def streaming(ld: Context, lvl: Level, d: Directive) -> None:
    """Response buffering knobs: fastgate streams responses, which is what "off" asks
    for (silent); "on" buffers nothing either, and says so — but as nginx's, a response
    relayed unbuffered (off) gets no ``limit_rate`` (``proxy.rate``)."""
    if d.name in ("proxy_buffering", "fastcgi_buffering", "uwsgi_buffering",
                  "scgi_buffering"):
        lvl.once(d)
        lvl.fields[d.name] = parse_flag(d, d.args[0])
    elif check_slot(d):  # (proxy_buffers' number and size, as nginx reads them)
        lvl.once(d)
    if d.args != ("off",):
        ld.warn_once(f'"{d.name}" directive is ignored', "fastgate streams responses "
                     "without buffering them", d)


def set_proxy_pass(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    url = d.args[0]
    if "$" in url:
        # made per request (nginx: the URI part, if any, is then the whole URI sent)
        if not url.lower().startswith(("$", "http://", "https://")):
            raise d.error(f'invalid URL prefix in "{url}"')
        lvl.local["proxy_pass"] = ProxyPass("", "", "", None, template=ld.compile(url, d))
        return
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()  # (nginx's ngx_strncasecmp: "HTTP://" is taken)
    if not sep or scheme not in ("http", "https"):
        raise d.error(f'invalid URL prefix in "{url}"')
    socket: str | None = None
    if rest.startswith("unix:"):  # (nginx's unix:PATH[:URI]: Host is localhost)
        socket, colon, after = rest[5:].partition(":")
        if not socket:
            raise d.error(f'no path in the unix domain socket in "{url}" of the '
                          '"proxy_pass" directive')
        hostport, uri = "localhost", after if colon else None
    else:
        hostport, slash, path = rest.partition("/")
        uri = "/" + path if slash else None
    if not hostport:
        raise d.error(f'no host in "{url}" of the "proxy_pass" directive')
    modifier = lvl.local.get("location", ("", ""))[0]
    if uri is not None and (modifier in ("~", "~*", "@") or
                            lvl.ctx != LOCATION):
        raise d.error('"proxy_pass" cannot have URI part in location given by regular '
                      'expression, or inside named location, or inside "if" statement, '
                      'or inside "limit_except" block')
    default_port = 443 if scheme == "https" else 80
    if socket is not None:
        group = unix_group(ld, ld.path_of(socket))
    elif ":" not in hostport.lstrip("[").split("]")[-1] and hostport in ld.upstream_names:
        group = hostport
    else:
        host, port = parse_host_port(d, hostport, default_port, upstream=True)
        group = ld.implicit_upstream(host, port, d)
    lvl.local["proxy_pass"] = ProxyPass(scheme, group, hostport, uri)


def proxy_set_header(ld: Context, d: Directive) -> tuple[str, Template]:
    name = d.args[0]
    check_header_name(d, name)
    if name.lower() in ("content-length", "transfer-encoding") and d.args[1]:
        # (an empty one, the auth_request idiom, asks for what fastgate does anyway)
        ld.warn(f'"{d.name} {name}" is ignored: fastgate frames the request body it '
                "sends itself (its length, or chunked)", d)
    return (name, header_value(ld, d))


def proxy_http_version(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    if d.args[0] not in ("1.0", "1.1"):
        raise d.error(f'invalid value "{d.args[0]}" in "proxy_http_version" directive')
    if d.args[0] == "1.0":
        ld.warn('"proxy_http_version 1.0" is ignored: fastgate speaks HTTP/1.1 to '
                "upstreams, with keep-alive", d)


def header_name(ld: Context, d: Directive) -> str:
    check_header_name(d, d.args[0])
    return d.args[0].lower()


# what proxy_ignore_headers may name: fastgate acts on none of these upstream headers
# (it caches nothing, follows no X-Accel-* instruction), so ignoring them is its way
IGNORABLE = frozenset({"x-accel-redirect", "x-accel-expires", "x-accel-limit-rate",
                       "x-accel-buffering", "x-accel-charset", "expires", "cache-control",
                       "set-cookie", "vary"})


def proxy_ignore_headers(ld: Context, lvl: Level, d: Directive) -> None:
    """The upstream headers not acted on (of those fastgate acts on: X-Accel-Redirect);
    the others it never acts on. (Every line at a level adds, as nginx's bitmask.)"""
    bitmask(d.name, _ignored_headers)(ld, lvl, d)


def _ignored_headers(ld: Context, d: Directive) -> frozenset[str]:
    for a in d.args:
        if a.lower() not in IGNORABLE:
            raise d.error(f'invalid value "{a}"')
    return frozenset(a.lower() for a in d.args)


def proxy_redirect(ld: Context, lvl: Level, d: Directive) -> None:
    """``proxy_redirect default|off|PATTERN REPLACEMENT``: how Location and Refresh
    headers of upstream responses are rewritten. PATTERN is a prefix (variables allowed)
    or ``~REGEX``/``~*REGEX`` (the value it finds something in is replaced whole, ``$1``...
    usable). ``default`` goes after this location's proxy_pass, which has no variables
    (nginx's errors); ``off`` goes alone at its level (beside another proxy_redirect,
    before or after it, nginx's "is duplicate")."""
    given = lvl.fields.get("proxy_redirect", ())
    if any(p == "off" for p, _ in given) or (d.args == ("off",) and given):
        raise d.error('"proxy_redirect" directive is duplicate')
    if len(d.args) == 1:
        if d.args[0] not in ("default", "off"):
            raise d.error(f'invalid parameter "{d.args[0]}"')
        if d.args[0] == "default":
            pp = lvl.local.get("proxy_pass")
            if pp is None:
                raise d.error('"proxy_redirect default" should be placed after the '
                              '"proxy_pass" directive')
            if pp.template is not None:
                raise d.error('"proxy_redirect default" cannot be used with "proxy_pass" '
                              "directive with variables")
        entry: tuple[RedirectPattern, Template | None] = (d.args[0], None)
    else:
        pattern, replacement = d.args
        if pattern.startswith("~*"):
            entry = (_regex(d, pattern[2:], True), ld.compile(replacement, d))
        elif pattern.startswith("~"):
            entry = (_regex(d, pattern[1:], False), ld.compile(replacement, d))
        else:
            prefix = ld.compile(pattern, d)
            entry = (prefix.source if prefix.is_literal else prefix, ld.compile(replacement, d))
    lvl.origins.setdefault(d.name, d)
    lvl.fields["proxy_redirect"] = lvl.fields.get("proxy_redirect", ()) + (entry,)


NEXT_UPSTREAM = frozenset({"error", "timeout", "invalid_header", "http_500", "http_502",
                           "http_503", "http_504", "http_403", "http_404", "http_429",
                           "non_idempotent", "updating", "off"})  # (updating: a cache's)


def proxy_next_upstream(ld: Context, d: Directive) -> tuple[str, ...]:
    words = tuple(a.lower() for a in d.args)  # (a bitmask: caseless, as nginx's)
    for a, word in zip(d.args, words, strict=True):
        if word not in NEXT_UPSTREAM:
            raise d.error(f'invalid value "{a}"')
    if "off" in words:
        return ()
    return words


def proxy_method(ld: Context, d: Directive) -> Template:
    method = d.args[0]
    if "$" not in method and not is_token(method):
        raise d.error(f'invalid method "{method}"')  # a method is a token (RFC 9110)
    return ld.compile(method, d)


def proxy_ssl_name(ld: Context, d: Directive) -> str | Template | None:
    """The name sent as SNI and checked against the upstream's certificate; with
    variables (``$host``), rendered for each request."""
    if d.args[0] == "$proxy_host":  # nginx's default
        return None
    name = ld.compile(d.args[0], d)
    return d.args[0] if name.is_literal else name


def tls_specs(module: str) -> list[Spec]:
    """``MODULE_ssl_*``: how a module speaks TLS to its upstreams (proxy's https://,
    uwsgi's suwsgi://), read by config.tls.upstream_tls."""
    p = f"{module}_ssl_"
    return [
        Spec(p + "server_name", HSL, 1, 1, setting(p + "server_name", flag_arg)),
        Spec(p + "name", HSL, 1, 1, setting(p + "name", proxy_ssl_name)),
        Spec(p + "verify", HSL, 1, 1, setting(p + "verify", flag_arg)),
        Spec(p + "trusted_certificate", HSL, 1, 1,
             setting(p + "trusted_certificate", readable_file)),
        Spec(p + "crl", HSL, 1, 1, setting(p + "crl", readable_file)),
        Spec(p + "protocols", HSL, 1, None, bitmask(p + "protocols", ssl_protocols)),
        Spec(p + "ciphers", HSL, 1, 1, setting(p + "ciphers", lambda ld, d: d.args[0])),
        Spec(p + "certificate", HSL, 1, 1, setting(p + "certificate", readable_file)),
        Spec(p + "certificate_key", HSL, 1, 1, setting(p + "certificate_key", readable_file)),
        Spec(p + "password_file", HSL, 1, 1, setting(p + "password_file", ssl_password_file)),
        Spec(p + "verify_depth", HSL, 1, 1, ignored(
            "chains are verified to OpenSSL's depth limit; Python's ssl cannot set one")),
        Spec(p + "conf_command", HSL, 2, 2, appending(p + "conf_command", conf_command)),
        Spec(p + "session_reuse", HSL, 1, 1, off_is_ours(
            "a new TLS connection to an upstream makes a full handshake (TLS sessions are "
            "not kept)")),
    ]



def proxy_bind(ld: Context, d: Directive) -> ProxyBind | None:
    """``off``, or an address (``ADDR[:PORT]``) checked at load unless it has variables
    (then each request's value is checked, and one that is not an address is logged and
    not bound, as nginx)."""
    if d.args == ("off",):
        return None
    if len(d.args) == 2 and d.args[1] != "transparent":
        raise d.error(f'invalid parameter "{d.args[1]}"')
    value = ld.compile(d.args[0], d)
    if value.is_literal and addresses.address_port(d.args[0]) is None:
        raise d.error(f'invalid address "{d.args[0]}"')
    return ProxyBind(value, len(d.args) == 2)


def _regex(d: Directive, pattern: str, caseless: bool) -> re.Pattern[str]:
    try:
        return compile_regex(pattern, caseless)
    except ConfigError as e:
        raise d.error(e.message) from None


def cookie_rules(field: str, parse: Callable[[Context, Directive], Any]) -> Handler:
    """``proxy_cookie_*``: rules appended at a level (an inner level with any replaces
    the outer ones), or ``off`` for none, as nginx's (``off`` beside rules at one level
    is nginx's "is duplicate")."""
    add = appending(field, parse)

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        given = lvl.fields.get(field)
        if d.args == ("off",) or given == ():
            if given is not None:
                raise d.error(f'"{d.name}" directive is duplicate')
            lvl.origins.setdefault(d.name, d)
            lvl.fields[field] = ()
            return
        if len(d.args) == 1:
            raise d.error(f'invalid parameter "{d.args[0]}"')
        add(ld, lvl, d)

    return handle


def cookie_domain(ld: Context, d: Directive) -> CookieRewrite:
    pattern, replacement = d.args
    if pattern.startswith("~"):
        return CookieRewrite(None, _regex(d, pattern[1:], True), ld.compile(replacement, d))
    return CookieRewrite(ld.compile(pattern.removeprefix("."), d), None,
                         ld.compile(replacement.removeprefix("."), d))


def cookie_path(ld: Context, d: Directive) -> CookieRewrite:
    pattern, replacement = d.args
    if pattern.startswith("~*"):
        return CookieRewrite(None, _regex(d, pattern[2:], True), ld.compile(replacement, d))
    if pattern.startswith("~"):
        return CookieRewrite(None, _regex(d, pattern[1:], False), ld.compile(replacement, d))
    return CookieRewrite(ld.compile(pattern, d), None, ld.compile(replacement, d))


COOKIE_FLAGS = frozenset({"secure", "nosecure", "httponly", "nohttponly", "samesite=strict",
                          "samesite=lax", "samesite=none", "nosamesite"})


def cookie_flags(ld: Context, d: Directive) -> CookieFlags:
    name, flags = d.args[0], d.args[1:]
    for f in flags:
        if "$" not in f and f.lower() not in COOKIE_FLAGS:
            # nginx skips it when a response comes (a debug line); said once here
            ld.warn(f'invalid proxy_cookie_flags flag "{f}" is skipped', d)
    if name.startswith("~"):
        return CookieFlags(None, _regex(d, name[1:], True),
                           tuple(ld.compile(f, d) for f in flags))
    return CookieFlags(ld.compile(name, d), None, tuple(ld.compile(f, d) for f in flags))

SPECS = [
    Spec("proxy_store", HSL, 1, 1, setting("proxy_store", store_arg)),
    Spec("proxy_store_access", HSL, 1, 3, setting("proxy_store_access", access_arg)),
    Spec("proxy_method", HSL, 1, 1, setting("proxy_method", proxy_method)),
    Spec("proxy_set_body", HSL, 1, 1, setting("proxy_set_body",
                                              lambda ld, d: ld.compile(d.args[0], d))),
    Spec("proxy_pass_request_headers", HSL, 1, 1,
         setting("proxy_pass_request_headers", flag_arg)),
    Spec("proxy_pass_request_body", HSL, 1, 1, setting("proxy_pass_request_body", flag_arg)),
    *tls_specs("proxy"),
    Spec("proxy_hide_header", HSL, 1, 1, appending("proxy_hide_header", header_name)),
    Spec("proxy_pass_header", HSL, 1, 1, appending("proxy_pass_header", header_name)),
    Spec("proxy_intercept_errors", HSL, 1, 1, setting("proxy_intercept_errors", flag_arg)),
    Spec("proxy_ignore_headers", HSL, 1, None, proxy_ignore_headers),
    Spec("proxy_redirect", HSL, 1, 2, proxy_redirect),
    Spec("proxy_pass", frozenset({LOCATION, LIF, LMT}), 1, 1, set_proxy_pass),
    Spec("proxy_set_header", HSL, 2, 2, appending("proxy_set_header", proxy_set_header)),
    Spec("proxy_http_version", HSL, 1, 1, proxy_http_version),
    Spec("proxy_connect_timeout", HSL, 1, 1, setting("proxy_connect_timeout", time_arg)),
    Spec("proxy_bind", HSL, 1, 2, setting("proxy_bind", proxy_bind)),
    Spec("proxy_cookie_domain", HSL, 1, 2, cookie_rules("proxy_cookie_domain", cookie_domain)),
    Spec("proxy_cookie_path", HSL, 1, 2, cookie_rules("proxy_cookie_path", cookie_path)),
    Spec("proxy_cookie_flags", HSL, 1, 4, cookie_rules("proxy_cookie_flags", cookie_flags)),
    Spec("proxy_read_timeout", HSL, 1, 1, setting("proxy_read_timeout", time_arg)),
    Spec("proxy_send_timeout", HSL, 1, 1, setting("proxy_send_timeout", time_arg)),
    Spec("proxy_next_upstream", HSL, 1, None, bitmask("proxy_next_upstream", proxy_next_upstream)),
    Spec("proxy_next_upstream_tries", HSL, 1, 1, setting("proxy_next_upstream_tries", number_arg)),
    Spec("proxy_next_upstream_timeout", HSL, 1, 1,
         setting("proxy_next_upstream_timeout", time_arg)),
    Spec("proxy_socket_keepalive", HSL, 1, 1, setting("proxy_socket_keepalive", flag_arg)),
    Spec("proxy_ignore_client_abort", HSL, 1, 1,
         setting("proxy_ignore_client_abort", flag_arg)),
    Spec("proxy_buffering", HSL, 1, 1, streaming),
    Spec("proxy_request_buffering", HSL, 1, 1, setting("proxy_request_buffering", flag_arg)),
    Spec("proxy_buffers", HSL, 2, 2, streaming),
    Spec("proxy_buffer_size", HSL, 1, 1, setting("proxy_buffer_size", size_arg)),
]
