"""Directives accepted and ignored, each name with one ``[warn]`` that says why (and how
many times it was given), so that real nginx configurations load unchanged: what they
tune (files, caches, buffers, compression, process management) has no counterpart in
fastgate, and answers stay correct without it."""

from __future__ import annotations

from dataclasses import replace

from fastgate.config.context import (
    EVENTS,
    HS,
    HSL,
    HTTP,
    LIF,
    MAIN,
    SL,
    UPSTREAM,
    Context,
    Handler,
    Level,
    Spec,
)
from fastgate.config.directives.args import ignored
from fastgate.config.parser import Directive

NO_FILES = ("files are read in the worker with pread and written through the event loop; "
            "none is cached open")
NO_TEMP = ("responses stream; what WebDAV and *_store keep waits in a hidden file beside "
           "its place")
NO_BUFFERS = ("fastgate streams responses without buffering them; a request body is kept "
              "in one buffer of client_body_buffer_size, then in a file")
NO_CACHE = "fastgate caches no responses: every request goes to the upstream"
NO_SIZING = "fastgate's tables need no sizing"
NO_POOLS = "fastgate's memory is Python's, not nginx's pools"
WRITES_AT_ONCE = "fastgate writes what it has at once"
NO_RANGES = "ranges of a proxied response are the upstream's: a Range header goes to it"
NO_RATE = "responses go as fast as the client takes them (no bandwidth limit)"
SERVICE = "set it in the service manager ({}) or the shell"
LOOP = "the event loop is uvloop's (libuv)"
HTTP_ONLY = frozenset({HTTP})
MAIN_ONLY = frozenset({MAIN})
EVENTS_ONLY = frozenset({EVENTS})


