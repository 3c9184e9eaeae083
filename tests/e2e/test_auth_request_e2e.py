"""auth_request: the external-authoriser pattern (oauth2-proxy and the like), end to end
on both engines, against an authoriser and an application backend that keep every
request they get. What matters most is what the application did *not* get."""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from pathlib import Path

import jwt as pyjwt
import pytest
from raw_backend import RawBackend, Received

SECRET = "auth-request-test-secret-0123456789abcdef"


def decide(req: Received) -> bytes:
    """The authoriser: "Bearer yes" is alice, "Bearer no" gets a challenge, "Bearer
    boom" an error; anything else is forbidden."""
    auth = (req.header(b"authorization") or [b""])[0]
    if auth == b"Bearer yes":
        return (b"HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Email: a@example.com\r\n"
                b"Content-Length: 7\r\n\r\nwelcome")
    if auth == b"Bearer no":
        return (b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="idp"\r\n'
                b"X-Auth-Reason: expired\r\nContent-Length: 0\r\n\r\n")
    if auth == b"Bearer boom":
        return b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\noops"
    return b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def pair() -> Iterator[tuple[RawBackend, RawBackend]]:
    authoriser, app = RawBackend(answer=decide), RawBackend()
    yield authoriser, app
    authoriser.stop()
    app.stop()


def _config(port: int, authoriser: int, app: int, dead: int) -> str:
    return f"""http {{ access_log off;
  upstream app {{ server 127.0.0.1:{app}; }}
  server {{ listen 127.0.0.1:{port};
    location = /auth {{ internal;
      proxy_pass http://127.0.0.1:{authoriser}/verify;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method; }}
    location = /dead-auth {{ internal; proxy_pass http://127.0.0.1:{dead}; }}
    location = /deny {{ internal; return 403; }}
    location @login {{ return 302 https://login.example.com/?rd=$request_uri; }}

    location /app/ {{ auth_request /auth;
      auth_request_set $user $upstream_http_x_auth_user;
      auth_request_set $reason $upstream_http_x_auth_reason;
      proxy_set_header X-User $user;
      add_header X-Reason $reason always;
      proxy_pass http://app; }}
    location /web/ {{ auth_request /auth; error_page 401 = @login; proxy_pass http://app; }}
    location /jwt/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
      auth_request /auth; proxy_pass http://app; }}
    location /either/ {{ satisfy any; auth_jwt on; auth_jwt_key "{SECRET}";
      auth_jwt_alg HS256; auth_request /auth; proxy_pass http://app; }}
    location /lan/ {{ satisfy any; allow 127.0.0.1; deny all; auth_request /auth;
      proxy_pass http://app; }}
    location /dead/ {{ auth_request /dead-auth; proxy_pass http://app; }}
    location /never/ {{ auth_request /deny; proxy_pass http://app; }}
    location /off/ {{ auth_request /auth;
      location /off/public/ {{ auth_request off; proxy_pass http://app; }} }}

    # authoriser locations that run their phases: Authelia's snippet (its upstream
    # in a variable), a check of its own before it proxies, one that inherits the
    # auth_request it answers for
    location = /authelia {{ internal;
      set $upstream_authelia http://127.0.0.1:{authoriser}/api/verify;
      proxy_pass_request_body off;
      proxy_pass $upstream_authelia;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Forwarded-Method $request_method; }}
    location = /gated-auth {{ internal;
      if ($http_x_block) {{ return 403; }}
      proxy_pass http://127.0.0.1:{authoriser}/verify; }}
    location /sso/ {{ auth_request /authelia;
      auth_request_set $user $upstream_http_x_auth_user;
      proxy_set_header X-User $user;
      proxy_pass http://app; }}
    location /gated/ {{ auth_request /gated-auth; proxy_pass http://app; }}
    location = /hop-auth {{ internal; rewrite ^ /guarded/ last; }}
    location /guarded/ {{ auth_request /deny; proxy_pass http://app; }}
    location /hop/ {{ auth_request /hop-auth; proxy_pass http://app; }}
    location /inherit/ {{ auth_request /inherit/auth; proxy_pass http://app;
      location = /inherit/auth {{ internal; set $v 1;
        proxy_pass http://127.0.0.1:{authoriser}/verify; }} }}
  }} }}"""


