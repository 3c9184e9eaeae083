"""Directives accepted and ignored, each with one ``[warn]`` that says why, so that real
nginx configurations load unchanged."""

from __future__ import annotations

from fastgate.config.context import (
    HS,
    HSL,
    HTTP,
    Spec,
)
from fastgate.config.directives.args import ignored

NO_FILES = "fastgate serves no static files"


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
    Spec("root", HSL, 1, 1, ignored(NO_FILES)),
    Spec("index", HSL, 1, None, ignored(NO_FILES)),
]

# gzip, gzip_types, gzip_proxied, gzip_vary, gzip_comp_level...: any gzip* directive
GZIP = Spec("gzip*", HSL, 0, None, ignored("fastgate does not compress responses"))
