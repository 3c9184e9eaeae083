"""The memcached module (``ngx_http_memcached_module``): ``memcached_pass`` answers
from memcached (the key is ``$memcached_key``, which ``set`` gives), its timeouts,
``memcached_buffer_size`` and ``memcached_gzip_flag``; its retry, bind and keep-alive
knobs are accepted with one ``[warn]`` each, as the CGI family's are."""

from __future__ import annotations

from fastgate.config.context import HSL, LIF, LOCATION, Context, Spec
from fastgate.config.directives.args import flag_arg, ignored, setting, size_arg, time_arg
from fastgate.config.directives.cgi import ONE_SERVER, pass_handler
from fastgate.config.parser import Directive
from fastgate.config.values import parse_number


def gzip_flag(ld: Context, d: Directive) -> int:
    return parse_number(d, d.args[0])


SPECS = [
    Spec("memcached_pass", frozenset({LOCATION, LIF}), 1, 1, pass_handler("memcached")),
    Spec("memcached_connect_timeout", HSL, 1, 1,
         setting("memcached_connect_timeout", time_arg)),
    Spec("memcached_send_timeout", HSL, 1, 1, setting("memcached_send_timeout", time_arg)),
    Spec("memcached_read_timeout", HSL, 1, 1, setting("memcached_read_timeout", time_arg)),
    Spec("memcached_buffer_size", HSL, 1, 1, setting("memcached_buffer_size", size_arg)),
    Spec("memcached_gzip_flag", HSL, 1, 1, setting("memcached_gzip_flag", gzip_flag)),
    Spec("memcached_next_upstream", HSL, 1, None, ignored(ONE_SERVER)),
    Spec("memcached_next_upstream_tries", HSL, 1, 1, ignored(ONE_SERVER)),
    Spec("memcached_next_upstream_timeout", HSL, 1, 1, ignored(ONE_SERVER)),
    Spec("memcached_bind", HSL, 1, 2, ignored(
        "connections to memcached leave from the address the system chooses")),
    Spec("memcached_socket_keepalive", HSL, 1, 1, setting("memcached_socket_keepalive", flag_arg)),
]

__all__ = ["SPECS"]
