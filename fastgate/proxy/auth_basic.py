"""The auth_basic module: the user and password of ``Authorization: Basic`` checked
against the location's htpasswd file (``fastgate.config.htpasswd``), as nginx's
``ngx_http_auth_basic_module``: no or unreadable credentials, an unknown user or a wrong
password are 401 with ``WWW-Authenticate: Basic realm="..."``; a file that cannot be
read is a 500.

bcrypt and SHA-crypt hashes are slow on purpose (hundreds of milliseconds at their usual
cost): they are checked in a thread, never on the event loop, and a user and password
that matched are remembered (by a SHA-256 of the password, beside the hash they matched:
a password changed in the file is checked again), so only the first request of a client
pays for it. nginx checks every request.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING

from fastgate.config.htpasswd import SLOW, PasswordFile
from fastgate.variables import basic_credentials

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request
    from fastgate.proxy.runtime import Runtime

PASSED, REFUSED, FAILED = 0, 401, 500
_REMEMBERED = 4096  # matches kept; past it the memory starts over
_FILES = 256  # password files kept open (paths with variables); past it, forgotten


class AuthBasic:
    def __init__(self, worker: Runtime) -> None:
        self.w = worker
        self._files: dict[str, PasswordFile] = {}
        self._matched: set[tuple[str, str, str, bytes]] = set()

    async def check(self, conn: ClientSide, req: Request, loc: Location) -> int:
        """PASSED, REFUSED (the challenge set) or FAILED."""
        s = loc.settings
        assert s.auth_basic is not None and s.auth_basic_user_file is not None
        realm = s.auth_basic.render(req)
        if realm == "off":  # a variable's value may turn it off, as in nginx
            return PASSED
        creds = basic_credentials(req.head.headers)
        if creds is None:
            self.w.log.info("no user/password was provided for basic authentication",
                            conn, req)
            return self._refuse(req, realm)
        user, password = creds
        given = s.auth_basic_user_file
        path = given if isinstance(given, str) else given.resolve(req)
        try:
            entry = self._file(path).lookup(user)
        except OSError as e:
            self.w.log.error(f'open() "{path}" failed ({e.errno}: {e.strerror})', conn, req)
            return FAILED
        if entry is None:
            self.w.log.error(f'user "{user}" was not found in "{path}"', conn, req)
            return self._refuse(req, realm)
        key = (path, user, entry.hash, hashlib.sha256(password).digest())
        if key in self._matched:
            return PASSED
        if entry.scheme in SLOW:
            ok = await asyncio.get_running_loop().run_in_executor(None, entry.verify, password)
        else:
            ok = entry.verify(password)
        if not ok:
            self.w.log.error(f'user "{user}": password mismatch', conn, req)
            return self._refuse(req, realm)
        if len(self._matched) >= _REMEMBERED:
            self._matched.clear()
        self._matched.add(key)
        return PASSED

    def _file(self, path: str) -> PasswordFile:
        f = self._files.get(path)
        if f is None:
            if len(self._files) >= _FILES:  # paths from variables: kept within bounds
                self._files.clear()
            f = self._files[path] = PasswordFile(path)
        return f

    @staticmethod
    def _refuse(req: Request, realm: str) -> int:
        quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
        challenge = f'Basic realm="{quoted}"'.encode("utf-8", "surrogateescape")
        offer_challenge(req, challenge)
        return REFUSED


def offer_challenge(req: Request, challenge: bytes) -> None:
    """A ``WWW-Authenticate`` challenge for the request's 401, after those of the checks
    that refused before (satisfy any: a token check's, the password's, the
    authoriser's), each on a line of its own, in the order the checks ran, as nginx's
    modules push theirs."""
    prior = req.challenge
    if prior is None:
        req.challenge = challenge
    else:
        req.challenge = (*(prior if type(prior) is tuple else (prior,)), challenge)