def off_is_ours(why: str) -> Handler:
    """A switch whose "off" is what fastgate does anyway: silent; "on" is warned."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        if len(d.args) != 1 or d.args[0].lower() != "off":
            ignored(why)(ld, lvl, d)

    return handle


def response_cache(family: str) -> Handler:
    """A response cache's family (``family``: "proxy_cache", "fastcgi_cache"...), warned
    and ignored, its zones kept as nginx keeps them for -t: ``FAMILY_path`` declares one
    (its ``keys_zone=NAME:SIZE`` is required), ``FAMILY NAME`` must name one declared
    (anywhere in http: checked after the walk); a name with variables is read per
    request in nginx: only its variables are checked."""
    warn = off_is_ours(NO_CACHE)

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        if d.name == family + "_path":
            zone = next((a[len("keys_zone="):] for a in d.args[1:]
                         if a.startswith("keys_zone=")), None)
            if zone is None:
                raise d.error(f'"{d.name}" must have "keys_zone" parameter')
            ld.cache_zones.add((family, zone.split(":", 1)[0]))
        elif d.name == family and d.args and d.args[0] != "off":
            if "$" in d.args[0]:
                ld.compile(d.args[0], d)  # (its variables must exist, as nginx's)
            else:
                ld.cache_refs.append((family, d.args[0], d))
        warn(ld, lvl, d)

    return handle


SPECS = [
    Spec("server_names_hash_bucket_size", frozenset({HTTP}), 1, 1, ignored(
        "fastgate's server name table needs no sizing")),
    Spec("server_names_hash_max_size", frozenset({HTTP}), 1, 1, ignored(
        "fastgate's server name table needs no sizing")),
    Spec("sendfile", HSL | {LIF}, 1, 1, ignored(NO_FILES)),
    Spec("tcp_nopush", HSL, 1, 1, ignored(NO_FILES)),
    Spec("tcp_nodelay", HSL, 1, 1, ignored("fastgate always sets TCP_NODELAY")),
    Spec("server_tokens", HSL, 1, 1, off_is_ours("fastgate sends no Server version")),
    Spec("types_hash_max_size", HSL, 1, 1, ignored(NO_SIZING)),
    Spec("types_hash_bucket_size", HSL, 1, 1, ignored(NO_SIZING)),
    Spec("proxy_cache_path", frozenset({HTTP}), 2, None, response_cache("proxy_cache")),
    Spec("proxy_no_cache", HSL, 1, None, ignored(NO_CACHE)),
    Spec("fastcgi_no_cache", HSL, 1, None, ignored(NO_CACHE)),
    Spec("uwsgi_no_cache", HSL, 1, None, ignored(NO_CACHE)),
    Spec("scgi_no_cache", HSL, 1, None, ignored(NO_CACHE)),
    # HTTP/2 (fastgate.http.http2): nginx 1.19.7 made these obsolete, and warns so too
    Spec("http2_idle_timeout", HS, 1, 1, ignored('obsolete: "keepalive_timeout" applies')),
    Spec("http2_max_requests", HS, 1, 1, ignored('obsolete: "keepalive_requests" applies')),
    Spec("http2_recv_timeout", HS, 1, 1, ignored(
        'obsolete: "client_header_timeout" bounds the preface; "keepalive_timeout" an idle '
        "connection")),
    Spec("http2_max_field_size", HS, 1, 1, ignored(
        'obsolete: "large_client_header_buffers" bounds the header list')),
    Spec("http2_max_header_size", HS, 1, 1, ignored(
        'obsolete: "large_client_header_buffers" bounds the header list')),
    Spec("http2_chunk_size", HSL, 1, 1, ignored(
        "DATA frames are as large as the client's window and frame size allow")),
    Spec("http2_pool_size", HS, 1, 1, ignored(NO_POOLS)),
    Spec("http2_streams_index_size", HS, 1, 1, ignored(NO_SIZING)),
    Spec("http2_recv_buffer_size", frozenset({HTTP}), 1, 1, ignored(
        "the event loop reads into buffers of its own")),
    Spec("proxy_busy_buffers_size", HSL, 1, 1, ignored(NO_BUFFERS)),
    Spec("proxy_max_temp_file_size", HSL, 1, 1, ignored(NO_TEMP)),
    Spec("proxy_temp_file_write_size", HSL, 1, 1, ignored(NO_TEMP)),
    Spec("ssi_min_file_chunk", HSL, 1, 1, ignored(NO_FILES)),
    Spec("ssi_ignore_recycled_buffers", HSL, 1, 1, ignored(NO_BUFFERS)),
    Spec("proxy_temp_path", HSL, 1, 4, ignored(NO_TEMP)),
    Spec("fastcgi_temp_path", HSL, 1, 4, ignored(NO_TEMP)),
    Spec("uwsgi_temp_path", HSL, 1, 4, ignored(NO_TEMP)),
    Spec("scgi_temp_path", HSL, 1, 4, ignored(NO_TEMP)),
    Spec("daemon", frozenset({MAIN}), 1, 1, off_is_ours(
        "fastgate runs in the foreground (a service manager or container runs it)")),
    Spec("master_process", frozenset({MAIN}), 1, 1, ignored(
        "worker_processes decides: 1 is a single process, more a master and workers")),
    Spec("env", frozenset({MAIN}), 1, 1, ignored(
        "fastgate's workers keep the environment they were started with")),
    Spec("worker_rlimit_nofile", frozenset({MAIN}), 1, 1, ignored(
        "set the open-file limit in the service manager (LimitNOFILE=) or ulimit")),
    Spec("multi_accept", frozenset({EVENTS}), 1, 1, ignored(
        "the event loop accepts what is pending")),
    Spec("use", frozenset({EVENTS}), 1, 1, ignored("the event loop is uvloop's (libuv)")),
    Spec("accept_mutex", frozenset({EVENTS}), 1, 1, ignored(
        "workers accept on sockets of their own (reuseport) or the shared one")),
    # the rest of nginx's core, event and HTTP modules whose absence changes no answer
    Spec("timer_resolution", MAIN_ONLY, 1, 1, ignored(
        "fastgate reads the clock for every time it logs")),
    Spec("lock_file", MAIN_ONLY, 1, 1, ignored("fastgate takes no accept lock")),
    Spec("debug_points", MAIN_ONLY, 1, 1, ignored(
        "fastgate has no debug points: an internal error is logged with its cause")),
    Spec("worker_priority", MAIN_ONLY, 1, 1, ignored(SERVICE.format("Nice="))),
    Spec("worker_cpu_affinity", MAIN_ONLY, 1, None, ignored(
        SERVICE.format("CPUAffinity=, or taskset"))),
    Spec("worker_rlimit_core", MAIN_ONLY, 1, 1, ignored(SERVICE.format("LimitCORE="))),
    Spec("working_directory", MAIN_ONLY, 1, 1, ignored(
        "fastgate stays in the directory it was started in")),
    Spec("pcre_jit", MAIN_ONLY, 1, 1, ignored(
        "regular expressions are Python's, compiled once at load")),
    Spec("thread_pool", MAIN_ONLY, 2, 3, ignored(
        "fastgate reads no files while serving (log writes have a thread per file)")),
    Spec("epoll_events", EVENTS_ONLY, 1, 1, ignored(LOOP)),
    Spec("worker_aio_requests", EVENTS_ONLY, 1, 1, ignored(LOOP)),
    Spec("accept_mutex_delay", EVENTS_ONLY, 1, 1, ignored("fastgate takes no accept lock")),
    Spec("debug_connection", EVENTS_ONLY, 1, 1, ignored(
        "fastgate writes no per-connection debug log")),
    Spec("variables_hash_max_size", HTTP_ONLY, 1, 1, ignored(NO_SIZING)),
    Spec("variables_hash_bucket_size", HTTP_ONLY, 1, 1, ignored(NO_SIZING)),
    Spec("map_hash_max_size", HTTP_ONLY, 1, 1, ignored(NO_SIZING)),
    Spec("map_hash_bucket_size", HTTP_ONLY, 1, 1, ignored(NO_SIZING)),
    Spec("proxy_headers_hash_max_size", HSL, 1, 1, ignored(NO_SIZING)),
    Spec("proxy_headers_hash_bucket_size", HSL, 1, 1, ignored(NO_SIZING)),
    Spec("referer_hash_max_size", SL, 1, 1, ignored(NO_SIZING)),
    Spec("referer_hash_bucket_size", SL, 1, 1, ignored(NO_SIZING)),
    Spec("connection_pool_size", HS, 1, 1, ignored(NO_POOLS)),
    Spec("request_pool_size", HS, 1, 1, ignored(NO_POOLS)),
    Spec("client_body_in_single_buffer", HSL, 1, 1, ignored(NO_BUFFERS)),
    Spec("sendfile_max_chunk", HSL, 1, 1, ignored(NO_FILES)),
    Spec("aio", HSL, 1, 1, ignored(NO_FILES)),
    Spec("aio_write", HSL, 1, 1, ignored(NO_FILES)),
    Spec("read_ahead", HSL, 1, 1, ignored(NO_FILES)),
    Spec("directio", HSL, 1, 1, ignored(NO_FILES)),
    Spec("directio_alignment", HSL, 1, 1, ignored(NO_FILES)),
    Spec("send_lowat", HSL, 1, 1, ignored(WRITES_AT_ONCE)),
    Spec("postpone_output", HSL, 1, 1, ignored(WRITES_AT_ONCE)),
    Spec("output_buffers", HSL, 2, 2, ignored(WRITES_AT_ONCE)),
    Spec("proxy_send_lowat", HSL, 1, 1, ignored(WRITES_AT_ONCE)),
    Spec("log_subrequest", HSL, 1, 1, off_is_ours(
        "subrequests (auth_request, mirror) are not written to the access log")),
    Spec("open_log_file_cache", HSL, 1, 4, ignored(
        "log files are opened once and kept (reopened on SIGUSR1)")),
    Spec("proxy_force_ranges", HSL, 1, 1, ignored(NO_RANGES)),
    Spec("postpone_gzipping", HSL, 1, 1, ignored(
        "compression starts with a response's first bytes")),
    Spec("gunzip_buffers", HSL, 2, 2, ignored(
        "inflated output goes out as zlib gives it, without nginx's buffers")),
    Spec("proxy_limit_rate", HSL, 1, 1, ignored(
        "upstream responses are read as fast as they come")),
]

# Families of directives, by the start of their names: proxy_cache* (proxy_cache,
# proxy_cache_valid, proxy_cache_key...), open_file_cache*
PREFIXED = {
    "proxy_cache": Spec("proxy_cache*", HSL | {LIF}, 0, None, response_cache("proxy_cache")),
    "fastcgi_cache": Spec("fastcgi_cache*", HSL | {LIF}, 0, None,
                          response_cache("fastcgi_cache")),
    "uwsgi_cache": Spec("uwsgi_cache*", HSL | {LIF}, 0, None, response_cache("uwsgi_cache")),
    "scgi_cache": Spec("scgi_cache*", HSL | {LIF}, 0, None, response_cache("scgi_cache")),
    "open_file_cache": Spec("open_file_cache*", HSL, 0, None, off_is_ours(NO_FILES)),
}

# inside an upstream block
UPSTREAM_SPECS = [
    Spec("zone", frozenset({UPSTREAM}), 1, 2, ignored(
        "each worker keeps its upstream state (balancing, failures) of its own")),
]

# server_tokens' values: any other fails -t, as nginx's, though the directive is ignored
_ENUMS = {"server_tokens": ("on", "off", "build")}


def _checked(spec: Spec) -> Spec:
    handler = spec.handler

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        if d.args and d.args[0].lower() not in _ENUMS.get(d.name, (d.args[0].lower(),)):
            raise d.error(f'invalid value "{d.args[0]}"')
        handler(ld, lvl, d)

    return replace(spec, handler=handle)


SPECS = [_checked(spec) for spec in SPECS]
PREFIXED = {prefix: _checked(spec) for prefix, spec in PREFIXED.items()}

__all__ = ["PREFIXED", "SPECS", "UPSTREAM_SPECS"]
