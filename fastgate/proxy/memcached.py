"""``memcached_pass``'s content handler, as nginx's ``ngx_http_memcached_module``: the
value of ``$memcached_key`` is asked of memcached; a hit is a 200 with the value as the
body (the Content-Type as a ``return``'s: ``types`` by the URI's extension, else
``default_type``; ``Content-Encoding: gzip`` when its flags have ``memcached_gzip_flag``),
a miss is nginx's 404 (through ``error_page``: the usual "try memcached, else the
application" pattern), an empty key a 500, a bad answer a 502."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastgate.http import memcached
from fastgate.http.cgi import AppConnection
from fastgate.http.engine import ProtocolError
from fastgate.proxy.cgi import CgiModule
from fastgate.proxy.failure import TIMED_OUT
from fastgate.proxy.steps import DONE, finished
from fastgate.variables import user_variable

if TYPE_CHECKING:
    from fastgate.config.model import Location
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request
    from fastgate.proxy.steps import Step
    from fastgate.proxy.upstream import Peer

_KEY = user_variable("memcached_key")


def _drop(piece: bytes) -> None:
    """A piece of a body nobody reads (never kept: an upload's size costs nothing)."""


class MemcachedModule(CgiModule):
    """The content handler of locations with ``memcached_pass`` (the CGI family's way
    to an application: its server, its connection, its failures)."""

    async def _exchange(self, conn: ClientSide, req: Request, loc: Location) -> Step:
        s = loc.settings
        if req.head.content_length != 0:  # read and dropped: memcached gets no body
            if not await self.upstream.read_body_to(conn, req, loc, _drop):
                return DONE
        key = _KEY(req).encode("utf-8", "surrogateescape")
        if not key:
            self.w.log.error('the "$memcached_key" variable is not set', conn, req)
            return await finished(self.fail(conn, req, loc, 500))
        return await self.talk(
            conn, req, loc, s.memcached_connect_timeout, s.memcached_socket_keepalive,
            lambda app, peer, started: self._ask(conn, req, loc, peer, app, key, started))

    async def _ask(self, conn: ClientSide, req: Request, loc: Location, peer: Peer | None,
                   app: AppConnection, key: bytes, started: float) -> Step:
        s = loc.settings
        try:
            await app.send(memcached.request(key), s.memcached_send_timeout)
            answer = memcached.Answer(memcached.escape(key), s.memcached_buffer_size)
            while True:
                data = await app.read(s.memcached_read_timeout)
                if not data:
                    return await self._failed(conn, req, loc, peer, 502, "upstream "
                                              "prematurely closed connection while reading "
                                              "response header from upstream")
                got = answer.feed(data)
                if got is not None:
                    break
        except TimeoutError:
            return await self._failed(conn, req, loc, peer, 504, f"{TIMED_OUT} while "
                                      "reading response header from upstream")
        except OSError as e:
            return await self._failed(conn, req, loc, peer, 502, f"recv() failed "
                                      f"({e.errno}: {e.strerror}) while reading upstream")
        except ProtocolError as e:
            return await self._failed(conn, req, loc, peer, 502, e.reason)
        req.upstream_time = time.monotonic() - started
        flags, value = got
        if value is None:
            self.w.log.info(f'key: "{memcached.escape(key).decode("latin-1")}" was not '
                            "found by memcached", conn, req)
            req.upstream_status = "404"
            return await finished(self.fail(conn, req, loc, 404))
        req.upstream_status = "200"
        extra = ([(b"Content-Encoding", b"gzip")]
                 if s.memcached_gzip_flag and flags & s.memcached_gzip_flag else None)
        self.respond.send(conn, req, loc, 200, value, self.respond.content_type(req, s),
                          extra)
        return DONE
