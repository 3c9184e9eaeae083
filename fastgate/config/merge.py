"""Inheritance, in one place (nginx's ``merge_loc_conf``), and the objects built from the
merged settings: locations with their JWT checks, servers.

Every ``Settings`` field set at a level replaces the outer value; lists are set as a
whole per level, so ``proxy_set_header``, ``add_header`` and ``error_page`` are
inherited only when the inner level has none — nginx's rule, with no special case.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from fastgate.config.context import LOCATION, Context, Level, PendingIf
from fastgate.config.errors import ConfigError
from fastgate.config.model import (
    AppPass,
    Break,
    If,
    JwtCheck,
    Listen,
    Location,
    LocationTree,
    ProxyPass,
    Return,
    Rewrite,
    RewriteOp,
    Server,
    Settings,
    SetVar,
    UpstreamTls,
    Where,
)
from fastgate.config.parser import Directive
from fastgate.config.tls import (
    TlsError,
    proxy_tls_host,
    server_context,
    upstream_context,
    upstream_tls,
)


def merge(parent: Settings, level: Level) -> Settings:
    return dataclasses.replace(parent, **level.fields) if level.fields else parent


def merge_origins(parent: dict[str, Directive], level: Level) -> dict[str, Directive]:
    return {**parent, **level.origins} if level.origins else parent


def _where(d: Directive | None) -> Where:
    return Where(d.file, d.line) if d is not None else Where("", 0)



# the directive each rewrite operation comes from, for messages
_REWRITE_NAMES: dict[type, str] = {Return: "return", Rewrite: "rewrite", SetVar: "set",
                                   Break: "break", If: "if"}

class Builder:
    """Turns levels into frozen servers and locations. A ``JwtCheck`` is shared
    between locations whose key set, algorithm, leeway and cache size are the same, so
    one token verified under ``/api/`` is a cache hit under ``/api/v2/``."""

    def __init__(self, loader: Context) -> None:
        self.ld = loader
        # which forms of auth_jwt the locations use: "seed", "plus" (for -t's advice on
        # maps over claims, whose encoding differs)
        self.dialects: set[str] = set()
        self.jwt_checks: dict[tuple[Any, ...], JwtCheck] = {}
        # https:// proxy_pass pools: pool name -> (upstream, TLS settings)
        self.tls_pools: dict[str, tuple[str, UpstreamTls]] = {}
        # error_page entries already said to name a missing location (an inherited one
        # is the same entry in every location below it: said once)
        self._said_missing: set[int] = set()

    def server(self, http: Settings, http_origins: dict[str, Directive], lvl: Level) -> Server:
        settings = merge(http, lvl)
        origins = merge_origins(http_origins, lvl)
        locations = [self.location(settings, origins, c) for c in lvl.children
                     if c.ctx == LOCATION]
        tree = LocationTree.build(locations)
        fallback = self._make_location("", "", settings, origins, lvl, None)
        self._warn_duplicate_named(locations)
        listens: tuple[Listen, ...] = lvl.local.get("listen") or (self.ld.default_listen(),)
        if settings.ssl_on:
            listens = tuple(dataclasses.replace(x, ssl=True) for x in listens)
        if settings.http2:
            listens = tuple(dataclasses.replace(x, http2=True) for x in listens)
        if any(x.ssl for x in listens) or settings.ssl_certificate:
            # nginx loads a server's certificates whether or not it listens with ssl
            self._check_tls(settings, origins, lvl)
        server = Server(
            listens=listens,
            server_names=lvl.local.get("server_name", ("",)),
            settings=settings,
            locations=tree,
            where=_where(lvl.directive),
            rewrites=self._program(lvl, None),
            fallback=fallback,
            checks_first=(settings.ssl_verify_client != "off"
                          or bool(settings.set_real_ip_from)),
        )
        self._check_targets(server)
        return server

    def _check_tls(self, settings: Settings, origins: dict[str, Directive],
                   lvl: Level) -> None:
        if settings.ssl_reject_handshake and not settings.ssl_certificate:
            return  # it shows no certificate: every handshake it is chosen for fails
        try:
            server_context(settings)
        except TlsError as e:
            # the directive to blame, else the ssl listen (nginx's "... for the "listen
            # ... ssl" directive in FILE:LINE"), else the server
            d = origins.get(e.directive) or lvl.local.get("ssl_listen") or lvl.directive
            raise (d.error(e.message) if d is not None else self.ld.error(e.message)) from None

    def location(self, parent: Settings, parent_origins: dict[str, Directive],
                 lvl: Level, in_internal: bool = False) -> Location:
        """``in_internal``: it is nested in an ``internal`` location, and so is internal
        itself (nginx merges the flag into nested locations: what is under a private
        location is private too)."""
        settings = merge(parent, lvl)
        origins = merge_origins(parent_origins, lvl)
        modifier, pattern = lvl.local["location"]
        internal = in_internal or bool(lvl.local.get("internal", False))
        children = [self.location(settings, origins, c, internal) for c in lvl.children]
        tree = LocationTree.build(children) if children else None
        return self._make_location(modifier, pattern, settings, origins, lvl, tree, internal)

    def _make_location(self, modifier: str, pattern: str, settings: Settings,
                       origins: dict[str, Directive], lvl: Level,
                       children: LocationTree | None, internal: bool = False) -> Location:
        where = _where(lvl.directive)
        _check_recoding(settings, origins)
        jwt = self._jwt_check(settings, origins, where) if settings.auth_jwt != "off" else None
        if jwt is not None:
            self.dialects.add("seed" if settings.auth_jwt_realm is None else "plus")
        in_location = lvl.ctx == LOCATION
        proxy_pass = lvl.local.get("proxy_pass") if in_location else None
        if proxy_pass is not None:
            proxy_pass = self._upstream(proxy_pass, settings, origins)
        app_pass = lvl.local.get("app_pass") if in_location else None
        if app_pass is not None and _may_be_tls(app_pass):
            app_pass = self._app_tls(app_pass, settings, origins)
        if proxy_pass is not None and app_pass is not None:
            raise origins[f"{app_pass.kind}_pass"].error(
                f'"{app_pass.kind}_pass" and "proxy_pass" in one location: name one '
                "content handler")
        own_content = lvl.local.get("own_content", "")

        def nested(if_lvl: Level) -> Location:
            # an if's configuration: the location's, with the if's own directives over
            # it; proxy_pass and the location's own content handler carry over (as
            # nginx's does), try_files does not ("if is evil")
            s = merge(settings, if_lvl)
            o = merge_origins(origins, if_lvl)
            own = if_lvl.local.get("proxy_pass")
            own_cgi = if_lvl.local.get("app_pass")
            # the if's own content handler replaces the location's
            return Location(modifier=modifier, pattern=pattern, settings=s,
                            where=_where(if_lvl.directive),
                            proxy_pass=(self._upstream(own, s, o) if own is not None
                                        else None if own_cgi is not None
                                        else _filtered(proxy_pass, s)),
                            app_pass=(self._app_tls(own_cgi, s, o)
                                      if own_cgi is not None and _may_be_tls(own_cgi)
                                      else own_cgi if own_cgi is not None
                                      else None if own is not None
                                      else app_pass),
                            own_content=own_content,
                            jwt=(self._jwt_check(s, o, where) if s.auth_jwt != "off"
                                 else None))

        rewrites = self._program(lvl, nested) if in_location else ()
        first = next((op for op in rewrites if isinstance(op, Return)), None)
        internal = in_location and internal
        if first is not None and jwt is not None and modifier != "@" and not internal:
            self.ld.warn(f'"return" in location "{pattern}" runs before auth_jwt: '
                         "its response is not protected", lvl.origins["return"])
        location = Location(
            modifier=modifier,
            pattern=pattern,
            settings=settings,
            where=where,
            regex=lvl.local.get("regex"),
            proxy_pass=proxy_pass,
            app_pass=app_pass,
            rewrites=rewrites,
            try_files=lvl.local.get("try_files") if in_location else None,
            own_content=own_content,
            internal=internal,
            jwt=jwt,
            children=children,
        )
        limit_except = lvl.local.get("limit_except") if in_location else None
        if limit_except is None:
            return location
        # the configuration of the methods limit_except does not name: the location's
        # with the block's directives over it, but none of the location's rewrite
        # directives — nginx's rewrite module does not inherit them into the block's
        # configuration, so a POST that `limit_except GET { deny all; }` refuses is
        # refused before any `rewrite ... last` can take it to another location (and
        # an `if`, `set` or `return` of the location does not run for it either)
        methods, lmt = limit_except
        s = merge(settings, lmt)
        o = merge_origins(origins, lmt)
        own = lmt.local.get("proxy_pass")
        pp = self._upstream(own, s, o) if own is not None else proxy_pass
        other = dataclasses.replace(
            location, settings=s, where=_where(lmt.directive), proxy_pass=pp, rewrites=(),
            jwt=self._jwt_check(s, o, where) if s.auth_jwt != "off" else None)
        return dataclasses.replace(location, limit_except=(methods, other))

    def _upstream(self, pp: ProxyPass, s: Settings, origins: dict[str, Directive]
                  ) -> ProxyPass:
        """The proxy_pass of a location, with what its settings make of it: whether the
        request goes as the client sent it, and for ``https://`` the pool its
        connections are kept in (one per distinct proxy_ssl_* setting, its context
        checked now so that ``-t`` fails on what OpenSSL refuses)."""
        # (bodies are filtered or inflated, proxy_store's kept, slices fetched,
        # responses paced, every body filed — an empty one too — on the task path)
        as_is = (s.proxy_method is None and s.proxy_set_body is None
                 and s.proxy_pass_request_body and pp.template is None
                 and not s.filters_bodies and not s.gunzip and s.proxy_store is False
                 and not s.slice
                 and s.limit_rate is None and s.client_body_in_file_only == "off")
        if as_is != pp.as_is or _gzip(s) != pp.gzip:
            pp = dataclasses.replace(pp, as_is=as_is, gzip=_gzip(s))
        if s.proxy_ssl_verify and s.proxy_ssl_trusted_certificate is None and (
                pp.scheme == "https" or pp.template is not None):
            raise origins["proxy_ssl_verify"].error(
                'no "proxy_ssl_trusted_certificate" for "proxy_ssl_verify"')
        if pp.template is not None:
            if pp.template.source.startswith(("https://", "$")):
                try:  # what OpenSSL would refuse, known now
                    upstream_context(upstream_tls(s, "check"))
                except TlsError as e:
                    raise (origins.get(e.directive) or origins["proxy_pass"]).error(
                        e.message) from None
            return pp
        if pp.scheme != "https":
            return pp
        if not isinstance(s.proxy_ssl_name, str) and s.proxy_ssl_name is not None:
            pp = dataclasses.replace(pp, tls_name=s.proxy_ssl_name)
        if s.proxy_ssl_verify and s.proxy_ssl_trusted_certificate is None:
            raise origins["proxy_ssl_verify"].error(
                'no "proxy_ssl_trusted_certificate" for "proxy_ssl_verify"')
        t = upstream_tls(s, proxy_tls_host(pp))
        return dataclasses.replace(pp, pool=self._tls_pool(pp.upstream, t, origins,
                                                           "proxy_pass"))

    def _tls_pool(self, upstream: str, t: UpstreamTls, origins: dict[str, Directive],
                  passing: str) -> str:
        """The pool of ``upstream``'s servers whose connections speak TLS as ``t`` says
        (one per distinct setting); what OpenSSL would refuse fails here, at the
        directive that set it (else at ``passing``)."""
        pool = next((name for name, have in self.tls_pools.items()
                     if have == (upstream, t)), None)
        if pool is None:
            try:
                upstream_context(t)
            except TlsError as e:
                d = origins.get(e.directive) or origins[passing]
                raise d.error(e.message) from None
            pool = f"{upstream} tls:{len(self.tls_pools) + 1}"
            self.tls_pools[pool] = (upstream, t)
        return pool

    def _app_tls(self, ap: AppPass, s: Settings, origins: dict[str, Directive]) -> AppPass:
        """A suwsgi:// uwsgi_pass or a grpcs:// grpc_pass (or one with variables, which
        may name one): its group's servers in a pool of their own whose connections
        speak TLS with the location's uwsgi_ssl_* (grpc_ssl_*) settings (one pool per
        distinct setting, as https:// proxy_pass's; what OpenSSL refuses known now, as
        nginx knows it)."""
        p = f"{ap.kind}_ssl_"
        if getattr(s, p + "verify") and getattr(s, p + "trusted_certificate") is None:
            raise origins[p + "verify"].error(
                f'no "{p}trusted_certificate" for "{p}verify"')
        name = getattr(s, p + "name")
        if name is not None and not isinstance(name, str):
            ap = dataclasses.replace(ap, tls_name=name)  # (rendered per request)
        # (with variables, a name stands in for the address's host: the settings are
        # what is checked)
        t = upstream_tls(s, ap.tls_host or "localhost", module=ap.kind)
        if ap.unix is not None or ap.template is not None:
            # (a context per request's name and address, made by the worker; checked now)
            try:
                upstream_context(t)
            except TlsError as e:
                raise (origins.get(e.directive) or origins[f"{ap.kind}_pass"]).error(
                    e.message) from None
            return ap
        return dataclasses.replace(ap, upstream=self._tls_pool(ap.upstream, t, origins,
                                                               f"{ap.kind}_pass"))

    def _program(self, lvl: Level,
                 nested: Callable[[Level], Location] | None) -> tuple[RewriteOp, ...]:
        """The level's rewrite directives as the model holds them: an ``if`` with its
        body and, in a location, its own configuration (``nested``)."""
        out: list[RewriteOp] = []
        for op in lvl.local.get("rewrites", ()):
            if isinstance(op, PendingIf):
                out.append(If(op.condition, self._program(op.level, None),
                              nested(op.level) if nested is not None else None))
            else:
                out.append(op)
        return tuple(out)

    def _warn_duplicate_named(self, locations: list[Location]) -> None:
        """nginx takes two named locations of one name (the first answers): so does
        fastgate, and says so."""
        seen: set[str] = set()
        for loc in locations:
            if loc.modifier != "@":
                continue
            if loc.pattern in seen:
                self.ld.warn(f'duplicate named location "{loc.pattern}": the first one '
                             "answers", Directive("location", (), loc.where.file,
                                                  loc.where.line))
            seen.add(loc.pattern)

    def _jwt_check(self, s: Settings, origins: dict[str, Directive], where: Where
                   ) -> JwtCheck:
        keys = s.auth_jwt_key + s.auth_jwt_key_file
        anchor = origins.get("auth_jwt")
        at = (anchor.file, anchor.line) if anchor is not None else (where.file, where.line)
        remote = s.auth_jwt_key_request
        if not keys and remote is None:
            raise self.ld.error("JWT: key not set", *at)
        if (remote is None and s.auth_jwt_alg != "any"
                and not any(s.auth_jwt_alg in k.algorithms for k in keys)):
            d = origins.get("auth_jwt_alg")
            kinds = ", ".join(sorted({k.kty for k in keys}))
            raise self.ld.error(
                f'JWT: the configured key ({kinds}) cannot verify "{s.auth_jwt_alg}"',
                *((d.file, d.line) if d is not None else at),
            )
        ident = (tuple(id(k) for k in keys), s.auth_jwt_alg, s.auth_jwt_leeway,
                 s.auth_jwt_cache, remote, s.auth_jwt_key_request_interval,
                 s.auth_jwt_issuer, s.auth_jwt_audience)
        check = self.jwt_checks.get(ident)
        if check is None:
            check = self.jwt_checks[ident] = JwtCheck(
                keys, s.auth_jwt_alg, s.auth_jwt_leeway, s.auth_jwt_cache,
                s.auth_jwt_issuer, s.auth_jwt_audience, remote,
                s.auth_jwt_key_request_interval)
        return check

    def _check_auth_request(self, server: Server, loc: Location) -> None:
        """The location an auth_request or a mirror reaches must exist; a mirror's (and
        a named one) must be one a subrequest goes to without its phases: one that
        proxies, or one that answers with ``return``."""
        s = loc.settings
        if s.auth_basic is not None and s.auth_basic_user_file is None:
            self.ld.warn_once('"auth_basic" without "auth_basic_user_file" checks nothing',
                              "nginx lets every request through such a location; give the "
                              "password file", Directive("location", (), loc.where.file,
                                                         loc.where.line))
        asked = ([("auth_request", s.auth_request)] if s.auth_request is not None else []) + [
            ("mirror", uri) for uri in s.mirror]
        if s.post_action is not None:
            asked.append(("post_action", s.post_action))
        if s.auth_jwt_key_request is not None and s.auth_jwt_key_request.startswith("/"):
            asked.append(("auth_jwt_key_request", s.auth_jwt_key_request))
        for name, uri in asked:
            target = server.location_for(uri)
            if target is None:
                raise self.ld.error(f'could not find named location "{uri}"',
                                    loc.where.file, loc.where.line)
            if name == "auth_request" and not uri.startswith("@"):
                continue  # (any location: its phases run when it is not a direct one)
            returns = bool(target.rewrites) and isinstance(target.rewrites[0], Return)
            if target.proxy_pass is None and not returns:
                raise self.ld.error(
                    f'{name} "{uri}" reaches a location ({target.where.file}:'
                    f"{target.where.line}) that neither proxies nor returns: fastgate "
                    "sends a subrequest through proxy_pass or answers it with return",
                    loc.where.file, loc.where.line)
            # what nginx would run for the subrequest and fastgate does not: refused, so
            # that no check written there is skipped (an "if ... return 403" would be)
            skipped = [] if returns else [_REWRITE_NAMES[type(op)] for op in target.rewrites]
            if target.try_files is not None and not returns:
                skipped.append("try_files")
            if skipped:
                raise self.ld.error(
                    f'{name} "{uri}" reaches a location ({target.where.file}:'
                    f'{target.where.line}) with "{skipped[0]}": fastgate does not run the '
                    f"rewrite module or try_files in {name}'s subrequest (nginx would); "
                    "move the check to the location that asks, or to the authoriser",
                    loc.where.file, loc.where.line)

    def _check_targets(self, server: Server) -> None:
        """Named locations used by error_page and try_files: one that does not exist is
        said at load (nginx loads it silently, and logs it per request sent there, which
        it answers 500: so does fastgate)."""
        named = server.locations.named
        for loc in [server.fallback, *server.locations.all()]:
            assert loc is not None
            targets: list[tuple[str, int | None]] = [
                (p.target, id(p)) for _, p in loc.settings.error_page]
            if loc.try_files is not None and loc.try_files.fallback_target:
                targets.append((loc.try_files.fallback_target.source, None))
            for target, entry in targets:
                if not target.startswith("@") or target[1:] in named or target in named:
                    continue
                if entry is not None:
                    if entry in self._said_missing:
                        continue
                    self._said_missing.add(entry)
                self.ld.warn_once(f'could not find named location "{target}"',
                                  "a request sent there is answered 500, as nginx answers it",
                                  Directive("location", (), loc.where.file, loc.where.line))
            self._check_auth_request(server, loc)


def check_client_certificates(servers: tuple[Server, ...]) -> None:
    """Servers sharing a TLS address ask for and check client certificates alike: the
    handshake's certificate request comes from the address's first context, and
    choosing another by SNI does not change it in Python's ssl (nginx sets it again)."""
    seen: dict[tuple[str, int], tuple[Server, tuple[object, ...]]] = {}
    tls = {x.address for srv in servers for x in srv.listens if x.ssl}
    for srv in servers:
        s = srv.settings
        if s.ssl_reject_handshake:
            continue  # it never completes a handshake: what it would ask does not matter
        mine = (s.ssl_verify_client, s.ssl_client_certificate, s.ssl_trusted_certificate,
                s.ssl_verify_depth, s.ssl_crl)
        for listen in srv.listens:
            if listen.address not in tls:
                continue
            first = seen.setdefault(listen.address, (srv, mine))
            if first[1] != mine:
                host, port = listen.address
                raise ConfigError(
                    f"servers on {host}:{port} differ in client certificate settings "
                    "(ssl_verify_client, ssl_client_certificate, ssl_trusted_certificate, "
                    f"ssl_verify_depth, ssl_crl; the first in {first[0].where.file}:"
                    f"{first[0].where.line}): fastgate cannot change them by SNI",
                    srv.where.file, srv.where.line)


