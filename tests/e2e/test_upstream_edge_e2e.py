"""nginx's behaviour on the upstream edge (issue #21, items 1 and 2), end to end on both
engines and both exchange paths: the callback path (the request goes over a pooled idle
upstream connection: a first exchange on the same connection leaves it idle) and the
task path (the first request, on a fresh upstream connection).

The backend answers with scripted bytes: per upstream connection, the given answers in
order, then closes if the last one says so."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from e2e_util import Listener, fastgate, raw_exchange, status_of, wait_for_text
from helpers import dechunk
from raw_backend import RawBackend

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CLOSE = b"<close>"  # after the answers: the backend closes its side
RESET = b"<reset>"  # instead of an answer: the backend resets the connection
PAUSE = b"<pause>"  # inside an answer: what comes before it, 0.4 s, then the rest
SILENT = b"<silent>"  # instead of an answer: nothing, until the gateway drops it


class ScriptedBackend(Listener):
    """Answers each request on a connection with the next scripted answer."""

    def __init__(self, answers: list[bytes], shared: bool = False) -> None:
        self.answers = answers
        # shared: the script runs across connections — each request, on whichever
        # connection, takes the next answer
        self._shared = iter(answers) if shared else None
        self._lock = threading.Lock()
        self.requests = 0
        self.raw: list[bytes] = []  # every byte received, on every connection
        super().__init__(self._serve)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        buf = b""
        own = iter(self.answers) if self._shared is None else None
        try:
            while True:
                answer = next(own, None) if own is not None else b""
                if answer is None:
                    break
                if answer == CLOSE:  # right after the previous answer
                    return
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    self.raw.append(chunk)
                    buf += chunk
                buf = buf[buf.index(b"\r\n\r\n") + 4:]  # bodiless requests only
                self.requests += 1
                if own is None:  # shared: the request taken decides the answer
                    answer = self._take()
                    if answer is None or answer == CLOSE:
                        return
                if answer == SILENT:
                    break
                if answer == RESET:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    return
                first, paused, rest = answer.partition(PAUSE)
                conn.sendall(first)
                if paused:
                    time.sleep(0.4)
                    conn.sendall(rest)
            while conn.recv(65536):  # keep the connection until the gateway drops it
                pass
        except OSError:
            pass
        finally:
            conn.close()

    def _take(self) -> bytes | None:
        assert self._shared is not None
        with self._lock:
            return next(self._shared, None)



@pytest.fixture
def scripted() -> Iterator[list[ScriptedBackend]]:
    started: list[ScriptedBackend] = []
    yield started
    for b in started:
        b.stop()


def _gate(gateway, free, *ports: int) -> int:  # type: ignore[no-untyped-def]
    port = free()
    servers = " ".join(f"server 127.0.0.1:{p};" for p in ports)
    gateway(f"""http {{ access_log off;
      upstream be {{ {servers} keepalive 4; }}
      server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://be; }} }} }}""", port)
    return port


PATHS = ["callback", "task"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, close-delimited",
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, close-delimited",
], ids=["1.1", "1.0"])
def test_a_close_delimited_body_is_relayed(path: str, answer: bytes, scripted, gateway,
                                           free) -> None:  # type: ignore[no-untyped-def]
    out = _exchange(path, answer, scripted, gateway, free)
    assert status_of(out) == 200, out
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower(), head  # to an HTTP/1.1 client
    assert dechunk(body) == b"hello, close-delimited"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("answer,line", [
    (b"HTTP/1.1 419 Page Expired\r\nContent-Length: 2\r\n\r\nno",
     b"HTTP/1.1 419 Page Expired"),
    (b"HTTP/1.1 404 Nicht gefunden\r\nContent-Length: 2\r\n\r\nno",
     b"HTTP/1.1 404 Nicht gefunden"),
    (b"HTTP/1.1 200 Fine\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
     b"HTTP/1.1 200 Fine"),
    (b"HTTP/1.1 200 Gr\xfc\xdfe\r\nContent-Length: 2\r\n\r\nok", b"HTTP/1.1 200 Gr\xfc\xdfe"),
    (b"HTTP/1.0 302 Found\r\nLocation: /a\r\nContent-Length: 0\r\n\r\n",
     b"HTTP/1.1 302 Found"),
    # none written: none sent on (nginx also drops the space after the code when the
    # upstream did; RFC 9112's status line has it)
    (b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok", b"HTTP/1.1 200 "),
    (b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", b"HTTP/1.1 200 "),
], ids=["unknown-status", "own-words", "chunked", "obs-text", "standard", "empty",
        "no-space"])
def test_the_upstream_s_reason_phrase_goes_on(path: str, answer: bytes, line: bytes,
                                              scripted, gateway,
                                              free) -> None:  # type: ignore[no-untyped-def]
    # (nginx sends the upstream's status line from its code on, its status_line; the
    # whole-response fast lane and llhttp's path both hand the phrase over)
    out = _exchange(path, answer, scripted, gateway, free)
    assert out.split(b"\r\n")[0] == line, out


def _exchange(path: str, answer: bytes, scripted, gateway, free
              ) -> bytes:  # type: ignore[no-untyped-def]
    """The response a client gets when the upstream answers its request with ``answer``
    and closes; on the callback path the same upstream connection served a request
    before and was pooled."""
    answers = ([OK] if path == "callback" else []) + [answer, CLOSE]
    backend = ScriptedBackend(answers)
    scripted.append(backend)
    port = _gate(gateway, free, backend.port)
    if path == "callback":
        warm = raw_exchange(port, b"GET /warm HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert status_of(warm) == 200
    out = raw_exchange(port, b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert backend.connections == 1, "the callback path reused the pooled connection"
    return out


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxxxx",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n"
    b"2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\nok\r\n0\r\n\r\n",
], ids=["unknown", "gzip-chunked", "twice", "te-then-cl", "cl-then-te"])
def test_invalid_upstream_framing_is_a_502(path: str, answer: bytes, scripted, gateway,
                                           free) -> None:  # type: ignore[no-untyped-def]
    out = _exchange(path, answer, scripted, gateway, free)
    assert status_of(out) == 502, out
    assert b"ok\r\n0\r\n" not in out and b"xxxx" not in out  # nothing of it passed through


@pytest.mark.parametrize("path", PATHS)
def test_a_reset_before_any_byte_goes_to_the_next_server(
        path: str, scripted, gateway, free) -> None:  # type: ignore[no-untyped-def]
    answers = ([OK] if path == "callback" else []) + [RESET]
    first = ScriptedBackend(answers)
    second = ScriptedBackend([b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond", CLOSE])
    scripted.extend([first, second])
    port = free()
    # the first server alone takes the warm-up (weight), then the reset request is tried
    # on it first, and goes on to the second
    gateway(f"""http {{ access_log off;
      upstream be {{ server 127.0.0.1:{first.port} weight=100; server 127.0.0.1:{second.port};
                     keepalive 4; }}
      server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://be; }} }} }}""", port)
    if path == "callback":
        warm = raw_exchange(port, b"GET /warm HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert status_of(warm) == 200 and warm.endswith(b"ok")
    out = raw_exchange(port, b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(out) == 200, out
    assert out.endswith(b"second")


def _two_servers(gateway, free, first: ScriptedBackend, second: ScriptedBackend,
                 next_upstream: str) -> int:  # type: ignore[no-untyped-def]
    port = free()
    gateway(f"""http {{ access_log off;
      upstream be {{ server 127.0.0.1:{first.port} weight=100; server 127.0.0.1:{second.port};
                     keepalive 4; }}
      server {{ listen 127.0.0.1:{port};
        location / {{ proxy_next_upstream {next_upstream}; proxy_pass http://be; }} }} }}""",
            port)
    return port


SECOND = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"
BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 5\r\n\r\nfirst"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("answer,listed", [
    (BAD_GATEWAY, "error timeout http_502"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", "error invalid_header"),
], ids=["http_502", "invalid_header"])
def test_proxy_next_upstream_conditions(path: str, answer: bytes, listed: str, scripted,
                                        gateway, free) -> None:  # type: ignore[no-untyped-def]
    for next_upstream, expect in ((listed, b"second"), ("error timeout", None)):
        first = ScriptedBackend(([OK] if path == "callback" else []) + [answer, CLOSE])
        second = ScriptedBackend([SECOND, CLOSE])
        scripted.extend([first, second])
        port = _two_servers(gateway, free, first, second, next_upstream)
        if path == "callback":
            warm = raw_exchange(port, b"GET /w HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            assert warm.endswith(b"ok")
        out = raw_exchange(port, b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        if expect is not None:
            assert status_of(out) == 200 and out.endswith(expect), out
        else:  # not listed: the first server's answer (or its failure) is the answer
            assert status_of(out) == 502 and not out.endswith(b"second"), out
            assert second.requests == 0


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("failure", ["http_502", "timeout"])
def test_proxy_next_upstream_timeout_bounds_the_time_to_try_another(
        path: str, failure: str, scripted, gateway, free) -> None:  # type: ignore[no-untyped-def]
    # nginx asks, when a try has failed, whether proxy_next_upstream_timeout has passed
    # since the first began: then the failure is the answer (the 502 relayed, or 504)
    slow = (b"HTTP/1.1 502 Bad Gateway\r\n" + PAUSE + b"Content-Length: 5\r\n\r\nfirst"
            if failure == "http_502" else SILENT)
    read_timeout = "2s" if failure == "http_502" else "300ms"  # (the pause is 0.4 s)
    for bound, expect in (("200ms", None), ("5s", b"second")):
        first = ScriptedBackend(([OK] if path == "callback" else []) + [slow, CLOSE])
        second = ScriptedBackend([SECOND, CLOSE])
        scripted.extend([first, second])
        port = free()
        gateway(f"""http {{ access_log off;
          upstream be {{ server 127.0.0.1:{first.port} weight=100;
                         server 127.0.0.1:{second.port}; keepalive 4; }}
          server {{ listen 127.0.0.1:{port};
            location / {{ proxy_next_upstream error timeout http_502;
                          proxy_next_upstream_timeout {bound};
                          proxy_read_timeout {read_timeout};
                          proxy_pass http://be; }} }} }}""", port)
        if path == "callback":
            warm = raw_exchange(port, b"GET /w HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            assert warm.endswith(b"ok")
        out = raw_exchange(port, b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        if expect is not None:
            assert status_of(out) == 200 and out.endswith(expect), out
        else:
            assert status_of(out) == (502 if failure == "http_502" else 504), out
            assert not out.endswith(b"second"), out
            assert second.requests == 0
            if failure == "http_502":
                assert out.endswith(b"first"), out  # the server's own answer, relayed


@pytest.mark.parametrize("listed,expect", [("error timeout", 502),
                                           ("error timeout non_idempotent", 200)])
def test_a_post_is_sent_again_only_with_non_idempotent(
        listed: str, expect: int, scripted, gateway, free) -> None:  # type: ignore[no-untyped-def]
    first = ScriptedBackend([RESET])
    second = ScriptedBackend([SECOND, CLOSE])
    scripted.extend([first, second])
    port = _two_servers(gateway, free, first, second, listed)
    out = raw_exchange(port, b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
    assert status_of(out) == expect, out
    assert second.requests == (1 if expect == 200 else 0)


@pytest.mark.parametrize("path", PATHS)
def test_upstream_variables_list_every_server_tried(
        path: str, tmp_path, scripted, gateway, free) -> None:  # type: ignore[no-untyped-def]
    from e2e_util import wait_for_text

    first = ScriptedBackend(([OK] if path == "callback" else []) + [BAD_GATEWAY, CLOSE])
    second = ScriptedBackend([SECOND, CLOSE])
    scripted.extend([first, second])
    port = free()
    log = tmp_path / "up.log"
    gateway(f"""http {{ log_format up '$uri [$upstream_addr] [$upstream_status] '
                                     '[$upstream_response_time]';
      upstream be {{ server 127.0.0.1:{first.port} weight=100; server 127.0.0.1:{second.port};
                     keepalive 4; }}
      server {{ listen 127.0.0.1:{port}; access_log {log} up;
        location / {{ proxy_next_upstream error http_502; proxy_pass http://be; }} }} }}""",
            port)
    if path == "callback":
        raw_exchange(port, b"GET /w HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    out = raw_exchange(port, b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out.endswith(b"second")
    assert wait_for_text(log, "/x ")
    line = next(x for x in log.read_text().splitlines() if x.startswith("/x "))
    a, b = f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"
    assert f"[{a}, {b}] [502, 200] [" in line, line
    times = line.rsplit("[", 1)[1].rstrip("]").split(", ")
    assert len(times) == 2 and all(float(t) >= 0 for t in times), line


@pytest.mark.parametrize("path", PATHS)
def test_upstream_response_time_runs_to_the_responses_end(
        path: str, tmp_path, scripted, gateway, free) -> None:  # type: ignore[no-untyped-def]
    """$upstream_response_time is the time to the end of the upstream's response, as
    nginx's (fastgate wrote the time to its head, $upstream_header_time's)."""
    slow = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab" + PAUSE + b"cd"
    backend = ScriptedBackend(([OK] if path == "callback" else []) + [slow, CLOSE])
    scripted.append(backend)
    port = free()
    log = tmp_path / "times.log"
    gateway(f"""http {{ log_format times '$uri $upstream_header_time $upstream_response_time';
      upstream be {{ server 127.0.0.1:{backend.port}; keepalive 4; }}
      server {{ listen 127.0.0.1:{port}; access_log {log} times;
        location / {{ proxy_pass http://be; }} }} }}""", port)
    if path == "callback":
        raw_exchange(port, b"GET /w HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    out = raw_exchange(port, b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out.endswith(b"abcd"), out
    assert wait_for_text(log, "/x ")
    line = next(x for x in log.read_text().splitlines() if x.startswith("/x "))
    header, response = (float(t) for t in line.split()[1:])
    assert header < 0.3 and response >= 0.35, line


@pytest.mark.parametrize("path", PATHS)
def test_send_timeout_cuts_a_client_that_reads_nothing(
        path: str, tmp_path, scripted, gateway, free) -> None:  # type: ignore[no-untyped-def]
    import time

    from e2e_util import wait_for_text

    size = 64 * 1024 * 1024  # far more than every buffer on the way holds
    big = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size
    backend = ScriptedBackend(([OK] if path == "callback" else []) + [big, CLOSE])
    scripted.append(backend)
    port = free()
    errors = tmp_path / "err.log"
    gateway(f"""error_log {errors} info;
      http {{ access_log off; upstream be {{ server 127.0.0.1:{backend.port}; keepalive 4; }}
      server {{ listen 127.0.0.1:{port}; send_timeout 1s;
        location / {{ proxy_pass http://be; }} }} }}""", port)
    if path == "callback":
        raw_exchange(port, b"GET /w HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        assert wait_for_text(errors, "while sending to client", timeout=15)
        time.sleep(0.2)
        got = 0
        try:
            while chunk := s.recv(1 << 20):
                got += len(chunk)
        except OSError:
            pass
    assert got < size  # cut, not completed


def _headers(out: bytes) -> dict[bytes, list[bytes]]:
    head = out.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    found: dict[bytes, list[bytes]] = {}
    for line in head:
        name, _, value = line.partition(b":")
        found.setdefault(name.strip().lower(), []).append(value.strip())
    return found


@pytest.mark.parametrize("path", PATHS)
def test_expires(path: str, scripted, gateway, free) -> None:  # type: ignore[no-untyped-def]
    import email.utils
    import time

    cached = (b"HTTP/1.1 200 OK\r\nCache-Control: private\r\n"
              b"Expires: Sat, 01 Jan 2000 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nok")
    backend = ScriptedBackend(([OK] if path == "callback" else []) + [cached, CLOSE])
    scripted.append(backend)
    port = free()
    gateway(f"""http {{ access_log off; upstream be {{ server 127.0.0.1:{backend.port}; }}
      server {{ listen 127.0.0.1:{port};
        location /up/ {{ expires 1h; proxy_pass http://be; }}
        location /max {{ expires max; return 200 "x"; }}
        location /epoch {{ expires epoch; return 200 "x"; }}
        location /neg {{ expires -1; return 200 "x"; }}
        location /gone {{ expires 1h; return 404; }} }} }}""", port)

    def get(target: bytes) -> bytes:
        return raw_exchange(port, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n"
                                  b"Connection: close\r\n\r\n")

    if path == "callback":
        assert status_of(get(b"/up/warm")) == 200
    h = _headers(get(b"/up/x"))
    assert h[b"cache-control"] == [b"max-age=3600"], h  # the upstream's are replaced
    expires = email.utils.parsedate_to_datetime(h[b"expires"][0].decode()).timestamp()
    assert abs(expires - (time.time() + 3600)) < 5
    h = _headers(get(b"/max"))
    assert (h[b"expires"], h[b"cache-control"]) == ([b"Thu, 31 Dec 2037 23:55:55 GMT"],
                                                    [b"max-age=315360000"])
    h = _headers(get(b"/epoch"))
    assert (h[b"expires"], h[b"cache-control"]) == ([b"Thu, 01 Jan 1970 00:00:01 GMT"],
                                                    [b"no-cache"])
    assert _headers(get(b"/neg"))[b"cache-control"] == [b"no-cache"]
    h = _headers(get(b"/gone"))
    assert b"expires" not in h and b"cache-control" not in h  # not for a 404


def test_every_expires_form_loads_and_a_bad_one_names_its_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "f.conf"
    for value in ("modified 1h", "@15h30m", "$arg_e", "modified $arg_e", "-1d", "max"):
        conf.write_text(f"http {{ server {{ listen 127.0.0.1:1; expires {value}; }} }}\n")
        run = fastgate("-t", "-c", str(conf))
        assert run.returncode == 0, run.stderr
    conf.write_text("http { server { listen 127.0.0.1:1; expires @25h; } }\n")
    run = fastgate("-t", "-c", str(conf))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert '"expires" directive daily time value must be less than 24 hours' in run.stderr
    assert f"{conf}:1" in run.stderr


@pytest.mark.parametrize("keepalive", ["keepalive 4;", "keepalive 0;"],
                         ids=["callback", "task"])
def test_weights_share_the_requests_as_nginx(keepalive: str, gateway, free) -> None:  # type: ignore[no-untyped-def]
    from raw_backend import RawBackend

    heavy, light = RawBackend(), RawBackend()
    try:
        port = free()
        gateway(f"""http {{ access_log off;
          upstream be {{ server 127.0.0.1:{heavy.port} weight=3;
                         server 127.0.0.1:{light.port}; {keepalive} }}
          server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://be; }} }} }}""",
                port)
        for i in range(8):
            out = raw_exchange(port, f"GET /{i} HTTP/1.1\r\nHost: a\r\n"
                                     "Connection: close\r\n\r\n".encode())
            assert status_of(out) == 200, out
        # smooth weighted round robin: a a b a, twice
        assert (len(heavy.requests()), len(light.requests())) == (6, 2)
    finally:
        heavy.stop()
        light.stop()


@pytest.mark.parametrize("path", PATHS)
def test_a_retried_request_is_the_verified_one_and_nothing_else_gets_through(
        path: str, scripted, gateway, free) -> None:  # type: ignore[no-untyped-def]
    # proxy_next_upstream sends on only what the access phase passed: a request without
    # a valid token reaches neither server, and the second server gets the same
    # verified request (and claim header) the first one did
    import time

    import jwt as pyjwt

    secret = "retry-secret-0123456789abcdef0123456789"
    first = ScriptedBackend(([OK] if path == "callback" else []) + [BAD_GATEWAY, CLOSE])
    second = ScriptedBackend([SECOND, CLOSE])
    scripted.extend([first, second])
    port = free()
    gateway(f"""http {{ access_log off;
      upstream be {{ server 127.0.0.1:{first.port} weight=100; server 127.0.0.1:{second.port};
                     keepalive 4; }}
      server {{ listen 127.0.0.1:{port}; auth_jwt_key "{secret}";
        location / {{ auth_jwt on; proxy_set_header X-Sub $jwt_claim_sub;
                     proxy_next_upstream error http_502; proxy_pass http://be; }} }} }}""",
            port)

    def get(token: str | None) -> bytes:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        return raw_exchange(port, f"GET /x HTTP/1.1\r\nHost: a\r\n{auth}"
                                  "Connection: close\r\n\r\n".encode())

    exp = int(time.time()) + 60
    alice = pyjwt.encode({"sub": "alice", "exp": exp}, secret, algorithm="HS256")
    mallory = pyjwt.encode({"sub": "mallory", "exp": exp}, secret + "x", algorithm="HS256")
    if path == "callback":
        assert status_of(get(alice)) == 200
    assert status_of(get(None)) == 401
    assert status_of(get(mallory)) == 401
    out = get(alice)
    assert status_of(out) == 200 and out.endswith(b"second"), out
    warm = 1 if path == "callback" else 0
    assert (first.requests, second.requests) == (warm + 1, 1)
    for backend in (first, second):
        raw = b"".join(backend.raw)
        assert b"mallory" not in raw and mallory.encode() not in raw
        assert raw.count(b"GET /x") == raw.count(b'X-Sub: "alice"') == backend.requests



@pytest.mark.parametrize("keepalive", [16, 0], ids=["pooled", "new-each-time"])
def test_proxy_bind_sets_the_source_address(gateway, free, keepalive: int) -> None:  # type: ignore[no-untyped-def]
    """proxy_bind: connections leave from the address given (per request with
    variables); a value that is not an address is logged and not bound; a bind that
    fails is a 500 and never reaches the backend (nginx: bind() failed)."""
    be = RawBackend()
    try:
        port = free()
        g = gateway(f"""error_log stderr info; http {{ access_log off;
          upstream pool {{ server 127.0.0.1:{be.port}; keepalive {keepalive}; }}
          server {{ listen 127.0.0.1:{port};
            location /fixed/ {{ proxy_bind 127.0.0.2; proxy_pass http://pool; }}
            location /var/ {{ proxy_bind $arg_src; proxy_pass http://pool; }}
            location /off/ {{ proxy_bind off; proxy_pass http://pool; }}
            location /remote/ {{ proxy_bind 192.0.2.1; proxy_pass http://pool; }} }} }}""",
                    port)
        assert _status(port, "/fixed/a") == 200
        assert be.peers()[-1] == "127.0.0.2"
        assert _status(port, "/var/a?src=127.0.0.3") == 200
        if keepalive == 0:  # a pooled connection is reused whatever it left from (nginx)
            assert be.peers()[-1] == "127.0.0.3"
        before = len(be.requests())
        assert _status(port, "/var/a?src=nonsense") == 200
        assert len(be.requests()) == before + 1
        if keepalive == 0:  # the address is read when a connection is made
            assert wait_for_text(g.stderr_path, 'invalid local address "nonsense"')
            assert be.peers()[-1] == "127.0.0.1"
            assert _status(port, "/off/a") == 200 and be.peers()[-1] == "127.0.0.1"
            assert _status(port, "/remote/a") == 500
            assert not any(r.target == b"/remote/a" for r in be.requests())
            assert wait_for_text(g.stderr_path, "bind(192.0.2.1:0) failed (99: ")
    finally:
        be.stop()


def _status(port: int, path: str) -> int:
    return status_of(raw_exchange(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                                        "Connection: close\r\n\r\n".encode()))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("method", "status"), [
    (b"HEAD", b"200 OK"), (b"GET", b"204 No Content"), (b"GET", b"304 Not Modified")])
def test_an_upstream_connection_whose_answer_cannot_frame_a_body_is_not_reused(
        path: str, method: bytes, status: bytes, scripted, gateway,
        free) -> None:  # type: ignore[no-untyped-def]
    """A server that answers HEAD with a body (a handler that treats HEAD as GET: a
    common bug), or a 204 or 304 after a Content-Length, sends bytes the answer's
    framing cannot see. Pooled, its connection would give the next request — any
    client's — those bytes as its response: here a whole response of the server's
    making. fastgate pools by default (nginx proxies HTTP/1.0 without a pool), so it
    closes such an upstream connection."""
    smuggled = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"
    head = b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n" % (status, len(smuggled))
    answers = ([OK] if path == "callback" else []) + [head + PAUSE + smuggled, OK, CLOSE]
    backend = ScriptedBackend(answers, shared=True)
    scripted.append(backend)
    port = _gate(gateway, free, backend.port)
    if path == "callback":
        warm = raw_exchange(port, b"GET /warm HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert status_of(warm) == 200
    out = raw_exchange(port, method + b" /h HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(out) == int(status[:3]) and out.endswith(b"\r\n\r\n"), out
    after = raw_exchange(port, b"GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert b"SMUGGLED" not in after and after.endswith(b"\r\n\r\nok"), after
    assert backend.connections == 2

def _read_to_end(port: int, request: bytes) -> tuple[bytes, bool]:
    """What the client reads, and whether the connection was reset (not closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except ConnectionResetError:
            return out, True
    return out, False


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_a_response_cut_short_is_reset_not_closed(path: str, version: str, scripted, gateway,
                                                  free) -> None:  # type: ignore[no-untyped-def]
    """The upstream's chunked body breaks after its first chunk went to the client. To
    an HTTP/1.0 client the body has no stated length and ends with the connection: a
    close would make "hello" look like the whole body (to a front proxy speaking 1.0
    too: nginx's default); the connection is reset instead."""
    broken = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n" + PAUSE
              + b"zz\r\n")
    backend = ScriptedBackend(([OK] if path == "callback" else []) + [broken, CLOSE])
    scripted.append(backend)
    port = _gate(gateway, free, backend.port)
    if path == "callback":
        assert status_of(raw_exchange(
            port, b"GET /warm HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")) == 200
    out, reset = _read_to_end(port, f"GET /x HTTP/{version}\r\nHost: a\r\n\r\n".encode())
    assert reset, out
    assert not out.endswith(b"0\r\n\r\n")  # (1.1: never the last chunk)
    assert backend.connections == 1
