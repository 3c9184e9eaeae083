"""A test backend, run as its own process: records every request it sees (JSON lines)
and misbehaves on demand, so end-to-end tests can check what reached it.

    python backend.py --port PORT --log FILE [--name NAME]

Paths:
  /stall?s=N        wait N seconds, then answer
  /close            close the connection without answering
  /badstatus        answer with a malformed status line
  /short            promise 100 bytes, send 10, close
  /extra            promise 5 bytes, send 10
  /midstall         send half of the body, then stall
  /big?n=N          N bytes of body, streamed, Content-Length
  /chunked?n=N      N bytes of body, streamed, chunked
  /status/NNN       answer with that status
  /ws               101 Switching Protocols, then echo raw bytes
  anything else     200 with a JSON echo of the request (body: size and sha256)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from urllib.parse import parse_qs, urlsplit

import h11


class Backend(asyncio.Protocol):
    connections = 0

    def __init__(self, log, name: str) -> None:
        self.log = log
        self.name = name

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        Backend.connections += 1
        self.cid = Backend.connections
        self.t = transport
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=256 * 1024)
        self.req = None
        self.hash = hashlib.sha256()
        self.size = 0
        self.raw = False
        self.paused = False

    def data_received(self, data: bytes) -> None:
        if self.raw:
            self.t.write(data)
            return
        self.conn.receive_data(data)
        self._events()

    def eof_received(self):
        if not self.raw:
            self.conn.receive_data(b"")
            self._events()
        return False

    def _events(self) -> None:
        while True:
            try:
                ev = self.conn.next_event()
            except h11.RemoteProtocolError:
                self.t.close()
                return
            if isinstance(ev, h11.Request):
                self.req, self.size, self.hash = ev, 0, hashlib.sha256()
                if ev.target.startswith(b"/ws"):
                    self._switch()
                    return
            elif isinstance(ev, h11.Data):
                self.size += len(ev.data)
                self.hash.update(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                asyncio.get_running_loop().create_task(self._respond())
                return
            else:
                return

    def _record(self) -> dict:
        req = self.req
        entry = {
            "backend": self.name,
            "connection": self.cid,
            "method": req.method.decode(),
            "target": req.target.decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in req.headers.raw_items()],
            "body_bytes": self.size,
            "body_sha256": self.hash.hexdigest(),
        }
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()
        return entry

    def _switch(self) -> None:
        self._record()
        out = self.conn.send(h11.InformationalResponse(status_code=101, headers=[
            ("upgrade", "websocket"), ("connection", "upgrade")]))
        data, _ = self.conn.trailing_data
        self.raw = True
        self.t.write(out)
        if data:
            self.t.write(data)

    async def _respond(self) -> None:
        entry = self._record()
        url = urlsplit(entry["target"])
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        send = self.conn.send
        t = self.t
        if path == "/stall":
            await asyncio.sleep(float(q.get("s", "30")))
        if path == "/close":
            t.close()
            return
        if path == "/badstatus":
            t.write(b"HTTP/1.1 OK-ish nonsense\r\n\r\n")
            t.close()
            return
        if path == "/short":
            t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
            await asyncio.sleep(0.05)
            t.close()
            return
        if path == "/extra":
            t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + b"y" * 10)
            return
        if path == "/midstall":
            t.write(send(h11.Response(status_code=200, headers=[("content-length", "1000")])))
            t.write(send(h11.Data(data=b"z" * 500)))
            await asyncio.sleep(60)
            return
        if path in ("/big", "/chunked"):
            n = int(q.get("n", "0"))
            headers = [("content-type", "application/octet-stream")]
            if path == "/big":
                headers.append(("content-length", str(n)))
            t.write(send(h11.Response(status_code=200, headers=headers)))
            block = b"b" * 65536
            left = n
            while left > 0:
                piece = block[:min(left, len(block))]
                t.write(send(h11.Data(data=piece)))
                left -= len(piece)
                while t.get_write_buffer_size() > 1 << 20:
                    await asyncio.sleep(0.001)
            t.write(send(h11.EndOfMessage()))
            self._next()
            return
        status = 200
        if "/status/" in path:
            status = int(path.rsplit("/", 1)[1])
        body = json.dumps(entry).encode()
        no_body = status in (204, 304) or entry["method"] == "HEAD"
        headers = [("content-type", "application/json"), ("x-backend", self.name),
                   ("server", "test-backend"), ("keep-alive", "timeout=5")]
        if not no_body:
            headers.append(("content-length", str(len(body))))
        elif entry["method"] == "HEAD":
            headers.append(("content-length", str(len(body))))
        t.write(send(h11.Response(status_code=status, headers=headers)))
        if not no_body:
            t.write(send(h11.Data(data=body)))
        t.write(send(h11.EndOfMessage()))
        self._next()

    def _next(self) -> None:
        if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE:
            self.t.close()
            return
        try:
            self.conn.start_next_cycle()
        except h11.LocalProtocolError:
            self.t.close()
            return
        self._events()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--name", default="backend")
    args = ap.parse_args()
    log = open(args.log, "a")
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Backend(log, args.name), "127.0.0.1", args.port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    sys.exit(0)
