"""A ``proxy_pass`` with variables (``proxy_pass $backend``, ``proxy_pass
http://$host$uri``), made concrete per request as nginx does: the URL is evaluated, its
host is an upstream block's name (matched first), an address, or a name the location's
``resolver`` resolves; without a resolver a name is a 502 (``no resolver defined to
resolve``), as is one that does not resolve. The servers found get a connection pool of
their own in the worker's groups, kept while the answer holds (bounded: the oldest go
first).

With variables, a URI part is sent as it is (nginx replaces no location prefix then), made
safe for the request line: what is not a visible ASCII character is percent-encoded, so a
value from ``$uri`` (decoded: it may hold a space or a CR LF) cannot split the request.
"""

from __future__ import annotations

import ipaddress
import re
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING

from fastgate.config.model import (
    AppPass,
    ProxyPass,
    Resolver,
    Upstream,
    UpstreamServer,
    UpstreamTls,
    socket_upstream,
)
from fastgate.config.tls import proxy_tls_host, upstream_context, upstream_tls
from fastgate.decimals import decimal
from fastgate.proxy.dns import Names, ResolveError
from fastgate.proxy.upstream import UpstreamGroup

if TYPE_CHECKING:
    from ssl import SSLContext

    from fastgate.config.model import Location, Settings
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request
    from fastgate.proxy.runtime import Runtime
    from fastgate.variables import Template

DYNAMIC_POOLS = 1024  # pools made for resolved servers, per worker; past it the oldest go
# the URL prefixes a module's pass takes (uwsgi's; suwsgi:// over TLS)
_APP_SCHEMES = {"uwsgi": ("uwsgi", "suwsgi"), "grpc": ("grpc", "grpcs")}
_SECURE_SCHEMES = ("suwsgi", "grpcs")
_UNSAFE = re.compile(r"[^\x21-\x7e]")


def safe_target(text: str) -> bytes:
    """A request target as given, with every byte that is not visible ASCII
    percent-encoded (a space, a control byte, UTF-8)."""
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode(
        "utf-8", "surrogateescape")), text).encode("ascii")


