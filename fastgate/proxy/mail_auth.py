"""The ``auth_http`` exchange of a mail login (nginx's ngx_mail_auth_http_module): the
request fastgate sends, byte for byte as nginx's, and the reading of the answer's
headers with nginx's parser, so that an auth server written for nginx gets the same
questions and is understood the same way."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from fastgate.config.model import MailServer
from fastgate.decimals import decimal
from fastgate.errors import FastgateError
from fastgate.http.tcp import TcpEnd

# Auth-Method by how the client logged in (nginx's table: LOGIN is sent as "plain")
METHODS = {"plain": "plain", "login": "plain", "apop": "apop", "cram-md5": "cram-md5",
           "external": "external", "none": "none"}
RESPONSE_LIMIT = 1024  # nginx reads the answer into one buffer of this size


class BadAnswer(FastgateError):
    """The auth server's answer cannot be read: ``why`` is nginx's words for it."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass
class Login:
    """What the client gave, and where it came from: what the auth server is asked."""

    method: str  # plain, login, apop, cram-md5, external, none (SMTP without a login)
    user: bytes
    password: bytes
    salt: bytes  # with its CRLF, or empty
    attempt: int
    client: str
    tls: dict[str, str] = field(default_factory=dict)  # Auth-SSL-* values, when over TLS
    host: str = ""  # SMTP: the client's name, or [UNAVAILABLE] / [TEMPUNAVAIL]
    helo: bytes = b""  # SMTP: what HELO/EHLO, MAIL FROM and RCPT TO said
    mail_from: bytes = b""
    rcpt_to: bytes = b""
    # the PROXY header's (listen ... proxy_protocol): source address and port, then the
    # server's
    proxy: tuple[str, int, str, int] | None = None


def escape(text: bytes) -> bytes:
    """nginx's NGX_ESCAPE_MAIL_AUTH: control bytes, space and % as %XX."""
    out = bytearray()
    for b in text:
        if b <= 0x20 or b == 0x25:
            out += b"%%%02X" % b
        else:
            out.append(b)
    return bytes(out)


def request(server: MailServer, login: Login) -> bytes:
    """The GET nginx sends the auth server (ngx_mail_auth_http_create_request)."""
    a = server.auth_http
    lines = [
        b"GET " + a.uri.encode("latin-1") + b" HTTP/1.0\r\n",
        b"Host: " + a.host_header.encode("latin-1") + b"\r\n",
        b"Auth-Method: " + METHODS[login.method].encode() + b"\r\n",
        b"Auth-User: " + escape(login.user) + b"\r\n",
        b"Auth-Pass: " + escape(login.password) + b"\r\n",
    ]
    if login.method not in ("plain", "login") and login.salt:
        lines.append(b"Auth-Salt: " + login.salt)  # (the salt ends with its CRLF)
    lines += [
        b"Auth-Protocol: " + server.protocol.encode() + b"\r\n",
        b"Auth-Login-Attempt: %d\r\n" % login.attempt,
        b"Client-IP: " + login.client.encode("latin-1") + b"\r\n",
    ]
    if login.host:
        lines.append(b"Client-Host: " + login.host.encode("latin-1") + b"\r\n")
    if login.proxy is not None:
        addr, port, server_addr, server_port = login.proxy
        lines.append(f"Proxy-Protocol-Addr: {addr}\r\nProxy-Protocol-Port: {port}\r\n"
                     f"Proxy-Protocol-Server-Addr: {server_addr}\r\n"
                     f"Proxy-Protocol-Server-Port: {server_port}\r\n".encode("latin-1"))
    if login.method == "none":  # (these cannot hold a CR or LF: not escaped, as nginx)
        lines += [b"Auth-SMTP-Helo: " + login.helo + b"\r\n",
                  b"Auth-SMTP-From: " + login.mail_from + b"\r\n",
                  b"Auth-SMTP-To: " + login.rcpt_to + b"\r\n"]
    if login.tls:
        lines.append(b"Auth-SSL: on\r\n")
        for name in ("Protocol", "Cipher", "Verify", "Subject", "Issuer", "Serial",
                     "Fingerprint", "Cert"):
            value = login.tls.get(name, "")
            if value:
                lines.append(f"Auth-SSL-{name}: {value}\r\n".encode("latin-1"))
    lines.append(server.auth_http_headers)
    lines.append(b"\r\n")
    return b"".join(lines)


@dataclass
class Answer:
    """What nginx keeps of the auth server's headers."""

    error: bytes | None = None  # the last Auth-Status that is neither OK nor WAIT
    again: bool = False  # Auth-Status: WAIT (ask again after Auth-Wait)
    server: bytes | None = None
    port: bytes | None = None
    user: bytes | None = None
    password: bytes | None = None
    wait: int = 0  # Auth-Wait, in seconds
    error_code: bytes | None = None


CR, LF, SP = 13, 10, 32
(_START, _NAME, _SPACE_BEFORE_VALUE, _VALUE, _SPACE_AFTER_VALUE, _ALMOST_DONE,
 _HEADER_ALMOST_DONE) = range(7)


