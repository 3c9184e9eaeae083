"""What nginx 1.22 takes as the argument of each directive fastgate accepts and
ignores: the kind of its ``ngx_conf_set_*_slot`` (read off nginx's command tables), so
that a value nginx refuses fails ``-t`` here too, with nginx's message, though the
directive does nothing — ``proxy_buffers 8;`` or ``sendfile maybe;`` is a config error
in both; so are the words of its bitmasks (the FastCGI family's ``*_next_upstream``,
``keepalive_disable``) and ``open_log_file_cache``'s parameters. The other directives
nginx reads with handlers of their own are not listed: their arguments are not checked
(``*_bind``, ``aio``, ``directio``...; fuzz/nginx_arguments.py lists them)."""

from __future__ import annotations

from fastgate.config.errors import ConfigError
from fastgate.config.parser import Directive
from fastgate.config.values import (
    number_value,
    parse_flag,
    parse_time,
    size_value,
    time_value,
)

_BY_KIND = {
    "flag": """
    accept_mutex aio_write client_body_in_single_buffer
    daemon fastcgi_buffering fastcgi_cache_background_update fastcgi_cache_lock
    fastcgi_cache_revalidate fastcgi_force_ranges fastcgi_ignore_client_abort
    fastcgi_keep_conn fastcgi_request_buffering
    grpc_ssl_session_reuse gzip_no_buffer log_subrequest
    master_process multi_accept
    open_file_cache_errors open_file_cache_events pcre_jit proxy_buffering
    proxy_cache_background_update proxy_cache_convert_head proxy_cache_lock
    proxy_cache_revalidate proxy_force_ranges
    proxy_ssl_session_reuse
    scgi_buffering scgi_cache_background_update
    scgi_cache_lock scgi_cache_revalidate scgi_force_ranges scgi_ignore_client_abort
    scgi_request_buffering sendfile
    ssi_ignore_recycled_buffers ssl_early_data ssl_stapling ssl_stapling_verify
    tcp_nodelay tcp_nopush uninitialized_variable_warn uwsgi_buffering
    uwsgi_cache_background_update uwsgi_cache_lock uwsgi_cache_revalidate
    uwsgi_force_ranges uwsgi_ignore_client_abort uwsgi_request_buffering
    uwsgi_ssl_session_reuse
    """,
    "size": """
    connection_pool_size fastcgi_busy_buffers_size fastcgi_limit_rate
    fastcgi_max_temp_file_size fastcgi_send_lowat fastcgi_temp_file_write_size
    http2_chunk_size http2_pool_size http2_recv_buffer_size postpone_gzipping
    postpone_output proxy_busy_buffers_size proxy_limit_rate
    proxy_max_temp_file_size proxy_send_lowat proxy_temp_file_write_size read_ahead
    request_pool_size scgi_busy_buffers_size scgi_limit_rate scgi_max_temp_file_size
    scgi_temp_file_write_size send_lowat sendfile_max_chunk ssi_min_file_chunk
    ssl_buffer_size uwsgi_busy_buffers_size uwsgi_limit_rate
    uwsgi_max_temp_file_size uwsgi_temp_file_write_size
    """,
    "off": """
    directio_alignment fastcgi_cache_max_range_offset proxy_cache_max_range_offset
    scgi_cache_max_range_offset uwsgi_cache_max_range_offset worker_rlimit_core
    """,
    "msec": """
    accept_mutex_delay fastcgi_cache_lock_age fastcgi_cache_lock_timeout
    fastcgi_next_upstream_timeout grpc_next_upstream_timeout
    memcached_next_upstream_timeout proxy_cache_lock_age proxy_cache_lock_timeout
    scgi_cache_lock_age scgi_cache_lock_timeout scgi_next_upstream_timeout
    timer_resolution uwsgi_cache_lock_age uwsgi_cache_lock_timeout
    uwsgi_next_upstream_timeout
    """,
    "sec": """
    open_file_cache_valid
    """,
    "num": """
    epoll_events fastcgi_cache_min_uses fastcgi_next_upstream_tries
    grpc_next_upstream_tries grpc_ssl_verify_depth http2_streams_index_size
    map_hash_bucket_size map_hash_max_size memcached_next_upstream_tries
    open_file_cache_min_uses proxy_cache_min_uses proxy_headers_hash_bucket_size
    proxy_headers_hash_max_size proxy_ssl_verify_depth referer_hash_bucket_size
    referer_hash_max_size scgi_cache_min_uses scgi_next_upstream_tries
    server_names_hash_bucket_size server_names_hash_max_size types_hash_bucket_size
    types_hash_max_size uwsgi_cache_min_uses uwsgi_next_upstream_tries
    uwsgi_ssl_verify_depth variables_hash_bucket_size variables_hash_max_size
    worker_aio_requests worker_rlimit_nofile
    """,
    "bufs": """
    fastcgi_buffers gunzip_buffers gzip_buffers output_buffers proxy_buffers
    scgi_buffers uwsgi_buffers
    """,
}
SLOTS: dict[str, str] = {name: kind for kind, names in _BY_KIND.items()
                         for name in names.split()}