class DynamicTargets:
    def __init__(self, worker: Runtime) -> None:
        self.w = worker
        self._names: dict[Resolver, Names] = {}
        self._pools: OrderedDict[str, None] = OrderedDict()  # dynamic pool names, oldest first
        # unix sockets' TLS contexts (suwsgi://, grpcs://), oldest first
        self._contexts: OrderedDict[UpstreamTls, tuple[SSLContext, str]] = OrderedDict()

    async def resolve(self, conn: ClientSide, req: Request,
                      loc: Location) -> ProxyPass | int:
        """The concrete proxy_pass for this request, or the status to answer (logged)."""
        pp = loc.proxy_pass
        assert pp is not None and pp.template is not None
        s = loc.settings
        log = self.w.log
        url = pp.template.render(req)
        scheme, sep, rest = url.partition("://")
        scheme = scheme.lower()  # (nginx's ngx_strncasecmp)
        if not sep or scheme not in ("http", "https"):
            log.error(f'invalid URL prefix in "{url}"', conn, req)
            return 500
        if rest.startswith("unix:"):  # (nginx's unix:PATH[:URI]; Host: localhost)
            path, colon, after = rest[5:].partition(":")
            if not path:
                log.error(f'no path in the unix domain socket in upstream "{rest}"',
                          conn, req)
                return 500
            tls = (upstream_tls(s, path, _ssl_name(s, req)) if scheme == "https" else None)
            upstream = socket_upstream(path)
            pool = upstream.name + (f" tls:{hash(tls)}" if tls else "")
            self._group(pool, upstream, tls)
            return ProxyPass(scheme, upstream.name, "localhost", after if colon else None,
                             pool=pool, as_is=False, template=pp.template)
        cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        hostport, uri = rest[:cut], rest[cut:] or None
        if uri is not None and uri.startswith("?"):
            uri = "/" + uri
        host, port = _split(hostport, 443 if scheme == "https" else 80)
        if host is None or port is None:
            log.error(f'invalid host in upstream "{url}"', conn, req)
            return 500
        tls = upstream_tls(s, host, _ssl_name(s, req)) if scheme == "https" else None
        found = await self._pool(conn, req, s, hostport, host, port, tls)
        if isinstance(found, int):
            return found
        pool, upstream = found
        return ProxyPass(scheme, upstream.name, hostport, uri, pool=pool, as_is=False,
                         template=pp.template)

    async def app_target(self, conn: ClientSide, req: Request, loc: Location
                         ) -> AppPass | int:
        """A ``fastcgi_pass`` (uwsgi_pass, scgi_pass) with variables made concrete for
        this request, as nginx's ngx_http_fastcgi_eval and upstream init do: an
        upstream block's name, an address, ``unix:PATH``, or a name the resolver
        resolves; else the status to answer (logged as nginx logs it)."""
        ap = loc.app_pass
        assert ap is not None and ap.template is not None
        s = loc.settings
        log = self.w.log
        value = ap.template.render(req)
        scheme, sep, rest = value.partition("://")
        secure = False
        if sep and scheme.lower() in _APP_SCHEMES.get(ap.kind, ()):
            secure = scheme.lower() in _SECURE_SCHEMES
            value = rest
        if value.startswith("unix:"):
            if not value[5:]:
                log.error(f'no path in the unix domain socket in upstream "{value}"',
                          conn, req)
                return 500
            return AppPass(ap.kind, unix=value[5:], secure=secure, tls_host=value[5:],
                           authority="localhost", tls_name=ap.tls_name)
        host, port = _split(value, 0)
        if host is None:
            log.error(f'no host in upstream "{value}"', conn, req)
            return 500
        if port is None:
            log.error(f'invalid port in upstream "{value}"', conn, req)
            return 500
        tls = (upstream_tls(s, host, ap.tls_name.render(req) if ap.tls_name else None,
                            module=ap.kind) if secure else None)
        found = await self._pool(conn, req, s, value, host, port, tls)
        if isinstance(found, int):
            return found
        pool = found[0]
        return AppPass(ap.kind, upstream=pool, secure=secure, tls_host=host, authority=value)

    async def _pool(self, conn: ClientSide, req: Request, s: Settings, written: str,
                    host: str, port: int, tls: UpstreamTls | None
                    ) -> tuple[str, Upstream] | int:
        """The pool of what ``written`` (HOST:PORT, or an upstream block's name) names —
        the block (matched first), an address, or the resolver's addresses for a name —
        made in the worker's groups; or the status to answer, logged as nginx's (no port
        500, no resolver or a name that does not resolve 502)."""
        log = self.w.log
        upstream = self.w.config.upstreams.get(written)
        if upstream is not None:
            pool = written if tls is None else f"{written} tls:{hash(tls)}"
        else:
            if port == 0:
                log.error(f'no port in upstream "{host}"', conn, req)
                return 500
            try:
                addresses: tuple[str, ...] = (str(ipaddress.ip_address(host)),)
            except ValueError:
                if s.resolver is None:
                    log.error(f"no resolver defined to resolve {host}", conn, req)
                    return 502
                try:
                    addresses = await self._names_of(s.resolver).resolve(host,
                                                                         s.resolver_timeout)
                except ResolveError as e:
                    log.error(str(e), conn, req)
                    return 502
            pool = f"{','.join(addresses)}:{port}" + (f" tls:{hash(tls)}" if tls else "")
            upstream = Upstream(f"{host}:{port}", tuple(UpstreamServer(a, port)
                                                        for a in addresses), implicit=True)
        self._group(pool, upstream, tls)
        return pool, upstream

    def named(self, req: Request, loc: Location, pp: ProxyPass, name: Template) -> ProxyPass:
        """A static ``https://`` proxy_pass whose proxy_ssl_name has variables: the
        pool of this request's name (made on first use, one per name, as many kept as
        for proxy_pass with variables)."""
        tls = upstream_tls(loc.settings, proxy_tls_host(pp), name.render(req))
        pool = f"{pp.upstream} tls:{hash(tls)}"
        self._group(pool, self.w.config.upstreams[pp.upstream], tls)
        return replace(pp, pool=pool, tls_name=None)

    def app_named(self, req: Request, loc: Location, ap: AppPass) -> AppPass:
        """A static suwsgi:// uwsgi_pass or grpcs:// grpc_pass whose MODULE_ssl_name
        has variables: the pool of this request's name, as ``named``'s."""
        assert ap.tls_name is not None
        upstream = self.w.config.tls_pools[ap.upstream][0]
        tls = upstream_tls(loc.settings, ap.tls_host, ap.tls_name.render(req),
                           module=ap.kind)
        pool = f"{upstream} tls:{hash(tls)}"
        self._group(pool, self.w.config.upstreams[upstream], tls)
        return replace(ap, upstream=pool, tls_name=None)

    def unix_tls(self, req: Request, loc: Location, ap: AppPass) -> tuple[SSLContext, str]:
        """A suwsgi:// or grpcs:// unix socket's TLS: the context of the location's
        MODULE_ssl_* settings and this request's name, and the name the handshake sends
        and checks ("" none, as a group's); made on first use, as many kept as pools.
        TlsError: a file the context needs went away since the load."""
        name = ap.tls_name.render(req) if ap.tls_name is not None else None
        t = upstream_tls(loc.settings, ap.tls_host, name, module=ap.kind)
        made = self._contexts.get(t)
        if made is not None:
            self._contexts.move_to_end(t)
            return made
        made = self._contexts[t] = (upstream_context(t), t.name if t.server_name or t.verify
                                    else "")
        if len(self._contexts) > DYNAMIC_POOLS:
            self._contexts.popitem(last=False)
        return made

    def _names_of(self, config: Resolver) -> Names:
        names = self._names.get(config)
        if names is None:
            names = self._names[config] = Names(config)
        return names

    def _group(self, pool: str, upstream: Upstream, tls: UpstreamTls | None) -> None:
        groups = self.w.groups
        if pool in groups:
            if pool in self._pools:
                self._pools.move_to_end(pool)
            return
        groups[pool] = UpstreamGroup(upstream, self.w.engine_name, tls)
        self._pools[pool] = None
        while len(self._pools) > DYNAMIC_POOLS:
            old, _ = self._pools.popitem(last=False)
            gone = groups.pop(old, None)
            if gone is not None:
                gone.close()


def _split(hostport: str, default: int) -> tuple[str | None, int | None]:
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else "x")
    else:
        host, colon, port_text = hostport.partition(":")
        if not colon:
            port_text = ""
    if not host:
        return None, None
    if not port_text:
        return host, default
    port = decimal(port_text, 65535)
    if not port:
        return host, None
    return host, port


__all__ = ["DynamicTargets", "safe_target"]


def _ssl_name(s: Settings, req: Request) -> str | None:
    """A proxy_ssl_name with variables, as this request renders it (empty: no name, as
    nginx's)."""
    name = s.proxy_ssl_name
    return name.render(req) if name is not None and not isinstance(name, str) else None