def _ask(port: int, method: str, path: str, auth: str = "", body: bytes | None = None,
         more: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": auth} if auth else {}
        headers.update(more or {})
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


@pytest.fixture
def gate(tmp_path: Path, gateway, free, pair) -> Callable[..., tuple[int, dict[str, str], bytes]]:  # type: ignore[no-untyped-def]
    authoriser, app = pair
    port = free()
    gateway(_config(port, authoriser.port, app.port, free()), port)

    def ask(method: str, path: str, auth: str = "", body: bytes | None = None,
            more: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return _ask(port, method, path, auth, body, more)

    return ask


def test_the_authoriser_decides(gate, pair) -> None:  # type: ignore[no-untyped-def]
    authoriser, app = pair
    status, _, _ = gate("POST", "/app/orders?id=1", "Bearer yes", b"the-order-body")
    assert status == 200
    [asked] = authoriser.requests()
    # nginx's subrequest: a GET for the auth URI, the client's headers, no body
    assert (asked.method, asked.target) == (b"GET", b"/verify")
    assert asked.header(b"x-original-uri") == [b"/app/orders?id=1"]
    assert asked.header(b"x-original-method") == [b"POST"]
    assert asked.header(b"content-length") == [] and asked.body == b""
    assert not authoriser.seen(b"the-order-body")
    [got] = app.requests()
    assert (got.method, got.target, got.body) == (b"POST", b"/app/orders?id=1",
                                                  b"the-order-body")
    assert got.header(b"x-user") == [b"alice"]  # auth_request_set from its answer

    status, headers, _ = gate("GET", "/app/x", "Bearer no")
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="idp"'
    assert headers["x-reason"] == "expired"  # set whatever the authoriser said
    assert gate("GET", "/app/x", "Bearer who")[0] == 403
    assert gate("GET", "/app/x", "Bearer boom")[0] == 500
    assert gate("GET", "/app/x")[0] == 403
    # the refused ones never reached the application
    assert [r.target for r in app.requests()] == [b"/app/orders?id=1"]


def test_the_auth_location_is_internal(gate, pair) -> None:  # type: ignore[no-untyped-def]
    authoriser, _ = pair
    assert gate("GET", "/auth", "Bearer yes")[0] == 404
    assert authoriser.requests() == []


def test_error_page_sends_the_refused_to_log_in(gate, pair) -> None:  # type: ignore[no-untyped-def]
    _, app = pair
    status, headers, _ = gate("GET", "/web/page?x=1", "Bearer no")
    assert status == 302
    assert headers["location"] == "https://login.example.com/?rd=/web/page?x=1"
    assert app.requests() == []


def test_with_auth_jwt_both_must_pass_and_a_forged_token_costs_no_subrequest(gate, pair) -> None:  # type: ignore[no-untyped-def]
    authoriser, app = pair
    good = "Bearer " + pyjwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    forged = "Bearer " + pyjwt.encode({"sub": "alice"}, "another-secret-0123456789abcdef",
                                      algorithm="HS256")
    assert gate("GET", "/jwt/a", forged)[0] == 401
    assert authoriser.requests() == []  # the token was refused first
    # a valid token still needs the authoriser's yes (it says 403 to a JWT it does not know)
    assert gate("GET", "/jwt/b", good)[0] == 403
    assert len(authoriser.requests()) == 1
    assert app.requests() == []


def test_satisfy_any(gate, pair) -> None:  # type: ignore[no-untyped-def]
    authoriser, app = pair
    good = "Bearer " + pyjwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    # a valid token is enough: the authoriser is not asked
    assert gate("GET", "/either/a", good)[0] == 200
    assert authoriser.requests() == []
    # no valid token, the authoriser says yes
    assert gate("GET", "/either/b", "Bearer yes")[0] == 200
    # neither: 401 (the token's refusal, preferred over the authoriser's 403)
    assert gate("GET", "/either/c", "Bearer who")[0] == 401
    # an allowed address passes without asking
    assert gate("GET", "/lan/d")[0] == 200
    assert len(authoriser.requests()) == 2
    assert [r.target for r in app.requests()] == [b"/either/a", b"/either/b", b"/lan/d"]


def test_an_authoriser_that_cannot_answer_is_a_500(gate, pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, app = pair
    assert gate("GET", "/dead/x", "Bearer yes")[0] == 500
    assert gate("GET", "/never/x", "Bearer yes")[0] == 403  # a return answers for it
    assert app.requests() == []


def test_auth_request_off_below(gate, pair) -> None:  # type: ignore[no-untyped-def]
    authoriser, app = pair
    assert gate("GET", "/off/public/x")[0] == 200
    assert authoriser.requests() == []


def test_an_authoriser_location_with_set_runs_its_phases(gate, pair) -> None:  # type: ignore[no-untyped-def]
    """Authelia's nginx snippet: ``set $upstream_authelia ...; proxy_pass
    $upstream_authelia;`` in the auth location (fastgate refused it at load): its
    rewrite phase runs for the subrequest, as nginx's, which is still a GET without
    the body, with the main request's method and URI."""
    authoriser, app = pair
    status, _, _ = gate("POST", "/sso/orders?id=1", "Bearer yes", b"the-order-body")
    assert status == 200
    [asked] = authoriser.requests()
    assert (asked.method, asked.target) == (b"GET", b"/api/verify")
    assert asked.header(b"x-forwarded-method") == [b"POST"]
    assert asked.header(b"x-original-url")[0].endswith(b"/sso/orders?id=1")
    assert asked.header(b"content-length") == [] and asked.body == b""
    [got] = app.requests()
    assert (got.method, got.body) == (b"POST", b"the-order-body")
    assert got.header(b"x-user") == [b"alice"]

    status, headers, _ = gate("GET", "/sso/x", "Bearer no")
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="idp"'
    assert gate("GET", "/sso/x", "Bearer boom")[0] == 500
    assert gate("GET", "/sso/x")[0] == 403
    assert gate("GET", "/authelia", "Bearer yes")[0] == 404  # (internal)
    # what was refused never reached the application
    assert [r.target for r in app.requests()] == [b"/sso/orders?id=1"]


def test_a_check_in_the_authoriser_location_holds(gate, pair) -> None:  # type: ignore[no-untyped-def]
    # (why such locations were refused before: an "if ... return 403" skipped)
    authoriser, app = pair
    assert gate("GET", "/gated/x", "Bearer yes", more={"X-Block": "1"})[0] == 403
    assert authoriser.requests() == [] and app.requests() == []
    assert gate("GET", "/gated/x", "Bearer yes")[0] == 200
    assert gate("GET", "/gated/x", "Bearer who")[0] == 403
    assert len(authoriser.requests()) == 2
    assert [r.target for r in app.requests()] == [b"/gated/x"]


def test_the_authoriser_location_is_not_asked_of_itself(gate, pair) -> None:  # type: ignore[no-untyped-def]
    # /inherit/auth inherits "auth_request /inherit/auth": nginx runs no access phase
    # for the subrequest, so it is asked once, not until subrequests nest too deep
    authoriser, app = pair
    assert gate("GET", "/inherit/x", "Bearer yes")[0] == 200
    assert len(authoriser.requests()) == 1
    assert gate("GET", "/inherit/x", "Bearer no")[0] == 401
    assert [r.target for r in app.requests()] == [b"/inherit/x"]


def test_an_authoriser_location_that_goes_elsewhere_is_checked_there(gate, pair) -> None:  # type: ignore[no-untyped-def]
    # /hop-auth rewrites its subrequest to /guarded/, whose own auth_request says no:
    # that one is asked (only the auth_request a subrequest is making is not asked
    # again), so neither the subrequest nor the request reaches the application
    _, app = pair
    assert gate("GET", "/hop/x", "Bearer yes")[0] == 403
    assert app.requests() == []