# bitmask slots: the words each takes, in any case, given on one line or several
_CGI_NEXT = ("error timeout invalid_header non_idempotent http_500 http_503 http_403 "
             "http_404 http_429 updating off")
WORDS: dict[str, frozenset[str]] = {name: frozenset(words.split()) for name, words in {
    "fastcgi_next_upstream": _CGI_NEXT,
    "uwsgi_next_upstream": _CGI_NEXT,
    "scgi_next_upstream": _CGI_NEXT,
    "grpc_next_upstream": "error timeout invalid_header non_idempotent http_500 "
                          "http_502 http_503 http_504 http_403 http_404 http_429 off",
    "memcached_next_upstream": "error timeout invalid_response not_found off",
    "keepalive_disable": "none msie6 safari",
}.items()}


def _log_file_cache(d: Directive) -> None:
    """ngx_http_log_open_file_cache's reading: ``max=N`` (required unless ``off``),
    ``inactive=`` and ``valid=`` (whole seconds), ``min_uses=N``, ``off``."""
    off = False
    has_max = False
    for arg in d.args:
        key, eq, value = arg.partition("=")
        if eq and key in ("max", "min_uses") and number_value(value) is not None:
            has_max = has_max or (key == "max" and number_value(value) != 0)
        elif eq and key in ("inactive", "valid") and time_value(value, True) is not None:
            pass
        elif arg == "off":
            off = True
        else:
            raise d.error(f'invalid "open_log_file_cache" parameter "{arg}"')
    if not off and not has_max:
        raise d.error('"open_log_file_cache" must have "max" parameter')


def _invalid(d: Directive, what: str = "invalid value") -> ConfigError:
    return d.error(f'"{d.name}" directive {what}')  # (ngx_conf_handler's "%s" directive %s)


def check_slot(d: Directive) -> bool:
    """Whether ``d`` is read by one of nginx's slots that may be set once per level;
    its arguments checked as that slot reads them (ConfigError in nginx's words) —
    a bitmask's words too, given on as many lines as wanted."""
    if d.name == "open_log_file_cache":
        _log_file_cache(d)
        return True
    words = WORDS.get(d.name)
    if words is not None:
        for word in d.args:
            if word.lower() not in words:
                raise d.error(f'invalid value "{word}"')
        return False  # (a bitmask adds up over its lines)
    kind = SLOTS.get(d.name)
    if kind is None:
        return False
    if len(d.args) != (2 if kind == "bufs" else 1):  # (a family's spec takes any count)
        raise d.error(f'invalid number of arguments in "{d.name}" directive')
    value = d.args[0]
    if kind == "flag":
        parse_flag(d, value)
    elif kind in ("size", "off"):
        if size_value(value, offset=kind == "off") is None:
            raise _invalid(d)
    elif kind in ("msec", "sec"):
        parse_time(d, value, seconds_only=kind == "sec")
    elif kind == "num":
        if number_value(value) is None:
            raise _invalid(d, "invalid number")
    elif not number_value(value) or not size_value(d.args[1], offset=False):
        raise _invalid(d)  # ("bufs": a number and a size, neither 0)
    return True


__all__ = ["SLOTS", "WORDS", "check_slot"]
