"""The ``mail`` block: nginx's mail modules (core, auth_http, proxy, imap, pop3, smtp,
ssl) for IMAP, POP3 and SMTP.

A client logs in to fastgate; fastgate asks the ``auth_http`` server whether it may and
to which mail server, logs in there on its behalf, and from then on passes bytes both
ways. Every reply fastgate makes before that is nginx's, to the byte: the capability
lists are made here, once, as nginx's merge makes them."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterable
from typing import Any

from fastgate.config.context import Context, Level, Spec
from fastgate.config.directives import realip, resolver, tls
from fastgate.config.directives.args import (
    flag_arg,
    ignored,
    listen_address,
    number_arg,
    size_arg,
    time_arg,
)
from fastgate.config.errors import ConfigError
from fastgate.config.model import AuthHttp, Listen, Mail, MailServer, Settings, Where
from fastgate.config.parser import Directive
from fastgate.config.tls import TlsError, server_context
from fastgate.config.values import parse_host_port, parse_number

MAIL, MAIL_SERVER = "mail", "mail server"
MM = frozenset({MAIL})
MS = frozenset({MAIL_SERVER})
MMS = frozenset({MAIL, MAIL_SERVER})

# nginx picks the protocol by the listening port when ``protocol`` is not given
PORTS = {143: "imap", 993: "imap", 110: "pop3", 995: "pop3", 25: "smtp", 465: "smtp",
         587: "smtp"}

# imap_auth / pop3_auth: the names nginx takes, in the order of its bits, and what each
# is called in the capability lists
IMAP_AUTH = {"plain": "AUTH=PLAIN", "login": "AUTH=LOGIN", "cram-md5": "AUTH=CRAM-MD5",
             "external": "AUTH=EXTERNAL"}
POP3_AUTH = {"plain": "PLAIN", "login": "LOGIN", "apop": "", "cram-md5": "CRAM-MD5",
             "external": "EXTERNAL"}
SMTP_AUTH = {"plain": "PLAIN", "login": "LOGIN", "cram-md5": "CRAM-MD5",
             "external": "EXTERNAL", "none": ""}
IMAP_CAPABILITIES = ("IMAP4", "IMAP4rev1", "UIDPLUS")
POP3_CAPABILITIES = ("TOP", "USER", "UIDL")
CRLF = "\r\n"


def imap_replies(capabilities: tuple[str, ...], methods: frozenset[str]) -> dict[str, bytes]:
    """The CAPABILITY replies, as ngx_mail_imap_merge_srv_conf makes them."""
    base = "* CAPABILITY" + "".join(" " + c for c in capabilities)
    auth = "".join(" " + name for m, name in IMAP_AUTH.items() if m in methods)
    return {
        "capability": (base + auth + CRLF).encode("latin-1"),
        "starttls_capability": (base + auth + " STARTTLS" + CRLF).encode("latin-1"),
        "starttls_only_capability": (base + " STARTTLS LOGINDISABLED" + CRLF
                                     ).encode("latin-1"),
    }


def pop3_replies(capabilities: tuple[str, ...], methods: frozenset[str]) -> dict[str, bytes]:
    """The CAPA and AUTH replies, as ngx_mail_pop3_merge_srv_conf makes them."""
    names = [name for m, name in POP3_AUTH.items() if m in methods and name]
    head = "+OK Capability list follows" + CRLF
    listed = "".join(c + CRLF for c in capabilities)
    capability = head + listed + "SASL" + "".join(" " + n for n in names) + CRLF
    no_user = "".join(c + CRLF for c in capabilities if c.lower() != "user")
    return {
        "capability": (capability + "." + CRLF).encode("latin-1"),
        "starttls_capability": (capability + "STLS" + CRLF + "." + CRLF).encode("latin-1"),
        "starttls_only_capability": (head + no_user + "STLS" + CRLF + "." + CRLF
                                     ).encode("latin-1"),
        "auth_capability": ("+OK methods supported:" + CRLF
                            + "".join(n + CRLF for n in names) + "." + CRLF).encode("latin-1"),
    }


def smtp_replies(server_name: str, capabilities: tuple[str, ...],
                 methods: frozenset[str]) -> dict[str, bytes]:
    """The greeting, HELO's and EHLO's replies, as ngx_mail_smtp_merge_srv_conf makes
    them: one line per capability, "250-" but for the last."""
    names = [name for m, name in SMTP_AUTH.items() if m in methods and name]
    lines = [server_name, *capabilities]
    auth = ["AUTH " + " ".join(names)] if names else []

    def reply(items: list[str]) -> bytes:
        return "".join(("250 " if i == len(items) - 1 else "250-") + item + CRLF
                       for i, item in enumerate(items)).encode("latin-1")

    return {
        "greeting": f"220 {server_name} ESMTP ready{CRLF}".encode("latin-1"),
        "helo": f"250 {server_name}{CRLF}".encode("latin-1"),
        "capability": reply(lines + auth),
        "starttls_capability": reply(lines + auth + ["STARTTLS"]),
        "starttls_only_capability": reply(lines + ["STARTTLS"]),
    }


# --- handlers --------------------------------------------------------------------------------


def mail_block(ld: Context, lvl: Level, d: Directive) -> None:
    if "mail" in lvl.local:
        raise d.error('"mail" directive is duplicate')
    top = Level(MAIL, d, parent=lvl)
    ld.walk(d.block or (), top, MAIL_TABLE)
    servers = tuple(_server(ld, top, c) for c in top.children)
    seen: dict[tuple[str, int], MailServer] = {}
    for server in servers:
        for x in server.listens:
            if x.address in seen:
                raise ConfigError(f'duplicate "{x.written}" address and port pair',
                                  server.where.file, server.where.line)
            seen[x.address] = server
    lvl.local["mail"] = Mail(servers)


def server_block(ld: Context, lvl: Level, d: Directive) -> None:
    child = Level(MAIL_SERVER, d, parent=lvl)
    lvl.children.append(child)
    ld.walk(d.block or (), child, MAIL_TABLE)


def listen(ld: Context, lvl: Level, d: Directive) -> None:
    host, port = listen_address(ld, d, d.args[0], None)
    params: dict[str, Any] = {}
    for arg in d.args[1:]:
        if arg == "ssl":
            params["ssl"] = True
            lvl.local.setdefault("ssl_listen", d)
        elif arg == "proxy_protocol":
            params["proxy_protocol"] = True
        elif arg.startswith("backlog="):
            params["backlog"] = parse_number(d, arg[8:], minimum=1)
        elif arg == "bind" or arg.startswith(("ipv6only=", "so_keepalive=", "rcvbuf=",
                                               "sndbuf=")):
            ld.warn_once(f'the "{arg.partition("=")[0]}" parameter of "listen" is ignored',
                         "fastgate's listening sockets take the system defaults", d)
        else:
            raise d.error(f'the invalid "{arg}" parameter')  # (nginx's words)
    entry = Listen(host or "0.0.0.0", port, **params)
    lvl.local["listen"] = lvl.local.get("listen", ()) + (entry,)
    lvl.local.setdefault("listen_at", d)
    if "protocol" not in lvl.local and port in PORTS:
        lvl.local.setdefault("port_protocol", (PORTS[port], d))


def protocol(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    name = d.args[0]
    if name not in ("imap", "pop3", "smtp"):
        raise d.error(f'unknown protocol "{name}"')
    lvl.local["protocol"] = name


def own(name: str, parse: Any) -> Any:
    """A mail setting, inherited from the block by its servers."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        lvl.once(d)
        lvl.local.setdefault("mail", {})[name] = parse(ld, d)

    return handle


