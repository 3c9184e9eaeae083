"""The FastCGI module (``ngx_http_fastcgi_module``): ``fastcgi_pass`` to a TCP address,
an upstream block or a unix socket, ``fastcgi_param``, ``fastcgi_index``,
``fastcgi_split_path_info``, the timeouts, header hiding and passing, error
interception; ``root`` for ``$document_root``. Its buffering, caching and temporary-file
knobs are accepted with one ``[warn]`` each, as the proxy module's are."""

from __future__ import annotations

from fastgate.config.context import HSL, LIF, LOCATION, Context, Level, Spec
from fastgate.config.directives.args import (
    appending,
    check_header_name,
    flag_arg,
    ignored,
    setting,
    size_arg,
    time_arg,
)
from fastgate.config.directives.ignored import NO_BUFFERS, NO_RANGES, NO_TEMP, off_is_ours
from fastgate.config.directives.proxy import proxy_ignore_headers, streaming
from fastgate.config.errors import ConfigError
from fastgate.config.model import FastcgiParam, FastcgiPass, Root
from fastgate.config.parser import Directive
from fastgate.config.regex import compile_regex
from fastgate.config.values import parse_host_port


def set_fastcgi_pass(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    target = d.args[0]
    if "$" in target:
        raise d.error('"fastcgi_pass" with variables is not in fastgate: name an address, '
                      "a unix socket or an upstream block")
    if target.startswith("unix:"):
        path = target[len("unix:"):]
        if not path:
            raise d.error(f'no path in "{target}" of the "fastcgi_pass" directive')
        lvl.local["fastcgi_pass"] = FastcgiPass(unix=ld.path_of(path))
        return
    if "://" in target:
        raise d.error(f'invalid host in upstream "{target}"')
    if ":" not in target.lstrip("[").split("]")[-1] and target in ld.upstream_names:
        lvl.local["fastcgi_pass"] = FastcgiPass(upstream=target)
        return
    if ":" not in target.lstrip("[").split("]")[-1]:
        raise d.error(f'no port in upstream "{target}"')
    host, port = parse_host_port(d, target, 0)
    lvl.local["fastcgi_pass"] = FastcgiPass(upstream=ld.implicit_upstream(host, port, d))


def fastcgi_param(ld: Context, d: Directive) -> FastcgiParam:
    if len(d.args) == 3 and d.args[2] != "if_not_empty":
        raise d.error(f'invalid parameter "{d.args[2]}"')
    name = d.args[0]
    if not name or len(name.encode()) > 127:
        # nginx writes a parameter's name length in one byte
        raise d.error(f'invalid parameter name "{name}"')
    return FastcgiParam(name.encode("latin-1", "replace"), ld.compile(d.args[1], d),
                        len(d.args) == 3)


def split_path_info(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    try:
        pattern = compile_regex(d.args[0], False)
    except ConfigError as e:
        raise d.error(e.message) from None
    if pattern.groups != 2:
        # nginx: the two captures are the script name and the path info
        raise d.error(f'pattern "{d.args[0]}" must have 2 captures')
    lvl.fields["fastcgi_split_path_info"] = pattern


def header_name(ld: Context, d: Directive) -> str:
    check_header_name(d, d.args[0])
    return d.args[0].lower()


def keep_conn(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    flag_arg(ld, d)
    if d.args[0] == "on":
        ld.warn_once('"fastcgi_keep_conn" directive is ignored', "each FastCGI request "
                     "has a connection of its own, closed by the application", d)


def set_root(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    path = d.args[0]
    if "$" in path:
        lvl.fields["root"] = Root("", ld.compile(path, d), ld.path_of("", prefix=True))
    else:
        lvl.fields["root"] = Root(ld.path_of(path, prefix=True).rstrip("/") or "/")
    ld.warn_once('"root" sets $document_root only', "fastgate serves no static files", d)


SPECS = [
    Spec("fastcgi_pass", frozenset({LOCATION, LIF}), 1, 1, set_fastcgi_pass),
    Spec("fastcgi_param", HSL, 2, 3, appending("fastcgi_param", fastcgi_param)),
    Spec("fastcgi_index", HSL, 1, 1, setting("fastcgi_index", lambda ld, d: d.args[0])),
    Spec("fastcgi_split_path_info", HSL, 1, 1, split_path_info),
    Spec("fastcgi_pass_request_headers", HSL, 1, 1,
         setting("fastcgi_pass_request_headers", flag_arg)),
    Spec("fastcgi_pass_request_body", HSL, 1, 1,
         setting("fastcgi_pass_request_body", flag_arg)),
    Spec("fastcgi_connect_timeout", HSL, 1, 1, setting("fastcgi_connect_timeout", time_arg)),
    Spec("fastcgi_send_timeout", HSL, 1, 1, setting("fastcgi_send_timeout", time_arg)),
    Spec("fastcgi_read_timeout", HSL, 1, 1, setting("fastcgi_read_timeout", time_arg)),
    Spec("fastcgi_intercept_errors", HSL, 1, 1, setting("fastcgi_intercept_errors", flag_arg)),
    Spec("fastcgi_hide_header", HSL, 1, 1, appending("fastcgi_hide_header", header_name)),
    Spec("fastcgi_pass_header", HSL, 1, 1, appending("fastcgi_pass_header", header_name)),
    Spec("fastcgi_ignore_headers", HSL, 1, None, proxy_ignore_headers),
    Spec("fastcgi_buffer_size", HSL, 1, 1, setting("fastcgi_buffer_size", size_arg)),
    Spec("fastcgi_catch_stderr", HSL, 1, 1,
         appending("fastcgi_catch_stderr", lambda ld, d: d.args[0])),
    Spec("fastcgi_keep_conn", HSL, 1, 1, keep_conn),
    Spec("fastcgi_buffering", HSL, 1, 1, streaming),
    Spec("fastcgi_request_buffering", HSL, 1, 1, ignored(
        "a FastCGI request's body is read whole before it is sent, as nginx's default")),
    Spec("fastcgi_buffers", HSL, 2, 2, ignored(NO_BUFFERS)),
    Spec("fastcgi_busy_buffers_size", HSL, 1, 1, ignored(NO_BUFFERS)),
    Spec("fastcgi_temp_path", HSL, 1, 4, ignored(NO_TEMP)),
    Spec("fastcgi_max_temp_file_size", HSL, 1, 1, ignored(NO_TEMP)),
    Spec("fastcgi_temp_file_write_size", HSL, 1, 1, ignored(NO_TEMP)),
    Spec("fastcgi_next_upstream", HSL, 1, None, ignored(
        "a FastCGI request is sent to one server of its group, not retried")),
    Spec("fastcgi_next_upstream_tries", HSL, 1, 1, ignored(
        "a FastCGI request is sent to one server of its group, not retried")),
    Spec("fastcgi_next_upstream_timeout", HSL, 1, 1, ignored(
        "a FastCGI request is sent to one server of its group, not retried")),
    Spec("fastcgi_force_ranges", HSL, 1, 1, ignored(NO_RANGES)),
    Spec("fastcgi_limit_rate", HSL, 1, 1, ignored(
        "upstream responses are read as fast as they come")),
    Spec("fastcgi_send_lowat", HSL, 1, 1, ignored("fastgate writes what it has at once")),
    Spec("fastcgi_ignore_client_abort", HSL, 1, 1, off_is_ours(
        "when the client goes away, its upstream exchange is dropped")),
    Spec("fastcgi_socket_keepalive", HSL, 1, 1, off_is_ours(
        "upstream sockets keep the system's TCP keep-alive default (off)")),
    Spec("fastcgi_bind", HSL, 1, 2, ignored(
        "FastCGI connections leave from the address the system chooses")),
    Spec("root", HSL | {LIF}, 1, 1, set_root),
]

__all__ = ["SPECS"]
