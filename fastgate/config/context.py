"""What a directive handler works with while the configuration loads: the ``Level``
(one block being built) it writes its settings into, and the ``Context`` — the few
services of the loader it may use (messages, paths, variables, the http-wide tables).

Handlers (``fastgate.config.directives``) and the merge (``fastgate.config.merge``) see
the loader only through this, so neither imports the loader that drives them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastgate.config.errors import ConfigError
from fastgate.config.lookups import Lookup
from fastgate.config.model import (
    Condition,
    LimitZone,
    Listen,
    LogFile,
    LogFormat,
    Upstream,
    UpstreamServer,
    socket_upstream,
)
from fastgate.config.parser import Directive
from fastgate.variables import Template

MAIN, EVENTS, HTTP, SERVER, LOCATION, UPSTREAM = (
    "main", "events", "http", "server", "location", "upstream")
# the stream block (nginx's NGX_STREAM_MAIN_CONF, SRV_CONF, UPS_CONF)
STREAM, STREAM_SERVER, STREAM_UPSTREAM = "stream", "stream server", "stream upstream"
# inside ``if``: in a location (nginx's LIF: the if has a configuration of its own) and
# at server level (SIF: only the rewrite module's directives)
LIF, SIF = "location if", "server if"
# inside ``limit_except`` (nginx's LMT): a configuration of its own for the other methods
LMT = "limit_except"
REWRITE_CONTEXTS = frozenset({SERVER, LOCATION, LIF, SIF})
HSL = frozenset({HTTP, SERVER, LOCATION})
HS = frozenset({HTTP, SERVER})
SL = frozenset({SERVER, LOCATION})
ANY_HTTP = frozenset({MAIN, HTTP, SERVER, LOCATION})


@dataclass
class Level:
    """One block being built: its own settings (``fields``), what is not inherited
    (``local``), the directive that set each name, and its child blocks."""

    ctx: str
    directive: Directive | None
    fields: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Directive] = field(default_factory=dict)
    local: dict[str, Any] = field(default_factory=dict)
    children: list[Level] = field(default_factory=list)
    parent: Level | None = None

    def once(self, d: Directive) -> None:
        """nginx's ``is duplicate``: most directives may be set once per level."""
        if d.name in self.origins:
            raise d.error(f'"{d.name}" directive is duplicate')
        self.origins[d.name] = d


@dataclass
class PendingIf:
    """An ``if`` block as the walk leaves it: its condition, and its level (the body's
    rewrite directives in ``local["rewrites"]``, its settings in ``fields``); the
    builder makes it a ``model.If``."""

    condition: Condition
    level: Level


class Context(Protocol):
    """The loader as a handler sees it (``fastgate.config.load.Loader`` is the one)."""

    upstreams: dict[str, Upstream]
    upstream_names: set[str]  # every upstream block's name, known before the walk
    log_formats: dict[str, LogFormat]
    log_files: list[LogFile]
    temp_dirs: list[tuple[str, Directive]]  # made once the walk knows the user
    zones: dict[str, LimitZone]
    ocsp_caches: dict[str, int]  # ssl_ocsp_cache's shared tables: name -> size
    zone_refs: list[tuple[str, str, Directive]]  # (kind, zone, where) checked after the walk
    # the response caches' zones (*_cache_path keys_zone=), by module: "proxy_cache"...;
    # and what names one (proxy_cache ZONE), checked after the walk (fastgate caches
    # nothing, but a zone no path declares fails -t, as nginx's)
    cache_zones: set[tuple[str, str]]
    cache_refs: list[tuple[str, str, Directive]]
    cluster_refs: list[Directive]  # what needs fastgate_cluster, checked after the walk
    sync_refs: list[Directive]  # zones with "sync": shared by the fleet when there is one
    charset_names: dict[str, str]  # a charset's name in lower case: as first written

    def error(self, message: str, file: str | None = None,
              line: int | None = None) -> ConfigError: ...

    def warn(self, message: str, d: Directive) -> None: ...

    def notice(self, message: str, d: Directive) -> None: ...

    def warn_once(self, what: str, why: str, d: Directive) -> None:
        """A warning given once per ``what`` (with the count of the others)."""

    def path_of(self, value: str, prefix: bool = False) -> str: ...

    def compile(self, text: str, d: Directive) -> Template: ...

    def log_format(self, name: str, text: str, escape: str = "default",
                   d: Directive | None = None) -> LogFormat: ...

    def declare_maps(self, http: Directive) -> None: ...

    def define_map(self, m: Lookup, d: Directive) -> None: ...

    def implicit_upstream(self, host: str, port: int, d: Directive) -> str: ...

    def check_host(self, host: str, port: int, text: str, d: Directive) -> None:
        """A ConfigError (FILE:LINE) when an upstream's host name does not resolve."""

    def require_log_format(self, name: str, d: Directive) -> None: ...

    def default_listen(self) -> Listen: ...

    def walk(self, directives: Iterable[Directive], lvl: Level,
             table: dict[str, Spec] = ..., ctx: Context | None = None) -> None:
        """Each directive through its handler in ``table``, the handler given ``ctx``
        (a block with a namespace of its own, as ``stream``) or this context."""


Handler = Callable[[Context, Level, Directive], None]


def one_server_group(ld: Context, host: str, port: int, d: Directive) -> str:
    """The group of one a ``proxy_pass HOST:PORT`` without an upstream block names, made
    once in ``ld``'s upstreams (HTTP's or the stream block's); its host must resolve."""
    name = f"{host}:{port}"
    ld.check_host(host, port, name, d)
    if name not in ld.upstreams:
        ld.upstreams[name] = Upstream(name, (UpstreamServer(host, port),), implicit=True)
    return name


def unix_group(ld: Context, path: str) -> str:
    """The group of one a ``proxy_pass http://unix:PATH`` (the stream block's
    ``proxy_pass unix:PATH``) names, made once in ``ld``'s upstreams."""
    name = f"unix:{path}"
    if name not in ld.upstreams:
        ld.upstreams[name] = socket_upstream(path)
    return name


@dataclass(frozen=True)
class Spec:
    """One directive: where it may appear, how many arguments, and its handler (nginx's
    ``ngx_command_t``)."""

    name: str
    contexts: frozenset[str]
    min_args: int
    max_args: int | None  # None: no upper bound
    handler: Handler
    block: bool = False
