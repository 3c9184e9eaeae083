"""The peer a Python team would write instead of fastgate: aiohttp on uvloop, PyJWT to
validate, a keep-alive ClientSession to forward. Used by bench/load.py only.

    python peer_aiohttp.py PORT BACKEND_URL SECRET
"""

from __future__ import annotations

import sys

import aiohttp
import jwt
import uvloop
from aiohttp import web


def main() -> None:
    port, backend, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    session: aiohttp.ClientSession | None = None

    async def startup(app: web.Application) -> None:
        nonlocal session
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=0))

    async def cleanup(app: web.Application) -> None:
        if session is not None:
            await session.close()

    async def handle(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            return web.Response(status=401)
        try:
            claims = jwt.decode(auth[7:].strip(), secret, algorithms=["HS256"])
        except jwt.InvalidTokenError:
            return web.Response(status=401)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "connection", "authorization")}
        headers["X-User-Id"] = str(claims.get("sub", ""))
        assert session is not None
        async with session.request(request.method, backend + request.path_qs,
                                   headers=headers, data=await request.read()) as r:
            body = await r.read()
            return web.Response(status=r.status, body=body,
                                headers={"Content-Type": r.headers.get("Content-Type", "")})

    app = web.Application()
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.router.add_route("*", "/{tail:.*}", handle)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
