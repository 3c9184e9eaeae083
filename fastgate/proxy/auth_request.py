"""The auth_request module: before the request goes on, a subrequest asks the location
``auth_request`` names (usually ``internal``, proxying to an authoriser) and its status
decides, as nginx's ``ngx_http_auth_request_module``: 2xx lets the request go on, 401
and 403 refuse it with that status (a 401 with the authoriser's ``WWW-Authenticate``),
anything else — an error, no answer — is a 500. ``auth_request_set`` variables are set
from the subrequest (``$upstream_http_*`` of the authoriser's answer) whatever it said.

The subrequest is nginx's: a GET for the auth URI, with the client's headers (the body
never goes: it is the main request's), ``$request_uri`` and ``$request_method`` of the
main request, its own ``$uri``; its access phase does not run (nginx skips it for
subrequests) and its response body is read and dropped. The location it reaches
proxies (its proxy_* settings, pool, timeouts) or answers with ``return`` (checked at
load).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.variables import set_user_variable

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request
    from fastgate.proxy.subrequest import Subrequests


class AuthRequest:
    def __init__(self, subrequests: Subrequests) -> None:
        self.subrequests = subrequests

    async def ask(self, conn: ClientSide, req: Request, loc: Location) -> int:
        """The authoriser's status for ``req``, its auth_request_set variables set."""
        uri = loc.settings.auth_request
        assert uri is not None
        sub, target = self.subrequests.make(conn, req, uri)
        # nginx's auth subrequest: a GET, never with the client's body
        status = await self.subrequests.run(conn, req, sub, target, b"GET", b"",
                                            "auth request")
        for name, value in loc.settings.auth_request_set:
            set_user_variable(req, name, value.render(sub))
        if status == 401:
            challenges = [v for n, v in sub.upstream_headers or ()
                          if n.lower() == b"www-authenticate"]
            req.challenge = b", ".join(challenges) if challenges else None
        return status
