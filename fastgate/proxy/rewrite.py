"""The rewrite module's phases (server rewrite, location rewrite): ``return``. It runs
before access, as in nginx: a location with both ``return`` and ``auth_jwt`` is not
protected (``fastgate -t`` warns)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastgate.proxy.respond import REDIRECTS
from fastgate.proxy.steps import DONE

if TYPE_CHECKING:
    from fastgate.config.model import Location, Return
    from fastgate.http.server import ClientConnection
    from fastgate.proxy.request import Request
    from fastgate.proxy.respond import Responder
    from fastgate.proxy.steps import Fail, Outcome, Phase


class Rewrite:
    def __init__(self, respond: Responder, fail: Fail) -> None:
        self.respond = respond
        self.fail = fail

    def handler(self, loc: Location) -> Phase | None:
        return self.location_return if loc.ret is not None else None

    def location_return(self, conn: ClientConnection, req: Request, loc: Location) -> Outcome:
        assert loc.ret is not None
        return self.answer(conn, req, loc, loc.ret)

    def answer(self, conn: ClientConnection, req: Request, loc: Location,
               ret: Return) -> Outcome:
        """``return code [text|URL]``: the request ends here."""
        code = ret.code
        if code == 444:  # nginx: close the connection without a response
            req.status = 444
            conn.abort()
            return DONE
        text = ret.text.render(req) if ret.text is not None else None
        if code in REDIRECTS and text is not None:
            self.respond.redirect(conn, req, loc, code, text)
            return DONE
        if text is None:
            if code >= 400:
                return self.fail(conn, req, loc, code)
            self.respond.send(conn, req, loc, code, b"", None)
            return DONE
        self.respond.send(conn, req, loc, code, text.encode("utf-8"), b"text/plain")
        return DONE
