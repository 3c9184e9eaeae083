"""The callback exchange (``proxy.fast``) and the task exchange (``proxy.exchange``) are
two ways to run one exchange: the same scenario through each must give the client and
the upstream the same bytes, and log the same reasons (issue #16, item 4: one response
head builder, one failure table), on both engines."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from scenario import ENGINES, Scenario

SECRET = "two-paths-secret-0123456789abcdef0123"
HTTP = f"""
upstream be {{ server 127.0.0.1:9; keepalive 8; }}
upstream two {{ server 127.0.0.1:9; server 127.0.0.1:10; keepalive 8; }}
server {{ listen 127.0.0.1:8080; auth_jwt_key "{SECRET}";
  location /next/ {{ proxy_next_upstream error invalid_header http_502;
                    proxy_pass http://two; }}
  location /p/ {{ proxy_pass http://be; }}
  location = / {{ proxy_pass http://be; }}
  location /hs/ {{ auth_jwt on; proxy_set_header X-Sub $jwt_claim_sub;
                  add_header X-A $jwt_claim_sub; proxy_pass http://be; }}
  location /hide/ {{ proxy_hide_header X-Powered-By; proxy_pass_header Server;
                    proxy_pass_header Content-Length; proxy_pass http://be; }}
  location /icpt/ {{ proxy_intercept_errors on; error_page 404 =200 @found;
                    error_page 500 /p/from-500; proxy_pass http://be; }}
  location @found {{ return 200 "found"; }}
  location /gone/ {{ error_page 404 = /p/page; return 404; }}
  location /rd/ {{ proxy_pass http://be/base/; }}
  location /rdoff/ {{ proxy_redirect off; proxy_pass http://be; }}
  location /rdset/ {{ proxy_redirect http://internal:8080/ https://$host/ext/;
                     proxy_pass http://be; }}
  location /strip/ {{ set $args "page=$arg_page"; proxy_pass http://be; }}
  location /named/ {{ error_page 404 = @raw; return 404; }}
  location @raw {{ proxy_pass http://be; }}
  location /x/ {{ expires max; add_header X-Always yes always; add_header X-Ok yes;
                 proxy_pass http://be/rewritten/; }}
}}
"""


def _token() -> str:
    # (made when the module is collected: valid for a day, however long the suite runs
    # before these tests do)
    return pyjwt.encode({"sub": "u1", "exp": int(time.time()) + 86400}, SECRET,
                        algorithm="HS256")


def _get(path: str, method: str = "GET", auth: bool = False) -> bytes:
    extra = f"Authorization: Bearer {_token()}\r\n" if auth else ""
    return f"{method} {path} HTTP/1.1\r\nHost: a\r\n{extra}\r\n".encode()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
SCENARIOS: dict[str, tuple[bytes, bytes | None]] = {
    "plain 200": (_get("/p/a?q=1"), OK),
    "absolute-form": (_get("ftp://a/p/a?q=1"), OK),
    "absolute-form, a query after the authority": (_get("http://a?q=1"), OK),
    "verified, claim header": (_get("/hs/a", auth=True), OK),
    "no token": (_get("/hs/a"), OK),
    "chunked": (_get("/p/c"), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
    "hop-by-hop and server headers": (
        _get("/p/h"), b"HTTP/1.1 200 OK\r\nServer: backend\r\nDate: x\r\nKeep-Alive: 5\r\n"
                      b"Connection: X-Private\r\nX-Private: 1\r\nX-Public: 2\r\n"
                      b"Content-Length: 0\r\n\r\n"),
    "HEAD": (_get("/p/h", "HEAD"), b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
    "204": (_get("/p/n"), b"HTTP/1.1 204 No Content\r\n\r\n"),
    "304": (_get("/p/n"), b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n"),
    "404, add_header always": (_get("/x/a"), b"HTTP/1.1 404 Not Found\r\n"
                                             b"Content-Length: 1\r\n\r\nn"),
    "200, expires and add_header": (_get("/x/a"), b"HTTP/1.1 200 OK\r\nExpires: 0\r\n"
                                                  b"Cache-Control: private\r\n"
                                                  b"Content-Length: 1\r\n\r\ny"),
    "invalid response": (_get("/p/bad"), b"HTTP/1.1 2000 What\r\n\r\n"),
    "unasked 101": (_get("/p/u"), b"HTTP/1.1 101 Switching Protocols\r\n"
                                  b"Upgrade: websocket\r\nConnection: upgrade\r\n\r\n"),
    "invalid header value": (_get("/p/v"), b"HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\n"
                                           b"Content-Length: 0\r\n\r\n"),
    "closed before answering": (_get("/p/r"), None),
    "closed mid-body": (_get("/p/m"), b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
    "502 sent on, the next server down": (_get("/next/a"), b"HTTP/1.1 502 Bad Gateway\r\n"
                                                           b"Content-Length: 0\r\n\r\n"),
    "invalid header sent on": (_get("/next/v"), b"HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\n"
                                                b"Content-Length: 0\r\n\r\n"),
    "closed before answering, sent on": (_get("/next/r"), None),
    "hide and pass headers": (_get("/hide/a"), b"HTTP/1.1 200 OK\r\nServer: be/1\r\n"
                                              b"X-Powered-By: php\r\nX-Other: 1\r\n"
                                              b"Content-Length: 1\r\n\r\nh"),
    "intercepted 404 to a named location": (_get("/icpt/a"), b"HTTP/1.1 404 Not Found\r\n"
                                                              b"Content-Length: 3\r\n\r\nnop"),
    "intercepted 500 to a URI": (_get("/icpt/b"), b"HTTP/1.1 500 Oops\r\n"
                                                  b"Content-Length: 0\r\n\r\n"),
    "default redirect, URI part": (_get("/rd/a"), b"HTTP/1.1 302 Found\r\n"
                                                  b"Location: http://be/base/next?x=1\r\n"
                                                  b"Refresh: 5; url=http://be/base/r\r\n"
                                                  b"Content-Length: 0\r\n\r\n"),
    "default redirect, no URI part": (_get("/p/a"), b"HTTP/1.1 301 Moved\r\n"
                                                    b"Location: http://be/elsewhere\r\n"
                                                    b"Content-Length: 0\r\n\r\n"),
    "relative location left as it came": (_get("/p/a"), b"HTTP/1.1 302 Found\r\n"
                                                      b"Location: /login\r\n"
                                                      b"Content-Length: 0\r\n\r\n"),
    "redirect off": (_get("/rdoff/a"), b"HTTP/1.1 302 Found\r\n"
                                       b"Location: http://be/x\r\nContent-Length: 0\r\n\r\n"),
    "explicit redirect": (_get("/rdset/a"), b"HTTP/1.1 302 Found\r\n"
                                            b"Location: http://internal:8080/y\r\n"
                                            b"Content-Length: 0\r\n\r\n"),
    # an error page's URI makes the request a GET (nginx's ngx_http_send_error_page)
    "POST to an error page": (_get("/gone/a", "POST"), OK),
    # `set $args` replaces what goes upstream (a token in the query string stripped)
    "set $args": (_get("/strip/a%2Fb?access_token=t0k&page=2"), OK),
    # a named location keeps the client's target as it came (nginx's valid_unparsed_uri)
    "named location": (_get("/named/a%2Fb/../c?q=%41"), OK),
    # a chunked body's trailers: read after the token was checked, never sent on
    "trailers after a verified head": (
        _get("/hs/t", "POST", auth=True)[:-2]
        + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
          b"Authorization: Bearer forged\r\nX-Admin: 1\r\nX-Sub: root\r\n\r\n", OK),
    # a head past proxy_buffer_size (a page by default): nginx's 502
    "head past proxy_buffer_size": (_get("/p/big"), b"HTTP/1.1 200 OK\r\nX-Big: "
                                    + b"b" * 5000 + b"\r\nContent-Length: 1\r\n\r\nx"),
    "not intercepted 403": (_get("/icpt/c"), b"HTTP/1.1 403 Forbidden\r\n"
                                             b"Content-Length: 1\r\n\r\nf"),
}


Outcome = tuple[bytes, bytes, bool, list[tuple[str, str]]]


def _run(tmp: Path, engine: str, path: str, request: bytes, response: bytes | None) -> Outcome:
    async def main() -> Outcome:
        sc = Scenario(tmp, engine, HTTP, path)
        try:
            group = "two" if request.split(b" ")[1].startswith(b"/next/") else "be"
            client, upstream = await sc.exchange(request, response, group)
            return client, upstream, sc.client_out.aborted, sc.log
        finally:
            sc.close()

    return asyncio.run(main())


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_both_exchange_paths_give_the_same_bytes(tmp_path: Path, engine: str,
                                                  name: str) -> None:
    request, response = SCENARIOS[name]
    fast = _run(tmp_path, engine, "callback", request, response)
    task = _run(tmp_path, engine, "task", request, response)
    assert fast[0], "the client got nothing"
    if name == "no token":
        assert not fast[1] and b" 401 " in fast[0]
    else:
        assert fast[1], "the request did not reach the pooled upstream connection"
    assert fast == task


def test_the_paths_are_really_different(tmp_path: Path) -> None:
    """Each path is the one named (else the comparison above proves nothing): the task
    exchange runs for "task" only, a callback exchange for "callback" only."""
    from fastgate.proxy import exchange

    calls: list[str] = []
    real = exchange.UpstreamExchange.proxy

    async def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append("task")
        return await real(self, *args, **kwargs)

    exchange.UpstreamExchange.proxy = spy  # type: ignore[method-assign]
    try:
        _run(tmp_path, "h11", "callback", *SCENARIOS["plain 200"])
        assert calls == []
        _run(tmp_path, "h11", "task", *SCENARIOS["plain 200"])
        assert calls == ["task"]
    finally:
        exchange.UpstreamExchange.proxy = real  # type: ignore[method-assign]


def test_what_the_header_and_intercept_rules_give(tmp_path: Path) -> None:
    client = _run(tmp_path, "h11", "callback", *SCENARIOS["hide and pass headers"])[0]
    assert b"Server: be/1\r\n" in client and b"X-Powered-By" not in client
    assert client.count(b"Server:") == 1 and client.count(b"Date:") == 1
    assert b"X-Other: 1\r\n" in client and client.lower().count(b"content-length") == 1
    client = _run(tmp_path, "h11", "callback",
                  *SCENARIOS["intercepted 404 to a named location"])[0]
    assert client.startswith(b"HTTP/1.1 200 ") and client.endswith(b"found")
    client = _run(tmp_path, "h11", "callback", *SCENARIOS["not intercepted 403"])[0]
    assert client.startswith(b"HTTP/1.1 403 ") and client.endswith(b"\r\n\r\nf")


def test_what_proxy_redirect_gives(tmp_path: Path) -> None:
    def location(name: str) -> bytes:
        client = _run(tmp_path, "httptools", "callback", *SCENARIOS[name])[0]
        return [line for line in client.split(b"\r\n") if line.startswith(b"Location:")][0]

    assert location("default redirect, URI part") == b"Location: http://a:8080/rd/next?x=1"
    client = _run(tmp_path, "h11", "task", *SCENARIOS["default redirect, URI part"])[0]
    assert b"Refresh: 5; url=/rd/r\r\n" in client
    assert location("default redirect, no URI part") == b"Location: http://a:8080/elsewhere"
    assert location("relative location left as it came") == b"Location: /login"
    assert location("redirect off") == b"Location: http://be/x"
    assert location("explicit redirect") == b"Location: https://a/ext/y"


@pytest.mark.parametrize("path", ["callback", "task"])
def test_an_error_page_goes_up_as_a_get(tmp_path: Path, path: str) -> None:
    upstream = _run(tmp_path, "httptools", path, *SCENARIOS["POST to an error page"])[1]
    assert upstream.startswith(b"GET /p/page HTTP/1.1\r\n")



@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", ["callback", "task"])
def test_set_args_replaces_the_clients_upstream(tmp_path: Path, engine: str,
                                                path: str) -> None:
    """What ``set $args`` removed never reaches the backend (it got the client's whole
    target before): the URI goes as nginx sends a changed one, the new arguments after
    it; a named location sends the target as the client wrote it."""
    upstream = _run(tmp_path, engine, path, *SCENARIOS["set $args"])[1]
    assert upstream.startswith(b"GET /strip/a/b?page=2 HTTP/1.1\r\n"), upstream
    assert b"t0k" not in upstream and b"access_token" not in upstream
    upstream = _run(tmp_path, engine, path, *SCENARIOS["named location"])[1]
    assert upstream.startswith(b"GET /named/a%2Fb/../c?q=%41 HTTP/1.1\r\n"), upstream


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", ["callback", "task"])
def test_an_absolute_form_target_goes_up_as_its_path(tmp_path: Path, engine: str,
                                                      path: str) -> None:
    """What follows the authority goes upstream, as nginx sends it: a "/" before a query
    that follows the authority at once (the target "?q=1" was sent before)."""
    upstream = _run(tmp_path, engine, path, *SCENARIOS["absolute-form"])[1]
    assert upstream.startswith(b"GET /p/a?q=1 HTTP/1.1\r\n"), upstream
    upstream = _run(tmp_path, engine, path,
                    *SCENARIOS["absolute-form, a query after the authority"])[1]
    assert upstream.startswith(b"GET /?q=1 HTTP/1.1\r\n"), upstream


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", ["callback", "task"])
def test_trailers_never_reach_the_upstream(tmp_path: Path, engine: str, path: str) -> None:
    """A request's trailer fields come after the phases checked its head: the upstream
    gets the verified head and the body, none of the trailers (nginx drops them)."""
    upstream = _run(tmp_path, engine, path, *SCENARIOS["trailers after a verified head"])[1]
    head, _, body = upstream.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /hs/t HTTP/1.1\r\n") and body.endswith(b"abc"), upstream
    assert b"forged" not in upstream and b"X-Admin" not in upstream
    assert b"root" not in upstream and head.count(b"Authorization:") == 1
    assert b"X-Sub: \"u1\"" in head


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", ["callback", "task"])
def test_a_head_past_proxy_buffer_size_is_a_502(tmp_path: Path, engine: str,
                                                path: str) -> None:
    client, _, _, log = _run(tmp_path, engine, path,
                             *SCENARIOS["head past proxy_buffer_size"])
    assert client.startswith(b"HTTP/1.1 502 ") and b"bbbb" not in client, client[:200]
    assert any("upstream sent too big header while reading response header from upstream"
               in line for _, line in log), log