def _auth_http(ld: Context, d: Directive) -> AuthHttp:
    url = d.args[0]
    rest = url[7:] if url.startswith("http://") else url
    if rest.startswith("unix:"):  # (nginx's unix:PATH[:URI]; Host: localhost)
        path, colon, uri = rest[5:].partition(":")
        if not path:
            raise d.error(f'no path in the unix domain socket in auth_http "{rest}"')
        return AuthHttp("localhost", 0, "localhost", uri if colon and uri else "/",
                        unix=ld.path_of(path))
    hostport, slash, path = rest.partition("/")
    host, port = parse_host_port(d, hostport, 80)
    if not host:
        raise d.error(f'no host in auth_http "{rest}"')
    ld.check_host(host, port, hostport, d)
    # Host: the name as written, without its port (nginx's u.host; brackets kept)
    written = hostport[:hostport.index("]") + 1] if hostport.startswith("[") \
        else hostport.partition(":")[0]
    return AuthHttp(host, port, written, slash + path or "/")


def _header(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.origins.setdefault(d.name, d)
    own_ = lvl.local.setdefault("mail", {})
    own_["auth_http_headers"] = (own_.get("auth_http_headers", b"")
                                 + f"{d.args[0]}: {d.args[1]}\r\n".encode("latin-1"))


def _methods(names: dict[str, str]) -> Any:
    def parse(ld: Context, d: Directive) -> frozenset[str]:
        found: set[str] = set()
        for value in d.args:
            m = value.lower()
            if m not in names or m == "login" and names is POP3_AUTH:
                raise d.error(f'invalid value "{value}"')
            if m in found:
                ld.warn(f'duplicate value "{value}"', d)
            found.add(m)
        return frozenset(found)

    return parse


def _resolver(ld: Context, lvl: Level, d: Directive) -> None:
    """nginx's mail resolver (SMTP clients' names): ``off`` or the servers."""
    lvl.once(d)
    lvl.local.setdefault("mail", {})["resolver"] = (
        None if tuple(d.args) == ("off",) else resolver.resolver(ld, d))


def _real_ip_from(ld: Context, lvl: Level, d: Directive) -> None:
    """``set_real_ip_from``: every one of a level; a server's list replaces the block's
    (nginx's mail realip merge)."""
    own_ = lvl.local.setdefault("mail", {})
    own_["real_ip_from"] = own_.get("real_ip_from", ()) + realip.trusted_networks(ld, d)


def _starttls(ld: Context, d: Directive) -> str:
    value = d.args[0]
    if value not in ("on", "off", "only"):
        raise d.error(f'invalid value "{value}" in "{d.name}" directive, it must be '
                      '"off", "on" or "only"')
    return value


def _ssl(ld: Context, lvl: Level, d: Directive) -> None:
    """nginx's deprecated ``ssl on``: as ``listen ... ssl`` on the server's addresses."""
    lvl.once(d)
    ld.warn('the "ssl" directive is deprecated, use the "listen ... ssl" directive '
            "instead", d)
    lvl.local.setdefault("mail", {})["ssl_on"] = flag_arg(ld, d)
    lvl.local["ssl_on_at"] = d


def _server(ld: Context, top: Level, lvl: Level) -> MailServer:
    d = lvl.directive
    assert d is not None
    listens: tuple[Listen, ...] = lvl.local.get("listen", ())
    if not listens:
        raise ConfigError('no "listen" is defined for server', d.file, d.line)
    own_ = {**top.local.get("mail", {}), **lvl.local.get("mail", {})}
    name = lvl.local.get("protocol")
    if name is None:
        found = lvl.local.get("port_protocol")
        if found is None:
            raise ConfigError("unknown mail protocol for server", d.file, d.line)
        name = found[0]
    auth_http = own_.pop("auth_http", None)
    if auth_http is None:
        raise ConfigError('no "auth_http" is defined for server', d.file, d.line)
    own_.pop("proxy", None)
    if own_.pop("ssl_on", False):
        listens = tuple(dataclasses.replace(x, ssl=True) for x in listens)
    starttls = own_.get("starttls", "off")
    fields = {**top.fields, **lvl.fields}
    names = {f.name for f in dataclasses.fields(Settings)}
    settings = dataclasses.replace(
        Settings(), **{k: v for k, v in fields.items() if k in names})
    if any(x.ssl for x in listens) or starttls != "off":
        mode = ("listen ... ssl" if any(x.ssl for x in listens) and "ssl_on_at" not in lvl.local
                else "ssl" if any(x.ssl for x in listens) else "starttls")
        where = lvl.local.get("ssl_listen") or lvl.local.get("ssl_on_at") or d
        if not settings.ssl_certificate:
            raise ConfigError(f'no "ssl_certificate" is defined for the "{mode}" directive',
                              where.file, where.line)
        try:
            server_context(settings)
        except TlsError as e:
            at = lvl.origins.get(e.directive) or top.origins.get(e.directive) or where
            raise at.error(e.message) from None
    # each protocol's own settings: this server's protocol's are kept
    default_methods = frozenset({"plain", "login"} if name == "smtp" else {"plain"})
    methods = own_.pop(f"{name}_auth", default_methods)
    capabilities = own_.pop(f"{name}_capabilities", None)
    buffers = {p: own_.pop(f"{p}_client_buffer", None) for p in ("imap", "smtp")}
    for other in {"imap", "pop3", "smtp"} - {name}:
        own_.pop(f"{other}_auth", None)
        own_.pop(f"{other}_capabilities", None)
    server_name = own_.pop("server_name", "") or socket.gethostname()
    if name == "imap":
        replies = imap_replies(capabilities or IMAP_CAPABILITIES, methods)
        own_["client_buffer"] = buffers["imap"] or 4096
    elif name == "pop3":
        if "plain" in methods:
            methods = methods | {"login"}
        replies = pop3_replies(capabilities or POP3_CAPABILITIES, methods)
        own_["client_buffer"] = 128  # (nginx's POP3 reads commands into 128 bytes)
    else:
        replies = smtp_replies(server_name, capabilities or (), methods)
        own_["client_buffer"] = buffers["smtp"] or 4096
    return MailServer(listens=listens, protocol=name, settings=settings,
                      where=Where(d.file, d.line), auth_http=auth_http,
                      auth_methods=methods, server_name=server_name,
                      capability=replies["capability"],
                      starttls_capability=replies["starttls_capability"],
                      starttls_only_capability=replies["starttls_only_capability"],
                      auth_capability=replies.get("auth_capability", b""),
                      smtp_greeting=replies.get("greeting", b""),
                      smtp_helo=replies.get("helo", b""), **own_)


def _tls_specs(names: Iterable[str]) -> list[Spec]:
    return [tls.beside_http(s, MMS) for s in tls.SPECS if s.name in names]


_TLS = ("ssl_certificate", "ssl_certificate_key", "ssl_password_file", "ssl_protocols",
        "ssl_ciphers", "ssl_prefer_server_ciphers", "ssl_session_tickets", "ssl_conf_command",
        "ssl_ecdh_curve", "ssl_dhparam", "ssl_session_cache", "ssl_session_timeout",
        "ssl_verify_client", "ssl_client_certificate", "ssl_trusted_certificate",
        "ssl_verify_depth", "ssl_crl", "ssl_session_ticket_key")

SPECS = [Spec("mail", frozenset({"main"}), 0, 0, mail_block, block=True)]

MAIL_TABLE: dict[str, Spec] = {s.name: s for s in [
    Spec("server", MM, 0, 0, server_block, block=True),
    Spec("listen", MS, 1, None, listen),
    Spec("protocol", MS, 1, 1, protocol),
    Spec("timeout", MMS, 1, 1, own("timeout", time_arg)),
    Spec("server_name", MMS, 1, 1, own("server_name", lambda ld, d: d.args[0])),
    Spec("max_errors", MMS, 1, 1, own("max_errors", number_arg)),
    Spec("error_log", MMS, 1, 2, ignored("the mail block logs to the main error_log")),
    Spec("resolver", MMS, 1, None, _resolver),
    Spec("resolver_timeout", MMS, 1, 1, own("resolver_timeout", time_arg)),
    Spec("auth_http", MMS, 1, 1, own("auth_http", _auth_http)),
    Spec("auth_http_timeout", MMS, 1, 1, own("auth_http_timeout", time_arg)),
    Spec("auth_http_header", MMS, 2, 2, _header),
    Spec("auth_http_pass_client_cert", MMS, 1, 1,
         own("auth_http_pass_client_cert", flag_arg)),
    # (nginx 1.22 proxies whatever "proxy" says: the flag is read by no code)
    Spec("proxy", MMS, 1, 1, own("proxy", flag_arg)),
    Spec("proxy_buffer", MMS, 1, 1, own("proxy_buffer", size_arg)),
    Spec("proxy_timeout", MMS, 1, 1, own("proxy_timeout", time_arg)),
    Spec("proxy_pass_error_message", MMS, 1, 1, own("pass_error_message", flag_arg)),
    Spec("proxy_protocol", MMS, 1, 1, own("send_proxy_protocol", flag_arg)),
    Spec("imap_client_buffer", MMS, 1, 1, own("imap_client_buffer", size_arg)),
    Spec("smtp_client_buffer", MMS, 1, 1, own("smtp_client_buffer", size_arg)),
    Spec("smtp_greeting_delay", MMS, 1, 1, own("greeting_delay", time_arg)),
    Spec("smtp_capabilities", MMS, 1, None,
         own("smtp_capabilities", lambda ld, d: tuple(d.args))),
    Spec("smtp_auth", MMS, 1, None, own("smtp_auth", _methods(SMTP_AUTH))),
    Spec("xclient", MMS, 1, 1, own("xclient", flag_arg)),
    Spec("proxy_smtp_auth", MMS, 1, 1, own("smtp_auth_upstream", flag_arg)),
    Spec("imap_capabilities", MMS, 1, None,
         own("imap_capabilities", lambda ld, d: tuple(d.args))),
    Spec("imap_auth", MMS, 1, None, own("imap_auth", _methods(IMAP_AUTH))),
    Spec("pop3_capabilities", MMS, 1, None,
         own("pop3_capabilities", lambda ld, d: tuple(d.args))),
    Spec("pop3_auth", MMS, 1, None, own("pop3_auth", _methods(POP3_AUTH))),
    Spec("ssl", MMS, 1, 1, _ssl),
    Spec("starttls", MMS, 1, 1, own("starttls", _starttls)),
    Spec("set_real_ip_from", MMS, 1, 1, _real_ip_from),
    *_tls_specs(_TLS),
]}

__all__ = ["MAIL_TABLE", "SPECS", "imap_replies", "pop3_replies", "smtp_replies"]
