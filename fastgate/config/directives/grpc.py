"""The gRPC module (``ngx_http_grpc_module``): ``grpc_pass [grpc://|grpcs://]ADDRESS``
(host:port, an upstream block's name, or ``unix:PATH``), the request headers it sets
(``grpc_set_header``, as ``proxy_set_header``), the response headers it hides or passes,
its timeouts, and grpcs://'s TLS (``grpc_ssl_*``, as ``proxy_ssl_*``)."""

from __future__ import annotations

from fastgate.config.context import HSL, LIF, LOCATION, Spec
from fastgate.config.directives.args import (
    appending,
    flag_arg,
    ignored,
    setting,
    size_arg,
    time_arg,
)
from fastgate.config.directives.cgi import ONE_SERVER, header_name, pass_handler
from fastgate.config.directives.proxy import proxy_ignore_headers, proxy_set_header, tls_specs

SPECS = [
    Spec("grpc_pass", frozenset({LOCATION, LIF}), 1, 1, pass_handler("grpc", ("grpc", "grpcs"))),
    Spec("grpc_set_header", HSL, 2, 2, appending("grpc_set_header", proxy_set_header)),
    Spec("grpc_hide_header", HSL, 1, 1, appending("grpc_hide_header", header_name)),
    Spec("grpc_pass_header", HSL, 1, 1, appending("grpc_pass_header", header_name)),
    Spec("grpc_ignore_headers", HSL, 1, None, proxy_ignore_headers),
    Spec("grpc_connect_timeout", HSL, 1, 1, setting("grpc_connect_timeout", time_arg)),
    Spec("grpc_send_timeout", HSL, 1, 1, setting("grpc_send_timeout", time_arg)),
    Spec("grpc_read_timeout", HSL, 1, 1, setting("grpc_read_timeout", time_arg)),
    Spec("grpc_intercept_errors", HSL, 1, 1, setting("grpc_intercept_errors", flag_arg)),
    Spec("grpc_buffer_size", HSL, 1, 1, setting("grpc_buffer_size", size_arg)),
    Spec("grpc_next_upstream", HSL, 1, None, ignored(ONE_SERVER)),
    Spec("grpc_next_upstream_tries", HSL, 1, 1, ignored(ONE_SERVER)),
    Spec("grpc_next_upstream_timeout", HSL, 1, 1, ignored(ONE_SERVER)),
    Spec("grpc_socket_keepalive", HSL, 1, 1, setting("grpc_socket_keepalive", flag_arg)),
    Spec("grpc_bind", HSL, 1, 2, ignored(
        "connections to the application leave from the address the system chooses")),
    *tls_specs("grpc"),
]

__all__ = ["SPECS"]