def _check_recoding(s: Settings, origins: dict[str, Directive]) -> None:
    """nginx's check at load: a source_charset and a charset, both without variables
    and not the same, need a charset_map between them."""
    src, dst = s.source_charset, s.charset
    if src is None or dst is None or not src.is_literal or not dst.is_literal:
        return
    if src.source.lower() != dst.source.lower() and (
            src.source.lower(), dst.source.lower()) not in s.charset_maps:
        raise origins["source_charset"].error(
            f'no "charset_map" between the charsets "{src.source}" and "{dst.source}"')


def _filtered(pp: ProxyPass | None, s: Settings) -> ProxyPass | None:
    """A location's proxy_pass in an if that filters bodies (recodes them, SSI) or
    paces them (limit_rate) where the location does not: off the callback path, which
    relays bodies as they come; or that compresses them where it does not (or not
    so): off it for a client that may have them compressed."""
    if pp is not None and pp.as_is and (s.filters_bodies or s.gunzip
                                        or s.limit_rate is not None):
        return dataclasses.replace(pp, as_is=False)
    if pp is not None and pp.gzip != _gzip(s):
        return dataclasses.replace(pp, gzip=_gzip(s))
    return pp


def _gzip(s: Settings) -> int:
    """``ProxyPass.gzip`` for a location's settings."""
    return (2 if s.gzip_vary else 1) if s.gzip else 0


def _may_be_tls(ap: AppPass) -> bool:
    """Whether a pass speaks TLS, or may per request (nginx makes its TLS context for
    a uwsgi_pass or grpc_pass with variables)."""
    return ap.secure or ap.template is not None and ap.kind in ("uwsgi", "grpc")
