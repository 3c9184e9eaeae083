"""What an access log line writes, beside nginx 1.22: "-" for a variable nginx does not
find (a header, cookie or argument not given, no upstream, no user) and nothing for one
it finds empty (a map's or set's "", ``$https`` and ``$is_args`` off), and the
variables ``$request_completion``, ``$upstream_bytes_sent`` and ``$sent_trailer_NAME``
— on both engines. ``$upstream_bytes_sent`` is checked against what each backend
received, byte for byte."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, wait_port
from e2e_util import NGINX, beside_nginx, stop_process
from raw_backend import RawBackend

FORMAT = ("[$https][$is_args][$http_x_none][$cookie_none][$arg_none][$remote_user][$m][$s]"
          "[$upstream_status][$request_completion][$sent_trailer_x_t][$status]")


class Side:
    def __init__(self, kind: str, tmp: Path, engine: str) -> None:
        self.home = tmp / kind
        self.home.mkdir()
        self.port = free_port()
        self.backend = RawBackend()
        self.log = self.home / "access.log"
        engine_line = f"http_engine {engine};" if kind == "fastgate" else ""
        body = f"""{engine_line}
http {{
  map $http_x_m $m {{ default ""; a yes; }}
  log_format v '{FORMAT}';
  log_format sent '$upstream_bytes_sent';
  log_format files '$status [$document_root] [$request_filename] [$uri]';
  log_format args '$uri [$args] [$query_string] [$is_args] [$arg_a]';
  log_format gone '"$request" $status $bytes_sent [$content_length] [$http_x_a]';
  server {{ listen 127.0.0.1:{self.port};
    access_log {self.log} v;
    access_log {self.home}/gone.log gone;
    access_log {self.home}/files.log files;
    root /srv/www;
    set $s "";
    if ($arg_gone) {{ return 410; }}
    location /up {{ proxy_pass http://127.0.0.1:{self.backend.port};
      access_log {self.home}/sent.log sent; }}
    location /p {{ proxy_pass http://127.0.0.1:{self.backend.port}; }}
    location /q/ {{ access_log {self.home}/args.log args; return 200 "q"; }}
    location /tf {{ try_files /none /q/tf?$args; }}
    location /tn {{ try_files /none /q/tn; }}
    location /ep {{ error_page 404 /q/ep; return 404; }}
    location /rw {{ rewrite ^ /q/rw? last; }}
    location /ra {{ rewrite ^ /q/ra?$arg_none last; }}
    location /rb {{ rewrite ^ /q/rb?a=2 last; }}
    location /sa {{ set $args ""; rewrite ^ /q/sa last; }}
    location /t {{ add_trailer X-T "tv"; return 200 "x"; }}
    location /close {{ return 444; }}
    location / {{ return 200 "ok"; }}
  }} }}
"""
        self.proc = beside_nginx(kind, self.home, body, "error")
        wait_port(self.port, self.proc)

    def ask(self, path: str, extra: str = "", body: bytes = b"") -> bytes:
        method = "POST" if body else "GET"
        length = f"Content-Length: {len(body)}\r\n" if body else ""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(f"{method} {path} HTTP/1.1\r\nHost: h\r\n{extra}{length}"
                      f"Connection: close\r\n\r\n".encode() + body)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out

    def lines(self, name: str) -> list[str]:
        """The log's lines, once the server is stopped (fastgate writes in batches)."""
        stop_process(self.proc)
        return (self.home / name).read_text().splitlines()

    def stop(self) -> None:
        stop_process(self.proc)
        self.backend.stop()


@pytest.fixture
def sides(tmp_path: Path, engine: str) -> Iterator[tuple[Side, Side]]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is installed by make test (test-deps)")
    made: list[Side] = []
    try:
        for kind in ("nginx", "fastgate"):
            made.append(Side(kind, tmp_path, engine))
        yield made[0], made[1]
    finally:
        for side in made:
            side.stop()


ASKED = (("/", ""), ("/?a=1", "X-M: a\r\nCookie: other=1\r\n"), ("/t", ""), ("/close", ""),
         ("/p?q", ""))


def test_lines_as_nginx(sides: tuple[Side, Side]) -> None:
    nginx, fastgate = sides
    for path, extra in ASKED:
        for side in sides:
            side.ask(path, extra)
    time.sleep(0.2)
    theirs, ours = nginx.lines("access.log"), fastgate.lines("access.log")
    assert ours == theirs, (ours, theirs)
    assert ours == [
        "[][][-][-][-][-][][][-][OK][-][200]",
        "[][?][-][-][-][-][yes][][-][OK][-][200]",
        "[][][-][-][-][-][][][-][OK][tv][200]",
        "[][][-][-][-][-][][][-][][-][444]",
        "[][?][-][-][-][-][][][200][OK][-][200]",
    ]


def test_upstream_bytes_sent_is_what_the_backend_received(sides: tuple[Side, Side]) -> None:
    for side in sides:
        side.ask("/up/x", "X-Pad: " + "p" * 300 + "\r\n")
        side.ask("/up/y")
        side.ask("/up/z", body=b"b" * 5000)  # (a body: the task path's exchange)
    for side in sides:
        sent = [int(n) for n in side.lines("sent.log")]
        assert sum(sent) == len(side.backend.raw()), side.home
        assert len(sent) == 3 and sent[0] > 300 and sent[1] > 0 and sent[2] > 5000


def test_before_a_location_the_servers_settings(sides: tuple[Side, Side]) -> None:
    """A request answered in the server rewrite phase, and one refused as its head was
    read, are logged with the server's settings (nginx's r->loc_conf before a location
    is found): its root in $document_root and $request_filename."""
    for side in sides:
        side.ask("/a/b?gone=1")
        for raw in (b"GET /c HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n",
                    b"GET /%2e%2e/d HTTP/1.1\r\nHost: h\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", side.port), timeout=5) as c:
                c.sendall(raw)
                while c.recv(65536):
                    pass
    time.sleep(0.2)
    ours, theirs = sides[1].lines("files.log"), sides[0].lines("files.log")
    # (a target refused once read: $uri found, empty — not "-")
    assert ours == theirs == ["410 [/srv/www] [/srv/www/a/b] [/a/b]",
                              "400 [/srv/www] [/srv/www/c] [/c]", "400 [/srv/www] [/srv/www] []"]


def test_arguments_found_empty_as_nginx(sides: tuple[Side, Side]) -> None:
    """$args (and $query_string) is found, though empty, where the target has a "?" —
    the client's, a rewrite's, an internal redirect's — or set: nothing is written for
    it then; "-" where the request has none (nginx's r->args.data). try_files' redirect
    without "?" finds them too (nginx's never sets them: not NULL in practice).
    """
    asked = ("/q/x?", "/q/x", "/q/x?a=1", "/tf", "/tf?a=1", "/rw", "/rw?a=1", "/ra",
             "/rb?a=1", "/sa", "/tn", "/tn?a=1", "/ep?a=1", "/q/x?a=", "/q/x?a",
             "/q/x?A=", "/q/x?b=1&a=", "/q/x?ba=1", "/q/x?a&a=3")
    for side in sides:
        for path in asked:
            side.ask(path)
    time.sleep(0.2)
    ours, theirs = sides[1].lines("args.log"), sides[0].lines("args.log")
    assert ours == theirs, (ours, theirs)
    assert ours == ["/q/x [-] [-] [] [-]", "/q/x [-] [-] [] [-]", "/q/x [a=1] [a=1] [?] [1]",
                    "/q/tf [] [] [] [-]", "/q/tf [a=1] [a=1] [?] [1]",
                    "/q/rw [-] [-] [] [-]", "/q/rw [] [] [] [-]", "/q/ra [] [] [] [-]",
                    "/q/rb [a=2&a=1] [a=2&a=1] [?] [2]", "/q/sa [] [] [] [-]",
                    "/q/tn [] [] [] [-]", "/q/tn [] [] [] [-]", "/q/ep [-] [-] [] [-]",
                    # $arg_a is found where "a=" is, empty or not; "a" alone is not it
                    "/q/x [a=] [a=] [?] []", "/q/x [a] [a] [?] [-]", "/q/x [A=] [A=] [?] []",
                    "/q/x [b=1&a=] [b=1&a=] [?] []", "/q/x [ba=1] [ba=1] [?] [-]",
                    "/q/x [a&a=3] [a&a=3] [?] [3]"]


def test_a_head_the_client_left_unfinished_as_nginx(sides: tuple[Side, Side]) -> None:
    """A client that closes its side before its head is whole gets nothing (nginx's
    "client prematurely closed connection"); the access log says 400, 0 bytes sent,
    with what was read: the line (a part of one as it came), the headers."""
    parts = (b"POST /a HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nContent-Length: 11\r\n",
             b"GET /b HTTP/1.1\r\nHo", b"GET /c HT",
             # (its body unfinished: the same, once the body was being read)
             b"POST /p/d HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nabc",
             b"POST /p/e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"3\r\nabc\r\n")
    for side in sides:
        for raw in parts:
            with socket.create_connection(("127.0.0.1", side.port), timeout=5) as c:
                c.sendall(raw)
                time.sleep(0.1)
                c.shutdown(socket.SHUT_WR)
                assert c.recv(65536) == b"", side.home  # nothing answered
    time.sleep(0.2)
    ours, theirs = sides[1].lines("gone.log"), sides[0].lines("gone.log")
    # (a chunked body's $content_length counts its chunks as they come in nginx: "3"
    # here, "-" in fastgate, which knows it once the body is whole)
    assert [line.split(" [")[0] for line in ours] == [line.split(" [")[0] for line in theirs]
    assert ours[:4] == theirs[:4] == [
        '"POST /a HTTP/1.1" 400 0 [11] [1]', '"GET /b HTTP/1.1" 400 0 [-] [-]',
        '"GET /c HT" 400 0 [-] [-]', '"POST /p/d HTTP/1.1" 400 0 [11] [-]'], (ours, theirs)
    assert all(side.backend.raw() == b"" for side in sides)  # (buffered: nothing went)
