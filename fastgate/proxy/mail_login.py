"""fastgate's login to the mail server the auth server named (nginx's
ngx_mail_proxy_module: its pop3, imap and smtp handlers and its reply check): which
reply is expected in each state, and what is sent after it — a script over no socket,
``proxy.mail`` carries its lines. IMAP logs in with LOGIN and literals, POP3 with USER
and PASS, SMTP with EHLO (HELO), XCLIENT, the client's own HELO, then AUTH PLAIN
(``proxy_smtp_auth``) or the client's MAIL FROM and RCPT TO."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from fastgate.config.addresses import UNIX
from fastgate.config.model import MailServer
from fastgate.errors import FastgateError

SMTP_AUTH_OK = b"235 2.0.0 OK\r\n"  # (what the client gets once the mail server took it)


class NoPassword(FastgateError):
    """``proxy_smtp_auth on`` and no password to give (nginx's "no password available")."""


@dataclass(frozen=True)
class Credentials:
    """What the login says, the client's and the auth server's."""

    tag: bytes  # IMAP: the client's tag, with its space
    login: bytes
    password: bytes
    method: str  # "none": SMTP without a login (MAIL FROM and RCPT TO go instead)
    esmtp: bool  # SMTP: the client said EHLO
    helo: bytes
    mail_from: bytes
    rcpt_to: bytes
    client_addr: str
    client_name: str


def _code(*first: bytes) -> Callable[[bytes], bool]:
    return lambda line: line[:3] in first


# what the mail server must answer in each state of an SMTP login (nginx's
# ngx_mail_proxy_read_response); after RCPT TO, whatever it says goes to the client
_SMTP_EXPECTED: dict[str, Callable[[bytes], bool]] = {
    "start": _code(b"220"),
    **{s: _code(b"250") for s in ("helo", "helo_xclient", "helo_from", "helo_auth", "from")},
    **{s: _code(b"220", b"250") for s in ("xclient", "xclient_from", "xclient_helo",
                                          "xclient_auth")},
    "auth_plain": _code(b"235"),
    "to": lambda line: True,
}


class LoginScript:
    def __init__(self, server: MailServer, who: Credentials) -> None:
        self.server = server
        self.who = who
        self.protocol = server.protocol
        self.state = "start"

    def whole(self, reply: bytes | bytearray) -> bool:
        """A reply ending in CRLF is whole — for SMTP, once its last line has come (a
        reply of several lines: "250-..." up to "250 ...")."""
        if self.protocol != "smtp" or reply[3:4] != b"-":
            return True
        m = len(reply) - 7
        while m > 0 and reply[m:m + 2] != b"\r\n":
            m -= 1
        return not (m <= 0 or reply[m + 5:m + 6] == b"-")

    def expected(self, line: bytes) -> tuple[bool, int]:
        """Whether the reply is the one expected now, and where the error log's quote
        of it starts (past the tag it matched, as nginx's)."""
        state = self.state
        if self.protocol == "smtp":
            return _SMTP_EXPECTED[state](line), 0
        if self.protocol == "pop3":
            return line.startswith(b"+OK"), 0
        if state == "start":
            return line.startswith(b"* OK"), 0
        if state in ("login", "user"):
            return line.startswith(b"+"), 0
        tag = self.who.tag
        if not line.startswith(tag):
            return False, 0
        return line[len(tag):len(tag) + 2] == b"OK", len(tag)

    def next(self) -> bytes | None:
        """What to send after the reply just taken; None once logged in."""
        if self.protocol == "imap":
            return self._imap()
        if self.protocol == "pop3":
            return self._pop3()
        return self._smtp()

    def welcome(self, line: bytes) -> bytes:
        """What the client gets once logged in: the mail server's last reply (SMTP
        with a login: nginx's own 235)."""
        if self.protocol == "smtp" and self.who.method != "none":
            return SMTP_AUTH_OK
        return line

    def _imap(self) -> bytes | None:
        w = self.who
        if self.state == "start":
            self.state = "login"
            return w.tag + b"LOGIN {%d}\r\n" % len(w.login)
        if self.state == "login":
            self.state = "user"
            return w.login + b" {%d}\r\n" % len(w.password)
        if self.state == "user":
            self.state = "passwd"
            return w.password + b"\r\n"
        return None

    def _pop3(self) -> bytes | None:
        if self.state == "start":
            self.state = "user"
            return b"USER " + self.who.login + b"\r\n"
        if self.state == "user":
            self.state = "passwd"
            return b"PASS " + self.who.password + b"\r\n"
        return None

    def _smtp(self) -> bytes | None:
        s, w = self.server, self.who
        after = "from" if w.method == "none" else "auth" if s.smtp_auth_upstream else ""
        state = self.state
        if state == "start":
            verb = b"EHLO " if w.esmtp or s.xclient else b"HELO "
            self.state = "helo_xclient" if s.xclient else ("helo_" + after if after else "helo")
            return verb + s.server_name.encode("latin-1") + b"\r\n"
        if state == "helo_xclient":
            v6 = ":" in w.client_addr and w.client_addr != UNIX  # (nginx's: AF_INET6)
            line = b"XCLIENT ADDR=" + (b"IPV6:" if v6 else b"") + w.client_addr.encode()
            if w.login and not s.smtp_auth_upstream:
                line += b" LOGIN=" + w.login
            self.state = ("xclient_helo" if w.helo else
                          "xclient_" + after if after else "xclient")
            return line + b" NAME=" + w.client_name.encode("latin-1") + b"\r\n"
        if state == "xclient_helo":
            self.state = "helo_" + after if after else "helo"
            return (b"EHLO " if w.esmtp else b"HELO ") + w.helo + b"\r\n"
        if state in ("helo_auth", "xclient_auth"):
            if not w.password:
                raise NoPassword("no password available")
            self.state = "auth_plain"
            return b"AUTH PLAIN " + base64.b64encode(b"\0" + w.login + b"\0" + w.password) \
                + b"\r\n"
        if state in ("helo_from", "xclient_from"):
            self.state = "from"
            return w.mail_from + b"\r\n"
        if state == "from":
            self.state = "to"
            return w.rcpt_to + b"\r\n"
        return None  # (helo, xclient, auth_plain, to: logged in)


__all__ = ["Credentials", "LoginScript", "NoPassword", "SMTP_AUTH_OK"]
