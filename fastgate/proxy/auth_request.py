"""The auth_request module: before the request goes on, a subrequest asks the location
``auth_request`` names (usually ``internal``, proxying to an authoriser) and its status
decides, as nginx's ``ngx_http_auth_request_module``: 2xx lets the request go on, 401
and 403 refuse it with that status (a 401 with the authoriser's ``WWW-Authenticate``),
anything else — an error, no answer — is a 500. ``auth_request_set`` variables are set
from the subrequest (``$upstream_http_*`` of the authoriser's answer) whatever it said.

The subrequest is nginx's: a GET for the auth URI, with the client's headers (the body
never goes: it is the main request's), ``$request_uri`` and ``$request_method`` of the
main request, its own ``$uri``. To a location that proxies, or answers with ``return``
(the usual authoriser), it goes straight (``proxy.subrequest``: no access phase, as
nginx skips it for subrequests; the response body read and dropped). To any other — a
``set $upstream ...; proxy_pass $upstream;`` (Authelia's), an ``if``, a ``rewrite``, a
static file — it runs the location's phases as nginx's does, its answer kept
(``proxy.capture``): its access phase runs too (a token check there still checks), but
for an ``auth_request`` it inherits, which is not asked again from within the one
it answers (nginx runs no access phase for it; fastgate asks any other).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.proxy.auth_basic import offer_challenge
from fastgate.variables import set_user_variable

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.engine import Headers
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.capture import Fetch
    from fastgate.proxy.request import Request
    from fastgate.proxy.subrequest import Subrequests

# a subrequest's memo: the auth_request URI it asks (which it does not ask in turn)
ASKING = ("auth_request",)


class AuthRequest:
    def __init__(self, subrequests: Subrequests, capture: Fetch) -> None:
        self.subrequests = subrequests
        self.capture = capture

    async def ask(self, conn: ClientSide, req: Request, loc: Location) -> int:
        """The authoriser's status for ``req``, its auth_request_set variables set."""
        uri = loc.settings.auth_request
        assert uri is not None
        if req.memo.get(ASKING) == uri:
            # the subrequest asking it, in a location that inherits it: nginx runs no
            # access phase for a subrequest (another authoriser is still asked)
            return 200
        sub, target = self.subrequests.make(conn, req, uri)
        headers: Headers | None
        if target.subrequest_direct or uri.startswith("@"):
            # nginx's auth subrequest: a GET, never with the client's body
            status = await self.subrequests.run(conn, req, sub, target, b"GET", b"",
                                                "auth request")
            headers = sub.upstream_headers
        else:
            kept = await self.capture(conn, req, uri, {ASKING: uri})
            assert kept.request is not None
            sub = kept.request
            # (no answer at all, the client gone: an error, as nginx's)
            status = kept.status or 500
            headers = kept.headers
        for name, value in loc.settings.auth_request_set:
            set_user_variable(req, name, value.render(sub))
        if status == 401:  # (its challenges after those of checks that refused before)
            for n, v in headers or ():
                if n.lower() == b"www-authenticate":
                    offer_challenge(req, v)
        return status
