"""The mail block's readers: the command parsers (nginx's state machines) and the
auth_http answer's reader — examples of what nginx makes of a line, and properties:
any bytes, in any pieces, are read the same as at once, and nothing raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgate.config.model import AuthHttp, MailServer, Settings, Where
from fastgate.proxy.mail_auth import Answer, BadAnswer, Login, escape, read_answer, request
from fastgate.proxy.mail_parse import AGAIN, INVALID, NEXT, OK, CommandReader


def _read(protocol: str, data: bytes, size: int = 4096) -> list[tuple[str, bytes, list[bytes]]]:
    """Every result over ``data``, as the session takes them."""
    r = CommandReader(protocol, size)
    r.feed(data)
    out = []
    while True:
        rc = r.parse()
        if rc == AGAIN:
            return out
        out.append((rc, r.command if rc == OK else b"", list(r.args) if rc == OK else []))
        if rc != NEXT:
            r.settle(keep_argument=True)


@pytest.mark.parametrize("line,expected", [
    (b"a1 LOGIN alice secret\r\n", [(OK, b"LOGIN", [b"alice", b"secret"])]),
    (b"a1 login alice secret\n", [(OK, b"LOGIN", [b"alice", b"secret"])]),
    (b'a1 LOGIN "us er" "p\\"w\\\\"\r\n', [(OK, b"LOGIN", [b"us er", b'p"w\\'])]),
    (b"a1 CAPABILITY\r\n", [(OK, b"CAPABILITY", [])]),
    (b"a1 SELECT INBOX\r\n", [(INVALID, b"", [])]),
    (b"a*1 NOOP\r\n", [(INVALID, b"", [])]),
    (b"a1 LOGIN a b c d\r\n", [(INVALID, b"", [])]),
    (b"a1 LOGIN {5}\r\n", [(NEXT, b"", [])]),
    (b"a1 LOGIN {5+}\r\nalice {2+}\r\npw\r\n", [(OK, b"LOGIN", [b"alice", b"pw"])]),
    # (nginx's: {0} takes a byte, and the byte after a literal is skipped)
    (b"a1 LOGIN {0+}\r\nxy\r\n", [(OK, b"LOGIN", [b"x"])]),
    (b"noline", []),
])
def test_imap_lines(line: bytes, expected: list[tuple[str, bytes, list[bytes]]]) -> None:
    assert _read("imap", line) == expected


def test_imap_tag_and_continuation() -> None:
    r = CommandReader("imap", 4096)
    r.feed(b"tag.1 AUTHENTICATE PLAIN\r\nAGFsaWNlAHB3\r\n")
    assert r.parse() == OK and r.tag == b"tag.1 " and r.args == [b"PLAIN"]
    r.settle(keep_argument=True)
    assert r.state != 0  # (the next line is AUTHENTICATE's argument)
    assert r.parse() == OK and r.args == [b"AGFsaWNlAHB3"]


def test_a_refused_non_synchronizing_literal_ends_the_session() -> None:
    r = CommandReader("imap", 4096)
    r.feed(b"a1 APPEND INBOX {100+}\r\n")
    assert r.parse() == INVALID and r.quit


@pytest.mark.parametrize("line,expected", [
    (b"USER us er\r\n", [(OK, b"USER", [b"us er"])]),
    (b"PASS  p w \r\n", [(OK, b"PASS", [b"p w "])]),
    (b"APOP alice 0123\r\n", [(OK, b"APOP", [b"alice", b"0123"])]),
    (b"STAT\r\n", [(INVALID, b"", [])]),
    (b"AUTH\r\n", [(OK, b"AUTH", [])]),
    (b"CAPA x y z w\r\n", [(INVALID, b"", [])]),
    (b"QUIT\rX\n", [(INVALID, b"", [])]),
])
def test_pop3_lines(line: bytes, expected: list[tuple[str, bytes, list[bytes]]]) -> None:
    assert _read("pop3", line) == expected


@pytest.mark.parametrize("line,expected", [
    (b"EHLO client.example\r\n", [(OK, b"EHLO", [b"client.example"])]),
    (b"MAIL FROM:<a@b>  SIZE=10\r\n", [(OK, b"MAIL", [b"FROM:<a@b>", b"SIZE=10"])]),
    (b"STARTTLS\r\n", [(OK, b"STARTTLS", [])]),
    (b"DATA\r\n", [(INVALID, b"", [])]),
    (b"RCPT " + b"a " * 10 + b"b\r\n", [(OK, b"RCPT", [b"a"] * 10 + [b"b"])]),  # (11 at most)
    (b"RCPT " + b"a " * 11 + b"b\r\n", [(INVALID, b"", [])]),
])
def test_smtp_lines(line: bytes, expected: list[tuple[str, bytes, list[bytes]]]) -> None:
    assert _read("smtp", line) == expected


def test_the_command_line_as_sent() -> None:
    r = CommandReader("smtp", 4096)
    r.feed(b"MAIL FROM:<a@b>  SIZE=10  \r\n")
    assert r.parse() == OK and r.command_line() == b"MAIL FROM:<a@b>  SIZE=10"


def test_bytes_past_the_buffer_wait_outside_it() -> None:
    r = CommandReader("pop3", 16)
    r.feed(b"USER " + b"x" * 40 + b"\r\n")
    assert r.parse() == AGAIN and r.full and len(r.buf) == 16 and len(r.waiting) == 31


@settings(max_examples=300, deadline=None)
@given(protocol=st.sampled_from(["imap", "pop3", "smtp"]),
       data=st.lists(st.sampled_from([b"a1 ", b"LOGIN ", b"AUTHENTICATE ", b"USER ", b"PASS ",
                                      b"AUTH ", b"PLAIN", b'"', b"\\", b"{3}", b"{2+}", b" ",
                                      b"MAIL ", b"EHLO ",
                                      b"\r", b"\n", b"\r\n", b"x", b"+", b"}", b"\x00",
                                      b"\xff"]), max_size=40).map(b"".join),
       cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_pieces_read_as_the_whole(protocol: str, data: bytes, cuts: list[int]) -> None:
    """nginx's parsers keep their state between reads: however the bytes come, the
    commands found are the same, and nothing raises."""
    whole = _read(protocol, data)
    r = CommandReader(protocol, 4096)
    found = []
    edges = sorted({c for c in cuts if c < len(data)} | {0, len(data)})
    for a, b in zip(edges, edges[1:], strict=False):
        r.feed(data[a:b])
        while True:
            rc = r.parse()
            if rc == AGAIN:
                break
            found.append((rc, r.command if rc == OK else b"",
                          list(r.args) if rc == OK else []))
            if rc != NEXT:
                r.settle(keep_argument=True)
    assert found == whole


# --- the auth server's answer --------------------------------------------------------------


def test_an_answer_is_read_as_nginx_reads_it() -> None:
    a = read_answer(b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nauth-server:  10.0.0.1  \r\n"
                    b"Auth-Port: 143\r\nAuth-Wait: 3\r\nX-Other: y\r\nAuth-Pass: a b\r\n\r\n")
    assert a == Answer(server=b"10.0.0.1", port=b"143", wait=3, password=b"a b")
    # no status line: the first line is read as a header, as nginx's
    assert read_answer(b"Auth-Status: Bad one\r\n\r\n") == Answer(error=b"Bad one")
    assert read_answer(b"Auth-Status: WAIT\nAuth-Wait: x\n\n") == Answer(again=True)
    # (thousands of digits: not a wait, never handed to int())
    assert read_answer(b"Auth-Status: WAIT\nAuth-Wait: " + b"9" * 5000 + b"\n\n") == \
        Answer(again=True)
    assert read_answer(b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n") is None
    assert read_answer(b"HTT") is None


@pytest.mark.parametrize("data,why", [
    (b"HTTP/1.0 200 OK\rX\n", "sent invalid response"),
    (b"HTTP/1.0 200 OK\r\nAuth Status: OK\r\n\r\n", "sent invalid header in response"),
    (b"HTTP/1.0 200 OK\r\n-X: y\r\n\r\n", "sent invalid header in response"),
    (b"HTTP/1.0 200 OK\r\nX: y\rz\r\n\r\n", "sent invalid header in response"),
    (b"HTTP/1.0 200 OK\r\n\rX", "sent invalid header in response"),
])
def test_answers_that_cannot_be_read(data: bytes, why: str) -> None:
    with pytest.raises(BadAnswer) as e:
        read_answer(data)
    assert e.value.why == why


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"HTTP/1.0 200 OK", b"Auth-Status: ", b"OK", b"WAIT",
                                 b"Auth-Server: ", b"Auth-Port: ", b":", b" ", b"\r", b"\n",
                                 b"\r\n", b"-", b"x", b"\x00", b"1"]), max_size=30).map(b"".join))
def test_any_answer_is_read_or_refused(data: bytes) -> None:
    """Any bytes: an Answer, None (not whole yet) or BadAnswer; a prefix of a whole
    answer is never read as a different one."""
    try:
        found = read_answer(data)
    except BadAnswer:
        return
    if found is None:
        return
    for n in range(len(data)):
        try:
            early = read_answer(data[:n])
        except BadAnswer:
            raise AssertionError("a prefix of a readable answer was refused") from None
        assert early is None or early == found


def test_the_request_is_nginx_s() -> None:
    server = MailServer(listens=(), protocol="pop3", settings=Settings(), where=Where("f", 1),
                        auth_http=AuthHttp("127.0.0.1", 9000, "auth.local", "/auth"),
                        auth_http_headers=b"X-A: b\r\n")
    login = Login("apop", b"al ice%", b"d\x01", b"<1.2@mx>\r\n", 2, "10.0.0.1",
                  {"Protocol": "TLSv1.3", "Cipher": "X"})
    assert request(server, login) == (
        b"GET /auth HTTP/1.0\r\nHost: auth.local\r\nAuth-Method: apop\r\n"
        b"Auth-User: al%20ice%25\r\nAuth-Pass: d%01\r\nAuth-Salt: <1.2@mx>\r\n"
        b"Auth-Protocol: pop3\r\nAuth-Login-Attempt: 2\r\nClient-IP: 10.0.0.1\r\n"
        b"Auth-SSL: on\r\nAuth-SSL-Protocol: TLSv1.3\r\nAuth-SSL-Cipher: X\r\nX-A: b\r\n\r\n")
    assert escape(b"a\r\nb c%\x7f") == b"a%0D%0Ab%20c%25\x7f"
