"""What nginx's three CGI-family modules (FastCGI, uwsgi, SCGI) share: the pass
directive's address forms, the parameters, and the directives each has under its own
prefix (``fastcgi_``, ``uwsgi_``, ``scgi_``) with the same meaning — timeouts, header
hiding and passing, error interception, the response head's size — or with the same
reason to be accepted and ignored (buffering, caching, retries, temporary files)."""

from __future__ import annotations

from fastgate.config.context import HSL, LIF, LOCATION, Context, Handler, Level, Spec
from fastgate.config.directives.args import (
    access_arg,
    appending,
    check_header_name,
    flag_arg,
    ignored,
    setting,
    size_arg,
    store_arg,
    time_arg,
)
from fastgate.config.directives.ignored import NO_BUFFERS, NO_RANGES, NO_TEMP, off_is_ours
from fastgate.config.directives.proxy import proxy_ignore_headers, streaming
from fastgate.config.model import AppPass, CgiParam
from fastgate.config.parser import Directive
from fastgate.config.values import parse_host_port

ONE_SERVER = "a request is sent to one server of its group, not retried"


def pass_handler(kind: str, schemes: tuple[str, ...] = ()) -> Handler:
    """``KIND_pass [SCHEME://]ADDRESS``: host:port, an upstream block's name, or
    ``unix:PATH``; ``schemes`` are the URL prefixes the module takes (uwsgi's
    ``uwsgi://``)."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        lvl.once(d)
        other = lvl.local.get("app_pass")
        if other is not None:
            raise d.error(f'"{d.name}" and "{other.kind}_pass" in one location: name one '
                          "content handler")
        target = d.args[0]
        if "$" in target:
            if kind == "memcached":
                raise d.error(f'"{d.name}" with variables is not in fastgate (nor in '
                              "nginx): name an address, a unix socket or an upstream block")
            # (nginx's ngx_http_fastcgi_eval, ngx_http_grpc_eval: read per request)
            lvl.local["app_pass"] = AppPass(kind, template=ld.compile(target, d))
            return
        scheme, sep, rest = target.partition("://")
        if sep:
            if scheme not in schemes:
                raise d.error(f'invalid host in upstream "{target}"' if not schemes
                              else f'invalid URL prefix in "{target}"')
            target = rest
        secure = scheme in ("suwsgi", "grpcs")  # (uwsgi, gRPC over TLS)
        if target.startswith("unix:"):
            path = target[len("unix:"):]
            if not path:
                raise d.error(f'no path in "{d.args[0]}" of the "{d.name}" directive')
            lvl.local["app_pass"] = AppPass(kind, unix=ld.path_of(path), secure=secure,
                                            tls_host=path, authority="localhost")
            return
        bare = ":" not in target.lstrip("[").split("]")[-1]
        if bare and target in ld.upstream_names:
            lvl.local["app_pass"] = AppPass(kind, upstream=target, tls_host=target,
                                            secure=secure, authority=target)
            return
        if bare:
            raise d.error(f'no port in upstream "{target}"')
        host, port = parse_host_port(d, target, 0)
        lvl.local["app_pass"] = AppPass(kind, upstream=ld.implicit_upstream(host, port, d),
                                        tls_host=host, secure=secure, authority=target)

    return handle


def cgi_param(ld: Context, d: Directive) -> CgiParam:
    if len(d.args) == 3 and d.args[2] != "if_not_empty":
        raise d.error(f'invalid parameter "{d.args[2]}"')
    name = d.args[0]
    if not name or len(name.encode()) > 127:
        # nginx's FastCGI writes a parameter's name length in one byte
        raise d.error(f'invalid parameter name "{name}"')
    return CgiParam(name.encode("latin-1", "replace"), ld.compile(d.args[1], d),
                    len(d.args) == 3)


def header_name(ld: Context, d: Directive) -> str:
    check_header_name(d, d.args[0])
    return d.args[0].lower()


def common_specs(kind: str, pass_: Handler | None = None) -> list[Spec]:
    """The directives every CGI-family module has, under ``kind``'s prefix (``pass_``:
    the pass directive's handler, when the module's own)."""
    p = kind + "_"
    return [
        Spec(p + "pass", frozenset({LOCATION, LIF}), 1, 1, pass_ or pass_handler(kind)),
        Spec(p + "param", HSL, 2, 3, appending(p + "param", cgi_param)),
        Spec(p + "pass_request_headers", HSL, 1, 1,
             setting(p + "pass_request_headers", flag_arg)),
        Spec(p + "pass_request_body", HSL, 1, 1, setting(p + "pass_request_body", flag_arg)),
        Spec(p + "connect_timeout", HSL, 1, 1, setting(p + "connect_timeout", time_arg)),
        Spec(p + "send_timeout", HSL, 1, 1, setting(p + "send_timeout", time_arg)),
        Spec(p + "read_timeout", HSL, 1, 1, setting(p + "read_timeout", time_arg)),
        Spec(p + "intercept_errors", HSL, 1, 1, setting(p + "intercept_errors", flag_arg)),
        Spec(p + "hide_header", HSL, 1, 1, appending(p + "hide_header", header_name)),
        Spec(p + "pass_header", HSL, 1, 1, appending(p + "pass_header", header_name)),
        Spec(p + "ignore_headers", HSL, 1, None, proxy_ignore_headers),
        Spec(p + "buffer_size", HSL, 1, 1, setting(p + "buffer_size", size_arg)),
        Spec(p + "store", HSL, 1, 1, setting(p + "store", store_arg)),
        Spec(p + "store_access", HSL, 1, 3, setting(p + "store_access", access_arg)),
        Spec(p + "buffering", HSL, 1, 1, streaming),
        Spec(p + "request_buffering", HSL, 1, 1, ignored(
            "a request's body is read whole before it is sent, as nginx's default")),
        Spec(p + "buffers", HSL, 2, 2, ignored(NO_BUFFERS)),
        Spec(p + "busy_buffers_size", HSL, 1, 1, ignored(NO_BUFFERS)),
        Spec(p + "max_temp_file_size", HSL, 1, 1, ignored(NO_TEMP)),
        Spec(p + "temp_file_write_size", HSL, 1, 1, ignored(NO_TEMP)),
        Spec(p + "next_upstream", HSL, 1, None, ignored(ONE_SERVER)),
        Spec(p + "next_upstream_tries", HSL, 1, 1, ignored(ONE_SERVER)),
        Spec(p + "next_upstream_timeout", HSL, 1, 1, ignored(ONE_SERVER)),
        Spec(p + "force_ranges", HSL, 1, 1, ignored(NO_RANGES)),
        Spec(p + "limit_rate", HSL, 1, 1, ignored(
            "upstream responses are read as fast as they come")),
        Spec(p + "ignore_client_abort", HSL, 1, 1, off_is_ours(
            "when the client goes away, its upstream exchange is dropped")),
        Spec(p + "socket_keepalive", HSL, 1, 1, setting(p + "socket_keepalive", flag_arg)),
        Spec(p + "bind", HSL, 1, 2, ignored(
            "connections to the application leave from the address the system chooses")),
    ]


__all__ = ["common_specs", "pass_handler"]