def read_answer(data: bytes) -> Answer | None:
    """The answer, once its headers are whole (None before; BadAnswer when they cannot
    be read): nginx's ngx_mail_auth_http_ignore_status_line, then its
    ngx_mail_auth_http_parse_header_line over each line."""
    pos = _status_line(data)
    if pos is None:
        return None
    answer = Answer()
    while True:
        found = _header_line(data, pos)
        if found is None:
            return None
        name, value, pos = found
        if name is None:
            return answer
        _take(answer, name.lower(), value)


def _status_line(data: bytes) -> int | None:
    """Where the headers begin: after an "HTTP/..." line, or at the start when the
    answer has none (nginx then reads its first line as a header)."""
    for i, want in enumerate(b"HTTP/"):
        if i == len(data):
            return None
        if data[i] != want:
            return 0
    cr = False
    for p in range(5, len(data)):
        ch = data[p]
        if cr:
            if ch != LF:
                raise BadAnswer("sent invalid response")
            return p + 1
        if ch == CR:
            cr = True
        elif ch == LF:
            return p + 1
    return None


def _header_line(data: bytes, p: int) -> tuple[bytes | None, bytes, int] | None:
    """One header line from ``p``: (name, value, next), (None, b"", next) at the blank
    line that ends them, None when the line is not whole yet."""
    state = _START
    name_start = name_end = start = end = p
    while p < len(data):
        ch = data[p]
        if state == _START:
            if ch == CR:
                state = _HEADER_ALMOST_DONE
            elif ch == LF:
                return None, b"", p + 1
            else:
                c = ch | 0x20
                if not (97 <= c <= 122 or 48 <= ch <= 57):
                    raise BadAnswer("sent invalid header in response")
                name_start = p
                state = _NAME
        elif state == _NAME:
            c = ch | 0x20
            if 97 <= c <= 122 or ch == 0x2D or 48 <= ch <= 57:
                pass
            elif ch == 0x3A:
                name_end = p
                state = _SPACE_BEFORE_VALUE
            elif ch in (CR, LF):
                name_end = start = end = p
                if ch == LF:
                    return data[name_start:name_end], b"", p + 1
                state = _ALMOST_DONE
            else:
                raise BadAnswer("sent invalid header in response")
        elif state == _SPACE_BEFORE_VALUE:
            if ch == SP:
                pass
            elif ch in (CR, LF):
                start = end = p
                if ch == LF:
                    return data[name_start:name_end], b"", p + 1
                state = _ALMOST_DONE
            else:
                start = p
                state = _VALUE
        elif state == _VALUE:
            if ch in (SP, CR, LF):
                end = p
                if ch == LF:
                    return data[name_start:name_end], data[start:end], p + 1
                state = _SPACE_AFTER_VALUE if ch == SP else _ALMOST_DONE
        elif state == _SPACE_AFTER_VALUE:
            if ch == CR:
                state = _ALMOST_DONE
            elif ch == LF:
                return data[name_start:name_end], data[start:end], p + 1
            elif ch != SP:
                state = _VALUE
        elif state == _ALMOST_DONE:
            if ch != LF:
                raise BadAnswer("sent invalid header in response")
            return data[name_start:name_end], data[start:end], p + 1
        else:  # _HEADER_ALMOST_DONE
            if ch != LF:
                raise BadAnswer("sent invalid header in response")
            return None, b"", p + 1
        p += 1
    return None


def _take(answer: Answer, name: bytes, value: bytes) -> None:
    if name == b"auth-status":
        if value == b"WAIT":
            answer.again = True
        elif value != b"OK":
            answer.error = value
    elif name == b"auth-server":
        answer.server = value
    elif name == b"auth-port":
        answer.port = value
    elif name == b"auth-user":
        answer.user = value
    elif name == b"auth-pass":
        answer.password = value
    elif name == b"auth-wait":
        wait = decimal(value)
        if wait is not None:
            answer.wait = wait
    elif name == b"auth-error-code":
        answer.error_code = value


class AnswerReader:
    """The auth server's connection (a ``TcpOwner``): its answer, once its headers are
    whole; ConnectionError when it ends first or sends more than nginx reads."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.data = b""

    def made(self, end: TcpEnd) -> None:
        pass

    def received(self, data: bytes) -> None:
        if self.answer.done():
            return
        self.data += data
        try:
            found = read_answer(self.data[:RESPONSE_LIMIT])
        except BadAnswer as e:
            self.answer.set_exception(e)
            return
        if found is not None:
            self.answer.set_result(found)
        elif len(self.data) >= RESPONSE_LIMIT:
            self.answer.set_exception(ConnectionError())

    def ended(self) -> bool | None:
        if not self.answer.done():
            self.answer.set_exception(ConnectionError())
        return None

    def lost(self) -> None:
        self.ended()

    def blocked(self) -> None:
        pass

    def unblocked(self) -> None:
        pass

    def header_given(self, header: Any) -> None:
        pass

    def header_broken(self, end: TcpEnd, why: str) -> None:
        pass

    def accepted(self, end: TcpEnd) -> bool:
        raise AssertionError("an auth server's connection is not accepted")

    def handshake_failed(self, why: str) -> None:
        raise AssertionError("an auth server's connection is made, not accepted")

    def crashed(self, error: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(ConnectionError(repr(error)))


__all__ = ["AnswerReader", "METHODS", "RESPONSE_LIMIT", "Answer", "BadAnswer", "Login", "escape",
           "read_answer", "request"]
