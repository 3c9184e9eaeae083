"""The mail block on unix sockets, beside nginx 1.22: ``listen unix:PATH`` (the
client ``unix:`` in Client-IP, XCLIENT and the log; ``[TEMPUNAVAIL]`` its SMTP name with a
resolver; the PROXY protocol's ``UNKNOWN`` sent for it; a PROXY header from such a peer
trusted by ``set_real_ip_from unix:``) and ``auth_http unix:PATH[:URI]`` (Host
localhost; a socket that is not there: nginx's message at crit, the client's internal
error). What the clients get, what the auth server is asked, what the mail servers
receive and the error log are compared."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_mail_e2e import (
    AuthServer,
    Client,
    _b64,
    both,
    imap_backend,
    ok_to,
    requests_same,
    same,
    smtp_backend,
)

BLOCK = """
resolver 127.0.0.1:DNS ipv6=off; resolver_timeout 2s;
server { listen 127.0.0.1:PORT0; protocol imap; auth_http unix:HOME/auth.sock:/mail/auth; }
server { listen 127.0.0.1:PORT1; protocol imap; auth_http unix:HOME/missing.sock; }
server { listen unix:SIDE/imap.sock; protocol imap; auth_http unix:HOME/auth.sock;
         proxy_protocol on; }
server { listen unix:SIDE/pp.sock proxy_protocol; protocol imap; auth_http unix:HOME/auth.sock;
         set_real_ip_from unix:; }
server { listen unix:SIDE/smtp.sock; protocol smtp; auth_http unix:HOME/auth.sock; }
"""


def _over(path: Path) -> Client:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    sock.connect(str(path))
    c = Client.__new__(Client)
    c.sock = sock
    return c


@pytest.fixture
def unix_auth(tmp_path: Path) -> Iterator[AuthServer]:
    a = AuthServer(tmp_path / "auth.sock")
    yield a
    a.rec.close()


def test_mail_on_unix_sockets(tmp_path: Path, unix_auth: AuthServer) -> None:
    from dns_server import DnsServer

    dns = DnsServer()
    imap, smtp = imap_backend(), smtp_backend()
    unix_auth.answer = lambda req: ok_to(smtp if b"Auth-Protocol: smtp" in req else imap)(req)
    block = BLOCK.replace("DNS", str(dns.port))
    got: list[list[bytes]] = []
    asked: list[list[bytes]] = []
    received: list[list[bytes]] = []
    logged: list[list[str]] = []
    try:
        with both(tmp_path, block, unix_auth, nports=2) as sides:
            for side in sides:
                out = []
                for port in side.ports:
                    c = Client(port)
                    out += [c.read(), c.say(b"a1 LOGIN u p\r\n"), c.say(b"a2 NOOP\r\n")]
                    c.close()
                c = _over(side.home / "imap.sock")
                out += [c.read(), c.say(b"b1 LOGIN v p\r\n")]
                c.close()
                c = _over(side.home / "pp.sock")
                c.sock.sendall(b"PROXY TCP4 203.0.113.7 198.51.100.1 5555 143\r\n")
                out += [c.read(), c.say(b"c1 LOGIN w p\r\n")]
                c.close()
                c = _over(side.home / "smtp.sock")
                out += [c.read(quiet=0.5), c.say(b"EHLO me\r\n"),
                        c.say(b"AUTH PLAIN " + _b64(b"\0x\0p") + b"\r\n")]
                c.close()
                got.append(out)
                asked.append(unix_auth.take())
                received.append(imap.take() + smtp.take())
                logged.append([m.replace(str(side.home), "SIDE") for m in side.messages()])
    finally:
        dns.stop()
        imap.close()
        smtp.close()
    same(got[0], got[1])
    requests_same(asked[0], asked[1])
    assert received[1] == received[0]
    assert sorted(logged[1]) == sorted(logged[0]), (logged[0], logged[1])
    # (what nginx did, said once: the comparison above holds fastgate to it)
    assert [re.search(rb"Client-IP: (\S+)", r).group(1) for r in asked[0]] == [  # type: ignore[union-attr]
        b"127.0.0.1", b"unix:", b"203.0.113.7", b"unix:"]
    assert all(r.startswith(b"GET /") and b"\r\nHost: localhost\r\n" in r for r in asked[0])
    assert asked[0][0].startswith(b"GET /mail/auth HTTP/1.0\r\n")
    assert b"Client-Host: [TEMPUNAVAIL]\r\n" in asked[0][3]
    assert received[0][1].startswith(b"PROXY UNKNOWN\r\nb1 LOGIN")
    assert any(b"XCLIENT ADDR=unix: LOGIN=x NAME=[TEMPUNAVAIL]" in r for r in received[0])
    assert any(m.startswith(f"connect() to unix:{tmp_path}/missing.sock failed (2: No such "
                            "file or directory) while in http auth state, client: 127.0.0.1")
               for m in logged[1])
    assert "client unix: connected to unix:SIDE/imap.sock" in logged[1]
