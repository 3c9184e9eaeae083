"""The login to the mail server as a script (``proxy.mail_login``): what is sent after
each reply, for each protocol and SMTP's options, and which replies are refused —
nginx's ngx_mail_proxy_module handlers, without a socket."""

from __future__ import annotations

import dataclasses

import pytest

from fastgate.config.model import AuthHttp, MailServer, Settings, Where
from fastgate.proxy.mail_login import Credentials, LoginScript, NoPassword

WHO = Credentials(b"a1 ", b"alice", b"pw", "plain", True, b"client.example",
                  b"MAIL FROM:<a@b>", b"RCPT TO:<c@d>", "192.0.2.7", "[UNAVAILABLE]")


def _server(protocol: str, **kw: object) -> MailServer:
    return MailServer(listens=(), protocol=protocol, settings=Settings(), where=Where("f", 1),
                      auth_http=AuthHttp("127.0.0.1", 1, "h", "/"), server_name="mx", **kw)  # type: ignore[arg-type]


def _run(script: LoginScript, replies: list[bytes]) -> list[bytes | None]:
    out: list[bytes | None] = []
    for reply in replies:
        assert script.expected(reply)[0], (script.state, reply)
        out.append(script.next())
    return out


def test_imap_and_pop3() -> None:
    imap = LoginScript(_server("imap"), WHO)
    assert _run(imap, [b"* OK ready\r\n", b"+ go\r\n", b"+ go\r\n", b"a1 OK in\r\n"]) == [
        b"a1 LOGIN {5}\r\n", b"alice {2}\r\n", b"pw\r\n", None]
    pop3 = LoginScript(_server("pop3"), WHO)
    assert _run(pop3, [b"+OK\r\n", b"+OK\r\n", b"+OK in\r\n"]) == [
        b"USER alice\r\n", b"PASS pw\r\n", None]
    refused = LoginScript(_server("imap"), WHO)
    refused.state = "passwd"
    assert refused.expected(b"a1 NO wrong\r\n") == (False, 3)  # (quoted past the tag)


def test_smtp_with_xclient_and_auth() -> None:
    script = LoginScript(_server("smtp", smtp_auth_upstream=True), WHO)
    sent = _run(script, [b"220 mx\r\n", b"250-mx\r\n250 X\r\n", b"220 again\r\n",
                         b"250 ok\r\n", b"235 ok\r\n"])
    assert sent == [b"EHLO mx\r\n", b"XCLIENT ADDR=192.0.2.7 NAME=[UNAVAILABLE]\r\n",
                    b"EHLO client.example\r\n", b"AUTH PLAIN AGFsaWNlAHB3\r\n", None]
    assert script.welcome(b"235 ok\r\n") == b"235 2.0.0 OK\r\n"


def test_smtp_without_a_login() -> None:
    who = dataclasses.replace(WHO, method="none", login=b"", esmtp=False, helo=b"")
    script = LoginScript(_server("smtp", xclient=False), who)
    sent = _run(script, [b"220 mx\r\n", b"250 mx\r\n", b"250 ok\r\n", b"451 later\r\n"])
    assert sent == [b"HELO mx\r\n", b"MAIL FROM:<a@b>\r\n", b"RCPT TO:<c@d>\r\n", None]
    assert script.welcome(b"451 later\r\n") == b"451 later\r\n"  # (its answer to RCPT TO)


def test_smtp_replies_of_several_lines_and_refusals() -> None:
    script = LoginScript(_server("smtp"), WHO)
    assert not script.whole(b"250-one\r\n250-two\r\n")
    assert script.whole(b"250-one\r\n250 two\r\n")
    assert script.expected(b"554 go away\r\n") == (False, 0)
    needs = LoginScript(_server("smtp", xclient=False, smtp_auth_upstream=True),
                        dataclasses.replace(WHO, password=b""))
    needs.next()
    with pytest.raises(NoPassword):
        needs.next()
