"""The mail block's sessions (nginx's ngx_mail_imap_handler, ngx_mail_pop3_handler,
ngx_mail_handler and ngx_mail_proxy_module): a client logs in to fastgate, the
``auth_http`` server says whether it may and where to, fastgate logs in to that mail
server on the client's behalf, and then passes bytes both ways.

Each reply before login is nginx's, byte for byte, and so is each command fastgate sends
the mail server; what the client gets after that is the mail server's own. Nothing the
client sends reaches a mail server before the auth server has said where, and what came
after STARTTLS in clear is dropped, as nginx drops it."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import random
import ssl
import time
from collections.abc import Callable
from typing import Any, Protocol

from fastgate import openssl
from fastgate.client_certificate import VARIABLES as CERTIFICATE
from fastgate.config.addresses import UNIX, trusted_peer
from fastgate.config.model import Listen, Mail, MailServer, Resolver
from fastgate.decimals import decimal
from fastgate.http.proxy_protocol import BrokenHeader, ProxyHeader, read_header
from fastgate.http.tcp import TcpEnd, connect
from fastgate.proxy.dns import Names, ResolveError
from fastgate.proxy.failure import unix_connect_failed
from fastgate.proxy.mail_auth import (
    Answer,
    AnswerReader,
    BadAnswer,
    Login,
    escape,
    request,
)
from fastgate.proxy.mail_login import Credentials, LoginScript, NoPassword
from fastgate.proxy.mail_parse import AGAIN, INVALID, NEXT, CommandReader

IMAP_REPLIES = {
    "greeting": b"* OK IMAP4 ready\r\n",
    "internal": b"* BAD internal server error\r\n",
    "cert_error": b"* BYE SSL certificate error\r\n",
    "no_cert": b"* BYE No required SSL certificate\r\n",
}
POP3_REPLIES = {
    "greeting": b"+OK POP3 ready\r\n",
    "internal": b"-ERR internal server error\r\n",
    "cert_error": b"-ERR SSL certificate error\r\n",
    "no_cert": b"-ERR No required SSL certificate\r\n",
}
SMTP_REPLIES = {
    "internal": b"451 4.3.2 Internal server error\r\n",
    "cert_error": b"421 4.7.1 SSL certificate error\r\n",
    "no_cert": b"421 4.7.1 No required SSL certificate\r\n",
}
SMTP_OK = b"250 2.0.0 OK\r\n"
SMTP_INVALID_ARGUMENT = b"501 5.5.4 Invalid argument\r\n"
SMTP_BAD_SEQUENCE = b"503 5.5.1 Bad sequence of commands\r\n"
UNAVAILABLE, TEMPUNAVAIL = "[UNAVAILABLE]", "[TEMPUNAVAIL]"  # a client's name not known
USERNAME, PASSWORD = b"VXNlcm5hbWU6", b"UGFzc3dvcmQ6"  # "Username:", "Password:"
_INVALID = object()  # a command nginx answers with its "invalid command"


class MailHost(Protocol):
    """What a session asks of the worker that owns it."""

    def stream_admit(self) -> bool: ...

    def stream_error(self, level: str, message: str, connection: int = 0) -> None: ...

    def stream_opened(self, session: Any) -> int: ...

    def stream_closed(self, session: Any) -> None: ...


class MailSession:
    """One client connection to a mail server, from its greeting to its end."""

    def __init__(self, host: MailHost, server: MailServer, listen: Listen,
                 starttls: ssl.SSLContext | None,
                 names: Callable[[Resolver], Names] | None = None) -> None:
        self.host = host
        self.server = server
        self.listen = listen
        self.number = 0  # the connection's, once opened
        self.imap = server.protocol == "imap"
        self.smtp = server.protocol == "smtp"
        self.replies = (IMAP_REPLIES if self.imap else SMTP_REPLIES if self.smtp
                        else POP3_REPLIES)
        self.prompt = b"334 " if self.smtp else b"+ "  # before a mechanism's challenge
        self.names = names
        # SMTP's: the client's name (Client-Host, XCLIENT's NAME), what it said
        self.client_name = ""
        self.helo = b""
        self.mail_from = b""
        self.rcpt_to = b""
        self.esmtp = False
        self.proxy_header: ProxyHeader | None = None  # listen ... proxy_protocol
        self._held = b""  # what came before the PROXY header was whole
        self.starttls_context = starttls
        self.client: TcpEnd | None = None
        self.reader = CommandReader(server.protocol, server.client_buffer)
        self.remote_addr = ""
        self.tls: Any = None
        self.client_certificate: tuple[bytes, int, str] | None = None
        self.starttls = False  # a STARTTLS handshake made this connection's TLS
        self.state = "start"  # for what the next line is (nginx's mail_state)
        self.stage = "auth"  # header, resolve, delay, auth, tls, ask, sleep, login, proxy, closed
        self.action = "in auth state"  # what the error log says it was doing
        self.login = b""
        self.password = b""
        self.method = "plain"
        self.salt = b""
        self.attempt = 0
        self.errors = 0
        self.quit = False
        self.upstream: TcpEnd | None = None
        self.upstream_name = ""
        self._reply = bytearray()  # the mail server's reply line during login
        self.script: LoginScript | None = None  # the login to the mail server
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last = 0.0  # the client's last read, once proxied
        self._starttls_next = False  # the reply sent is STARTTLS's: the handshake follows
        self._left_unread = False  # bytes past a too long command: nginx never reads them

    @property
    def connection(self) -> MailSession:
        """(what the certificate getters read: the session is its own connection)"""
        return self

    # --- the client's end (TcpOwner) ----------------------------------------------------------

    def made(self, end: TcpEnd) -> None:
        self.client = end
        if not self.number and not self.accepted(end):  # (else before its handshake)
            end.abort()
            return
        if self.listen.proxy_protocol and not self.listen.ssl:
            self.stage = "header"
            self.action = "reading PROXY protocol"
            self._arm(self.server.timeout, self._client_timed_out)
            return
        if self.proxy_header is not None:  # (read before the handshake: TlsAfterHeader)
            self._real_ip()
        self._begin()

    def accepted(self, end: TcpEnd) -> bool:
        """The client, numbered and said as it connects (a ``listen ... ssl`` one before
        its handshake, as nginx); False: not served."""
        self.client = end
        self.remote_addr = end.address("peername")[0]
        if not self.host.stream_admit():
            self.stage = "closed"
            return False
        self._opened(end)
        return True

    def handshake_failed(self, why: str) -> None:
        self.action = "SSL handshaking"
        self._log("info", why)
        self._close()

    def _opened(self, end: TcpEnd) -> None:
        self.number = self.host.stream_opened(self)  # (nginx's *N in its log lines)
        port = end.address("peername")[1]
        client = self.remote_addr if self.remote_addr == UNIX else f"{self.remote_addr}:{port}"
        self.host.stream_error("info", f"client {client} connected to {self.listen.written}",
                               self.number)

    def _begin(self) -> None:
        """The session proper, once the PROXY header (if any) is read: the client
        certificate's check, then the greeting (SMTP: the client's name first)."""
        self.action = "in auth state"
        assert self.client is not None
        self.tls = self.client.info("ssl_object")
        if self.tls is not None and not self._certificate_checked():
            return
        if self.smtp:
            self._smtp_start()
        else:
            self._greet()

    def _greet(self) -> None:
        greeting = self.replies["greeting"]
        if not self.imap and self.server.auth_methods & {"apop", "cram-md5"}:
            self.salt = self._new_salt()
            greeting = greeting[:-2] + b" " + self.salt
        self._send(greeting)
        self._arm(self.server.timeout, self._client_timed_out)

    def _new_salt(self) -> bytes:
        return (f"<{random.getrandbits(31)}.{int(time.time())}@{self.server.server_name}>\r\n"
                ).encode("latin-1")

    def received(self, data: bytes) -> None:
        if self.stage == "proxy":
            self._last = time.monotonic()
            if self.upstream is not None:
                self.upstream.write(data)
            return
        if self.stage == "closed":
            return
        if self.stage == "header":
            self._read_header(data)
            return
        self.reader.feed(data)
        if self.stage == "auth":
            self._commands()
        elif self.stage == "delay":
            self._spoke_first()

    def _read_header(self, data: bytes) -> None:
        self._held += data
        try:
            found = read_header(self._held)
        except BrokenHeader as e:
            self._log("error", str(e))
            if self.client is not None:  # (nginx only peeked: its close is a reset)
                self.client.close_unread()
            self._close()
            return
        if found is None:
            return
        self._disarm()
        self.proxy_header, used = found
        rest, self._held = self._held[used:], b""
        self.stage = "auth"
        self._real_ip()
        self._begin()
        if rest and self.stage != "closed":
            self.received(rest)

    def _real_ip(self) -> None:
        """nginx's mail realip module: a trusted peer's PROXY header names the client
        (its address is then Client-IP, XCLIENT's and the log's)."""
        h = self.proxy_header
        if h is not None and h.addr and trusted_peer(self.remote_addr,
                                                     self.server.real_ip_from):
            self.remote_addr = h.addr

    def ended(self) -> bool | None:
        if self.stage == "proxy" and self.upstream is not None:
            self._done()
            return None
        if self.stage not in ("closed",):
            self._close()
        return None

    def lost(self) -> None:
        if self.stage == "proxy":
            self._done()
        else:
            self._close()

    def blocked(self) -> None:
        if self.upstream is not None:
            self.upstream.pause()

    def unblocked(self) -> None:
        if self.upstream is not None:
            self.upstream.resume()

    def header_given(self, header: ProxyHeader) -> None:
        """``listen ... ssl proxy_protocol``: the header, read before the handshake."""
        self.proxy_header = header

    def header_broken(self, end: TcpEnd, why: str) -> None:
        self.client = end
        self.remote_addr = end.address("peername")[0]
        self._opened(end)
        self.action = "reading PROXY protocol"
        self._log("error", why)
        self._close()

    def crashed(self, error: Exception) -> None:
        self._log("alert", f"unexpected error in the mail session: {error!r}")
        self._internal_error()

    # --- the commands before login ------------------------------------------------------------

    def _commands(self) -> None:
        """Each whole command the buffer holds, in order, as nginx answers each before
        it reads the next; until one asks the auth server or ends the session."""
        while self.stage == "auth" and not self.quit:
            rc = self.reader.parse()
            if rc == AGAIN:
                if not self.reader.full:
                    return
                self._log("info", f'client sent too long command "{_text(self.reader.text())}"')
                self.quit = True
                self._left_unread = bool(self.reader.waiting)
                rc = INVALID
            elif rc == INVALID:
                self.errors += 1
                if self.errors >= self.server.max_errors:
                    self._log("info", "client sent too many invalid commands")
                    self.quit = True
            if self.reader.quit:
                self.quit = True
            if self.imap:
                self._imap(rc)
            elif self.smtp:
                self._smtp(rc)
            else:
                self._pop3(rc)
            if self.quit:
                self._close_after_send()
                return
            if not self.reader.unread:
                return

    def _imap(self, rc: str) -> None:
        r = self.reader
        tag = True
        text = b""
        out = b"OK completed\r\n"
        result: Any = None
        if rc == NEXT:
            tag = False
            out = b"+ OK\r\n"
        elif rc != INVALID:
            state = self.state
            if state == "start":
                command = r.command
                if command == b"LOGIN":
                    result = self._imap_login()
                elif command == b"AUTHENTICATE":
                    result, out = self._authenticate(b"+ ")
                    tag = result is not None and result is not True
                    if result is True:
                        result = None
                elif command == b"CAPABILITY":
                    text = self._imap_capability()
                elif command == b"LOGOUT":
                    self.quit = True
                    text = b"* BYE\r\n"
                elif command == b"NOOP":
                    pass
                elif command == b"STARTTLS" and self._can_starttls():
                    self._starttls_next = True
                else:
                    result = _INVALID
            else:
                result, out, tag = self._auth_step(out)
        if result == "auth":
            self._ask()
            return
        if rc == INVALID or result is _INVALID:
            r.state = 0
            self.state = "start"
            out = b"BAD invalid command\r\n"
        line = out
        if tag:
            line = text + (r.tag or b"* ") + out
        self._send(line)
        if rc != NEXT:
            r.settle(keep_argument=True)
            if not r.state:
                r.tag = b""
        self._after_reply()

    def _pop3(self, rc: str) -> None:
        r = self.reader
        out = b"+OK\r\n"
        result: Any = None
        if rc != INVALID:
            state = self.state
            command = r.command
            if state == "start":
                if command == b"USER":
                    result = self._pop3_user()
                elif command == b"CAPA":
                    out = self._pop3_capa(True)
                elif command == b"APOP":
                    result = self._pop3_apop()
                elif command == b"AUTH":
                    if self._starttls_only():
                        result = _INVALID
                    elif not r.args:
                        out = self.server.auth_capability
                        r.state = 0
                    else:
                        result, out = self._authenticate(b"+ ")
                        if result is True:
                            result = None
                elif command == b"QUIT":
                    self.quit = True
                elif command == b"NOOP":
                    pass
                elif command == b"STLS" and self._can_starttls():
                    self._starttls_next = True
                else:
                    result = _INVALID
            elif state == "user":
                if command == b"PASS":
                    if len(r.args) != 1:
                        result = _INVALID
                    else:
                        self.password = r.args[0]
                        result = "auth"
                elif command == b"CAPA":
                    out = self._pop3_capa(False)
                elif command == b"QUIT":
                    self.quit = True
                elif command == b"NOOP":
                    pass
                else:
                    result = _INVALID
            else:
                result, out, _ = self._auth_step(out)
        self._done_with(rc, result, out, b"-ERR invalid command\r\n")

    def _smtp(self, rc: str) -> None:
        r = self.reader
        out = SMTP_OK
        result: Any = None
        if rc != INVALID:
            command = r.command
            if self.state == "start":
                if command in (b"HELO", b"EHLO"):
                    out = self._smtp_helo(command == b"EHLO")
                elif command == b"AUTH":
                    if self._starttls_only():
                        result = _INVALID
                    elif not r.args:
                        out = SMTP_INVALID_ARGUMENT
                        r.state = 0
                    else:
                        result, out = self._authenticate(self.prompt)
                        if result is True:
                            result = None
                elif command == b"QUIT":
                    self.quit = True
                    out = b"221 2.0.0 Bye\r\n"
                elif command == b"MAIL":
                    out = self._smtp_mail()
                elif command == b"RCPT":
                    if not self.mail_from:
                        out = SMTP_BAD_SEQUENCE
                    elif not r.args:
                        out = SMTP_INVALID_ARGUMENT
                    else:
                        self.rcpt_to = r.command_line()
                        self.method = "none"
                        result = "auth"
                elif command == b"RSET":
                    self.mail_from = self.rcpt_to = b""
                elif command == b"NOOP":
                    pass
                elif command == b"STARTTLS" and self._can_starttls():
                    # (RFC 3207: what the client said before STARTTLS is forgotten)
                    self.helo = self.mail_from = self.rcpt_to = b""
                    out = b"220 2.0.0 Start TLS\r\n"
                    self._starttls_next = True
                else:
                    result = _INVALID
            else:
                result, out, _ = self._auth_step(out)
        self._done_with(rc, result, out, b"500 5.5.1 Invalid command\r\n")

    def _done_with(self, rc: str, result: Any, out: bytes, invalid: bytes) -> None:
        """A POP3 or SMTP command handled: the auth server asked, or the reply sent (the
        protocol's "invalid command" for one refused) and the next line awaited."""
        if result == "auth":
            self._ask()
            return
        if rc == INVALID or result is _INVALID:
            self.state = "start"
            self.reader.state = 0
            out = invalid
        self._send(out)
        self.reader.settle(keep_argument=True)
        self._after_reply()

    def _smtp_helo(self, ehlo: bool) -> bytes:
        r = self.reader
        if len(r.args) != 1:
            r.state = 0
            return SMTP_INVALID_ARGUMENT
        self.helo = r.args[0]
        self.mail_from = self.rcpt_to = b""
        if not ehlo:
            return self.server.smtp_helo
        self.esmtp = True
        if self.tls is None:
            if self.server.starttls == "on":
                return self.server.starttls_capability
            if self.server.starttls == "only":
                return self.server.starttls_only_capability
        return self.server.capability

    def _smtp_mail(self) -> bytes:
        """MAIL FROM: taken only with ``smtp_auth none`` (the whole line kept, for the
        auth server and the mail server), else "authentication required"."""
        r = self.reader
        if "none" not in self.server.auth_methods:
            said = _text(r.text()).replace("\r", "_").replace("\n", "_")
            self._log("info", f'client was rejected: "{said}"')
            return b"530 5.7.1 Authentication required\r\n"
        if self.mail_from:
            return SMTP_BAD_SEQUENCE
        if not r.args:
            return SMTP_INVALID_ARGUMENT
        self.mail_from = r.command_line()
        return SMTP_OK

    # --- SMTP before its greeting -------------------------------------------------------------

    def _smtp_start(self) -> None:
        """The client's name first (``resolver``): its address's PTR name, confirmed by
        the name's own addresses; then the greeting."""
        resolver = self.server.resolver
        if resolver is None or self.names is None or self.remote_addr == UNIX:
            # (a unix socket's client has no address to ask about: nginx's TEMPUNAVAIL)
            self.client_name = UNAVAILABLE if resolver is None else TEMPUNAVAIL
            self._smtp_greeting()
            return
        self.stage = "resolve"
        if self.client is not None:
            self.client.pause()
        self._task = asyncio.ensure_future(self._resolve_client(self.names(resolver)))

    async def _resolve_client(self, names: Names) -> None:
        timeout = self.server.resolver_timeout
        self.action = "in resolving client address"
        try:
            name = await names.reverse(self.remote_addr, timeout)
        except ResolveError as e:
            self._log("error", f"{self.remote_addr} could not be resolved ({e.reason})")
            self.client_name = UNAVAILABLE if e.reason.startswith("3:") else TEMPUNAVAIL
        else:
            self.action = "in resolving client hostname"
            try:
                addresses = await names.resolve(name, timeout)
            except ResolveError as e:
                self._log("error", f'"{name}" could not be resolved ({e.reason})')
                self.client_name = UNAVAILABLE if e.reason.startswith("3:") else TEMPUNAVAIL
            else:
                self.client_name = name if self.remote_addr in addresses else UNAVAILABLE
        if self.stage == "closed":
            return
        self.stage = "auth"
        self.action = "in auth state"
        if self.client is not None:
            self.client.resume()
        self._smtp_greeting()

    def _smtp_greeting(self) -> None:
        """With ``smtp_greeting_delay``, a client that speaks before the greeting is
        refused (a spammer's pipelining); else the greeting at once."""
        if self.server.greeting_delay:
            self.stage = "delay"
            self._arm(self.server.greeting_delay, self._delay_over)
            return
        self._send(self.server.smtp_greeting)
        self._arm(self.server.timeout, self._client_timed_out)

    def _delay_over(self) -> None:
        self._timer = None
        self.stage = "auth"
        self._send(self.server.smtp_greeting)
        self._arm(self.server.timeout, self._client_timed_out)

    def _spoke_first(self) -> None:
        self.action = "in delay pipelining state"
        said = _text(self.reader.text()).replace("\r", "_").replace("\n", "_")
        self._log("info", f'client was rejected before greeting: "{said}"')
        self._send(b"503 5.5.0 Improper use of SMTP command pipelining\r\n")
        self._close_after_send()

    def _after_reply(self) -> None:
        if self._starttls_next:
            # nothing more is read in clear: what the client sent after STARTTLS, read
            # or not, is never a command (the STARTTLS command injection)
            self._starttls_next = False
            if self.client is not None:
                self.client.pause()
            self.reader.discard()
            self.stage = "tls"
            self._task = asyncio.ensure_future(self._handshake())

    # --- what the commands do -----------------------------------------------------------------

    def _starttls_only(self) -> bool:
        return self.tls is None and self.server.starttls == "only"

    def _can_starttls(self) -> bool:
        return self.tls is None and self.server.starttls != "off" \
            and self.starttls_context is not None

    def _imap_login(self) -> Any:
        args = self.reader.args
        if self._starttls_only() or len(args) != 2 or not args[0]:
            return _INVALID
        self.login, self.password = args
        return "auth"

    def _imap_capability(self) -> bytes:
        if self.tls is None:
            if self.server.starttls == "on":
                return self.server.starttls_capability
            if self.server.starttls == "only":
                return self.server.starttls_only_capability
        return self.server.capability

    def _pop3_capa(self, offer_stls: bool) -> bytes:
        if offer_stls and self.tls is None:
            if self.server.starttls == "on":
                return self.server.starttls_capability
            if self.server.starttls == "only":
                return self.server.starttls_only_capability
        return self.server.capability

    def _pop3_user(self) -> Any:
        args = self.reader.args
        if self._starttls_only() or len(args) != 1:
            return _INVALID
        self.login = args[0]
        self.state = "user"
        return None

    def _pop3_apop(self) -> Any:
        args = self.reader.args
        if self._starttls_only() or len(args) != 2 or "apop" not in self.server.auth_methods:
            return _INVALID
        self.login, self.password = args
        self.method = "apop"
        return "auth"

    def _authenticate(self, prompt: bytes) -> tuple[Any, bytes]:
        """AUTHENTICATE (IMAP) or AUTH (POP3) with a mechanism (nginx's
        ngx_mail_auth_parse): (None, the continuation to send) when a line is awaited,
        ("auth", b"") when the login is whole, (_INVALID, b"") when refused."""
        args = self.reader.args
        if self._starttls_only() or not args:
            return _INVALID, b""
        mech = args[0].upper()
        methods = self.server.auth_methods
        if mech == b"LOGIN" and len(args) in (1, 2):
            if len(args) == 1:
                self.state = "login_username"
                return True, prompt + USERNAME + b"\r\n"
            self.state = "login_password"
            if not self._decode_login(args[1]):
                return _INVALID, b""
            return True, prompt + PASSWORD + b"\r\n"
        if mech == b"PLAIN" and len(args) in (1, 2):
            if len(args) == 1:
                self.state = "plain"
                return True, prompt + b"\r\n"
            return ("auth" if self._plain(args[1]) else _INVALID), b""
        if mech == b"CRAM-MD5" and len(args) == 1:
            if "cram-md5" not in methods:
                return _INVALID, b""
            if not self.salt:
                self.salt = self._new_salt()
            self.state = "cram_md5"
            return True, prompt + base64.b64encode(self.salt[:-2]) + b"\r\n"
        if mech == b"EXTERNAL" and len(args) in (1, 2):
            if "external" not in methods:
                return _INVALID, b""
            if len(args) == 1:
                self.state = "external"
                return True, prompt + USERNAME + b"\r\n"
            return ("auth" if self._external(args[1]) else _INVALID), b""
        return _INVALID, b""

    def _auth_step(self, out: bytes) -> tuple[Any, bytes, bool]:
        """The line an AUTHENTICATE/AUTH mechanism asked for: (result, reply, tagged)."""
        arg = self.reader.args[0] if self.reader.args else b""
        state = self.state
        if state == "login_username":
            self.state = "login_password"
            if not self._decode_login(arg):
                return _INVALID, out, False  # (nginx's: this BAD goes untagged)
            return None, self.prompt + PASSWORD + b"\r\n", False
        if state == "login_password":
            password = self._decoded(arg, "LOGIN")
            if password is None:
                return _INVALID, out, True
            self.password = password
            self.method = "login"
            return "auth", out, True
        if state == "plain":
            return ("auth" if self._plain(arg) else _INVALID), out, True
        if state == "cram_md5":
            return ("auth" if self._cram_md5(arg) else _INVALID), out, True
        return ("auth" if self._external(arg) else _INVALID), out, True

    def _decoded(self, arg: bytes, mechanism: str) -> bytes | None:
        """A mechanism's base64 argument decoded (nginx's ngx_decode_base64: the
        standard alphabet, padding optional); None, logged as nginx logs it, when it is
        not base64."""
        try:
            return base64.b64decode(arg + b"=" * (-len(arg) % 4), validate=True)
        except (binascii.Error, ValueError):
            self._log("info", f"client sent invalid base64 encoding in AUTH {mechanism} "
                              "command")
            return None

    def _decode_login(self, arg: bytes) -> bool:
        login = self._decoded(arg, "LOGIN")
        if login is None:
            return False
        self.login = login
        return True

    def _plain(self, arg: bytes) -> bool:
        plain = self._decoded(arg, "PLAIN")
        if plain is None:
            return False
        first = plain.find(b"\0")
        if first < 0 or first == len(plain) - 1:
            self._log("info", "client sent invalid login in AUTH PLAIN command")
            return False
        second = plain.find(b"\0", first + 1)
        if second < 0:
            self._log("info", "client sent invalid password in AUTH PLAIN command")
            return False
        self.login = plain[first + 1:second]
        self.password = plain[second + 1:]
        self.method = "plain"
        return True

    def _cram_md5(self, arg: bytes) -> bool:
        given = self._decoded(arg, "CRAM-MD5")
        if given is None:
            return False
        # (as nginx's: what was read stays the session's even when refused, and
        # without a space the password is the one before)
        user, space, digest = given.partition(b" ")
        self.login = user
        if space:
            self.password = digest
        if len(self.password) != 32:
            self._log("info", "client sent invalid CRAM-MD5 hash in AUTH CRAM-MD5 command")
            return False
        self.method = "cram-md5"
        return True

    def _external(self, arg: bytes) -> bool:
        login = self._decoded(arg, "EXTERNAL")
        if login is None:
            return False
        self.login = login  # (the password stays what it was, as nginx's)
        self.method = "external"
        return True

    # --- STARTTLS -------------------------------------------------------------------------------

    async def _handshake(self) -> None:
        assert self.client is not None and self.starttls_context is not None
        self.starttls = True
        self.action = "in starttls state"
        try:
            await self.client.start_tls(self.starttls_context, self.server.timeout)
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError):
            self._close()
            return
        self.tls = self.client.info("ssl_object")
        if not self._certificate_checked():
            return
        self.state = "start"
        self.reader.state = 0
        self.stage = "auth"
        self.action = "in auth state"
        self._arm(self.server.timeout, self._client_timed_out)
        if self.reader.unread:
            self._commands()

    def _certificate_checked(self) -> bool:
        """``ssl_verify_client``: a certificate that failed verification (but for what
        ``optional_no_ca`` lets through), or none when one is required, ends the session
        with the protocol's words for it."""
        mode = self.server.settings.ssl_verify_client
        if mode == "off":
            return True
        der = self.tls.getpeercert(binary_form=True)
        if der is not None:
            code, words = openssl.verify_result(self.tls)
            self.client_certificate = (der, code, words)
            if code and not (mode == "optional_no_ca" and code in openssl.NO_CA_ERRORS):
                self.action = "SSL handshaking"
                self._log("info", f"client SSL certificate verify error: ({code}:{words})")
                self._send(self.replies["cert_error"])
                self._close_after_send()
                return False
        elif mode == "on":
            self.action = "SSL handshaking"
            self._log("info", "client sent no required SSL certificate")
            self._send(self.replies["no_cert"])
            self._close_after_send()
            return False
        return True

    # --- the auth server -------------------------------------------------------------------------

    def _ask(self) -> None:
        """The login is whole: ask the auth server (nginx's ngx_mail_auth)."""
        self.reader.args = []
        if self.reader.pos == len(self.reader.buf):
            self.reader.settle(keep_argument=False)
        self.reader.state = 0
        self._disarm()
        self.attempt += 1
        self.stage = "ask"
        if self.client is not None:
            self.client.pause()
        self._task = asyncio.ensure_future(self._ask_auth_server())

    def _login(self) -> Login:
        tls: dict[str, str] = {}
        if self.tls is not None:
            tls["Protocol"] = self.tls.version() or ""
            cipher = self.tls.cipher()
            tls["Cipher"] = cipher[0] if cipher else ""
            if self.server.settings.ssl_verify_client != "off":
                tls["Verify"] = CERTIFICATE["ssl_client_verify"](self)
                tls["Subject"] = CERTIFICATE["ssl_client_s_dn"](self)
                tls["Issuer"] = CERTIFICATE["ssl_client_i_dn"](self)
                tls["Serial"] = CERTIFICATE["ssl_client_serial"](self)
                tls["Fingerprint"] = CERTIFICATE["ssl_client_fingerprint"](self)
                if self.server.auth_http_pass_client_cert:
                    tls["Cert"] = escape(CERTIFICATE["ssl_client_raw_cert"](self).encode()
                                         ).decode("latin-1")
        h = self.proxy_header
        proxy = (h.addr, h.port, h.server_addr, h.server_port) if h is not None and h.addr \
            else None
        return Login(self.method, self.login, self.password, self.salt, self.attempt,
                     self.remote_addr, tls, self.client_name, self.helo, self.mail_from,
                     self.rcpt_to, proxy)

    async def _ask_auth_server(self) -> None:
        a = self.server.auth_http
        self.action = "in http auth state"
        asker = AnswerReader()
        try:
            end = await asyncio.wait_for(
                connect(asker, a.host, a.port, True, unix=a.unix), self.server.auth_http_timeout)
        except TimeoutError:
            self._log("error", f"auth http server {a.name} timed out "
                               "(110: Connection timed out)")
            self._internal_error()
            return
        except OSError as e:
            if a.unix is not None:  # (a socket's connect() fails at once, named)
                why, level = unix_connect_failed(a.name, e, during="")
                self._log(level, why)
            else:  # (nginx sees a refusal when it reads the answer)
                self._log("error", f"recv() failed ({_errno(e)})")
            self._internal_error()
            return
        try:
            end.write(request(self.server, self._login()))
            answer = await asyncio.wait_for(asker.answer, self.server.auth_http_timeout)
        except TimeoutError:
            self._log("error", f"auth http server {a.name} timed out "
                               "(110: Connection timed out)")
            end.close()
            self._internal_error()
            return
        except BadAnswer as e:
            self._log("error", f"auth http server {a.name} {e.why}")
            end.close()
            self._internal_error()
            return
        except ConnectionError:
            end.close()
            self._internal_error()
            return
        end.close()
        if self.stage == "closed":
            return
        await self._answered(answer)

    async def _answered(self, answer: Answer) -> None:
        a = self.server.auth_http
        if answer.user is not None:
            self.login = answer.user
        if answer.password is not None:
            self.password = answer.password
        if answer.error is not None:
            self._log("info", f'client login failed: "{_text(answer.error)}"')
            if self.imap:
                out = (self.reader.tag or b"") + b"NO " + answer.error + b"\r\n"
            elif self.smtp:
                out = (answer.error_code or b"535 5.7.0") + b" " + answer.error + b"\r\n"
            else:
                out = b"-ERR " + answer.error + b"\r\n"
            if not answer.wait:
                self._send(out)
                self._close_after_send()
                return
            self.stage = "sleep"
            await asyncio.sleep(answer.wait)
            if self.stage == "closed":
                return
            self._send(out)
            self.stage = "auth"
            self.state = "start"
            self.method = "plain"
            self.action = "in auth state"
            self._arm(self.server.timeout, self._client_timed_out)
            if self.client is not None:
                self.client.resume()
            if self.reader.unread:
                self._commands()
            return
        if answer.again:
            if answer.wait:
                self.stage = "sleep"
                await asyncio.sleep(answer.wait)
                if self.stage == "closed":
                    return
            self._task = asyncio.ensure_future(self._ask_auth_server())
            return
        if not answer.server or not answer.port:
            self._log("error", f"auth http server {a.name} did not send server or port")
            self._internal_error()
            return
        # (a digest is not a password: with a salt sent, the auth server must give it)
        if answer.password is None and self.method not in ("plain", "login") and self.salt \
                and not self.smtp:
            self._log("error", f"auth http server {a.name} did not send password")
            self._internal_error()
            return
        try:
            address = str(ipaddress.ip_address(answer.server.decode("latin-1")))
        except ValueError:
            self._log("error", f"auth http server {a.name} sent invalid server address:"
                               f'"{_text(answer.server)}"')
            self._internal_error()
            return
        port = decimal(answer.port, 65535) or 0
        if not 0 < port < 65536:
            self._log("error", f"auth http server {a.name} sent invalid server port:"
                               f'"{_text(answer.port)}"')
            self._internal_error()
            return
        self.upstream_name = f"{_text(answer.server)}:{_text(answer.port)}"
        await self._log_in(address, port)

    # --- the mail server ------------------------------------------------------------------------

    async def _log_in(self, address: str, port: int) -> None:
        self.stage = "login"
        self.script = LoginScript(self.server, Credentials(
            self.reader.tag, self.login, self.password, self.method, self.esmtp, self.helo,
            self.mail_from, self.rcpt_to, self.remote_addr, self.client_name))
        self.action = "connecting to upstream"
        side = _UpstreamSide(self)
        try:
            end = await asyncio.wait_for(connect(side, address, port, True),
                                         self.server.timeout)
        except TimeoutError:
            self.action = "reading response from upstream"  # (nginx's read timer)
            self._log("info", "upstream timed out (110: Connection timed out)")
            self._internal_error()
            return
        except OSError as e:  # (nginx sees the refusal when it reads the greeting)
            self.action = "reading response from upstream"
            self._log("error", f"recv() failed ({_errno(e)})")
            self._internal_error()
            return
        if self.stage == "closed":
            end.close()

    def upstream_made(self, end: TcpEnd) -> None:
        """Connected to the mail server (its greeting may follow at once)."""
        self.upstream = end
        if self.server.send_proxy_protocol and self.remote_addr == UNIX:
            end.write(b"PROXY UNKNOWN\r\n")  # (nginx's for a client of no address family)
        elif self.server.send_proxy_protocol:
            local = self.client.address("sockname") if self.client is not None else ("", 0)
            remote_port = self.client.address("peername")[1] if self.client else 0
            v6 = ":" in self.remote_addr
            end.write(f"PROXY {'TCP6' if v6 else 'TCP4'} {self.remote_addr} {local[0]} "
                      f"{remote_port} {local[1]}\r\n".encode("ascii"))
        self.action = "reading response from upstream"
        self._arm(self.server.timeout, self._upstream_timed_out)

    def from_upstream(self, data: bytes) -> None:
        if self.stage == "proxy":
            if self.client is not None:
                self.client.write(data)
            return
        if self.stage != "login":
            return
        self._reply += data
        reply = self._reply
        script = self.script
        assert script is not None and self.upstream is not None
        if len(reply) < 4:
            return
        if not reply.endswith(b"\r\n"):
            if len(reply) >= self.server.proxy_buffer:
                self._log("error", "upstream sent too long response line: "
                                   f'"{_text(bytes(reply[:self.server.proxy_buffer - 1]))}"')
                self._upstream_error(b"")
            return
        if not script.whole(reply):
            return
        line = bytes(reply)
        self._reply = bytearray()
        good, shown = script.expected(line)
        if not good:
            said = _text(line[shown:-2])
            if not self.server.pass_error_message:
                self._log("error", f'upstream sent invalid response: "{said}"')
                self._upstream_error(b"")
            else:
                self._log("info", f'upstream sent invalid response: "{said}"')
                self._upstream_error(line)
            return
        self._arm(self.server.timeout, self._upstream_timed_out)
        try:
            out = script.next()
        except NoPassword as e:
            self.action = "sending AUTH to upstream"
            self._log("error", str(e))
            self._internal_error()
            return
        if out is None:
            self._proxy(script.welcome(line))
            return
        self.upstream.write(out)

    def _proxy(self, line: bytes) -> None:
        """Logged in: the mail server's answer to the client, what the client sent past
        its login to the mail server, and from now on every byte both ways."""
        assert self.upstream is not None and self.client is not None
        self.stage = "proxy"
        self.action = ""
        self._log("info", "client logged in")
        self.client.write(line)
        rest = self.reader.rest()
        if rest:
            self.upstream.write(rest)
        self.client.resume()
        self._last = time.monotonic()
        self._arm(self.server.proxy_timeout, self._idle)

    def _idle(self) -> None:
        self._timer = None
        left = self.server.proxy_timeout - (time.monotonic() - self._last)
        if left > 0.001:
            self._arm(left, self._idle)
            return
        self.action = "proxying"
        self._log("info", "client timed out (110: Connection timed out)")
        self._close()

    def upstream_ended(self) -> None:
        if self.stage == "proxy":
            self._done()
        elif self.stage == "login":
            self._upstream_error(b"")

    def _done(self) -> None:
        if self.stage == "closed":
            return
        self.action = ""
        self._log("info", "proxied session done")
        self._close()

    def _upstream_error(self, reply: bytes) -> None:
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None
        if not reply:
            self._internal_error()
            return
        self._send(reply)
        self._close_after_send()

    def _upstream_timed_out(self) -> None:
        self._timer = None
        self._log("info", "upstream timed out (110: Connection timed out)")
        self._upstream_error(b"")

    # --- the end ----------------------------------------------------------------------------

    def _client_timed_out(self) -> None:
        self._timer = None
        self._log("info", "client timed out (110: Connection timed out)")
        self._close()

    def _internal_error(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None
        self._send(self.replies["internal"])
        self._close_after_send()

    def _send(self, data: bytes) -> None:
        if self.client is not None:
            self.client.write(data)

    def _close_after_send(self) -> None:
        """What was sent goes, then the connection closes; bytes the client sent that
        nginx would have left unread in its socket (past a command too long for the
        buffer) make the close a reset, as there."""
        if self._left_unread and self.client is not None:
            self.client.close_unread()
        self._close()

    def _close(self) -> None:
        if self.stage == "closed":
            return
        self.stage = "closed"
        self._disarm()
        if self._task is not None and not self._task.done() \
                and self._task is not asyncio.current_task():
            self._task.cancel()
        if self.upstream is not None:
            self.upstream.close()
        if self.client is not None:
            self.client.close()  # (what was written still goes out)
        self.host.stream_closed(self)

    def abort(self) -> None:
        """The worker stops at once: both connections reset."""
        if self.upstream is not None:
            self.upstream.abort()
        if self.client is not None:
            self.client.abort()
        self._close()

    def _arm(self, seconds: float, then: Callable[[], None]) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(seconds, then)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _log(self, level: str, message: str) -> None:
        """nginx's mail log context: what it was doing, who, where, as whom, to where."""
        line = message
        if self.action:
            line += f" while {self.action}"
        line += f", client: {self.remote_addr}"
        line += f"{' using starttls' if self.starttls else ''}, server: {self.listen.written}"
        if self.login:
            line += f', login: "{_text(self.login)}"'
            if self.upstream_name and self.stage in ("login", "proxy"):
                line += f", upstream: {self.upstream_name}"
        self.host.stream_error(level, line, self.number)


class _UpstreamSide:
    """The mail server's connection, as the session sees it."""

    def __init__(self, session: MailSession) -> None:
        self.session = session

    def made(self, end: TcpEnd) -> None:
        self.session.upstream_made(end)

    def received(self, data: bytes) -> None:
        self.session.from_upstream(data)

    def ended(self) -> bool | None:
        self.session.upstream_ended()
        return None

    def lost(self) -> None:
        self.session.upstream_ended()

    def blocked(self) -> None:
        if self.session.client is not None:
            self.session.client.pause()

    def unblocked(self) -> None:
        if self.session.client is not None and self.session.stage == "proxy":
            self.session.client.resume()

    def header_given(self, header: Any) -> None:
        pass

    def header_broken(self, end: TcpEnd, why: str) -> None:
        pass

    def accepted(self, end: TcpEnd) -> bool:
        raise AssertionError("an upstream connection is not accepted")

    def handshake_failed(self, why: str) -> None:
        raise AssertionError("an upstream connection's handshake is the connector's")

    def crashed(self, error: Exception) -> None:
        self.session.crashed(error)


def _text(raw: bytes) -> str:
    return raw.decode("latin-1")


def _errno(e: OSError) -> str:
    return f"{e.errno}: {e.strerror}" if e.errno else str(e)


class Mails:
    """The mail block's servers, by listening address, and the names of their
    resolvers (one cache per ``resolver`` configuration)."""

    def __init__(self, mail: Mail, host: MailHost) -> None:
        self.mail = mail
        self.host = host
        self.by_address = {x.address: s for s in mail.servers for x in s.listens}
        self._names: dict[Resolver, Names] = {}

    def names(self, config: Resolver) -> Names:
        found = self._names.get(config)
        if found is None:
            found = self._names[config] = Names(config)
        return found

    def listens(self) -> list[Listen]:
        return [x for s in self.mail.servers for x in s.listens]

    def server_of(self, listen: Listen) -> MailServer:
        return self.by_address[listen.address]

    def accept(self, listen: Listen, starttls: ssl.SSLContext | None) -> TcpEnd:
        return TcpEnd(MailSession(self.host, self.server_of(listen), listen, starttls,
                                  self.names))


__all__ = ["MailHost", "MailSession", "Mails"]
