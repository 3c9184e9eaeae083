"""Directives accepted and ignored, each name with one ``[warn]`` that says why (and how
many times it was given), so that real nginx configurations load unchanged: what they
tune (files, caches, buffers, compression, process management) has no counterpart in
fastgate, and answers stay correct without it."""

from __future__ import annotations

from fastgate.config.context import (
    EVENTS,
    HS,
    HSL,
    HTTP,
    LIF,
    MAIN,
    UPSTREAM,
    Context,
    Handler,
    Level,
    Spec,
)
from fastgate.config.directives.args import ignored
from fastgate.config.parser import Directive

NO_FILES = "fastgate serves no static files"
NO_TEMP = "fastgate writes no temporary files: bodies stream"
NO_BUFFERS = "fastgate streams request and response bodies without buffering them"
NO_CACHE = "fastgate caches no responses: every request goes to the upstream"


def off_is_ours(why: str) -> Handler:
    """A switch whose "off" is what fastgate does anyway: silent; "on" is warned."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        if d.args != ("off",):
            ignored(why)(ld, lvl, d)

    return handle


SPECS = [
    Spec("client_header_buffer_size", HS, 1, 1, ignored(
        "a request head is read into one buffer bounded by large_client_header_buffers")),
    Spec("server_names_hash_bucket_size", frozenset({HTTP}), 1, 1, ignored(
        "fastgate's server name table needs no sizing")),
    Spec("server_names_hash_max_size", frozenset({HTTP}), 1, 1, ignored(
        "fastgate's server name table needs no sizing")),
    Spec("sendfile", HSL, 1, 1, ignored(NO_FILES)),
    Spec("tcp_nopush", HSL, 1, 1, ignored(NO_FILES)),
    Spec("tcp_nodelay", HSL, 1, 1, ignored("fastgate always sets TCP_NODELAY")),
    Spec("types", HSL, 0, 0, ignored(NO_FILES), block=True),
    Spec("default_type", HSL, 1, 1, ignored(NO_FILES)),
    Spec("charset", HSL, 1, 1, ignored(NO_FILES)),
    Spec("server_tokens", HSL, 1, 1, ignored("fastgate sends no Server version")),
    Spec("root", HSL | {LIF}, 1, 1, ignored(NO_FILES)),
    Spec("alias", frozenset({"location"}), 1, 1, ignored(NO_FILES)),
    Spec("index", HSL, 1, None, ignored(NO_FILES)),
    Spec("types_hash_max_size", HSL, 1, 1, ignored(NO_FILES)),
    Spec("types_hash_bucket_size", HSL, 1, 1, ignored(NO_FILES)),
    Spec("log_not_found", HSL, 1, 1, ignored(NO_FILES)),
    Spec("proxy_cache_path", frozenset({HTTP}), 2, None, ignored(NO_CACHE)),
    Spec("proxy_no_cache", HSL, 1, None, ignored(NO_CACHE)),
    Spec("http2", HS, 1, 1, ignored(
        "fastgate speaks HTTP/1.1 to clients (h2 is not negotiated)")),
    Spec("chunked_transfer_encoding", HSL, 1, 1, ignored(
        "fastgate frames responses itself: chunked to HTTP/1.1 clients when the length "
        "is unknown")),
    Spec("reset_timedout_connection", HSL, 1, 1, ignored(
        "a timed-out connection is closed (its unsent data dropped) either way")),
    Spec("client_body_buffer_size", HSL, 1, 1, ignored(NO_BUFFERS)),
    Spec("proxy_busy_buffers_size", HSL, 1, 1, ignored(NO_BUFFERS)),
    Spec("proxy_max_temp_file_size", HSL, 1, 1, ignored(NO_TEMP)),
    Spec("proxy_temp_file_write_size", HSL, 1, 1, ignored(NO_TEMP)),
    Spec("subrequest_output_buffer_size", HSL, 1, 1, ignored(NO_BUFFERS)),
    Spec("gunzip", HSL, 1, 1, off_is_ours("fastgate does not decompress responses")),
    Spec("client_body_temp_path", HSL, 1, 4, ignored(NO_TEMP)),
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
]

# Families of directives, by the start of their names: any gzip* (gzip_types,
# gzip_proxied...), proxy_cache* (proxy_cache, proxy_cache_valid, proxy_cache_key...),
# autoindex*, open_file_cache*
PREFIXED = {
    "gzip": Spec("gzip*", HSL | {LIF}, 0, None, ignored("fastgate does not compress responses")),
    "proxy_cache": Spec("proxy_cache*", HSL | {LIF}, 0, None, ignored(NO_CACHE)),
    "autoindex": Spec("autoindex*", HSL, 0, None, ignored(NO_FILES)),
    "open_file_cache": Spec("open_file_cache*", HSL, 0, None, ignored(NO_FILES)),
}

# inside an upstream block
UPSTREAM_SPECS = [
    Spec("zone", frozenset({UPSTREAM}), 1, 2, ignored(
        "each worker keeps its upstream state (balancing, failures) of its own")),
]

__all__ = ["PREFIXED", "SPECS", "UPSTREAM_SPECS"]
