"""Demo mode: ``fastgate`` with no arguments.

A gateway on 127.0.0.1:8080 protects ``/api/`` (HS256, a demo secret) in front of a
built-in echo backend on a free loopback port; it prints a valid token and curl lines
that get 200 and 401. Ctrl-C stops it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

import h11

from fastgate.jwt import HMACKey
from fastgate.token_tool import encode

DEMO_SECRET = "fastgate-demo-secret-change-me-0123456789"
DEMO_PORT = 8080

CONFIG = """\
# fastgate demo: /api/ needs a valid HS256 token, /public/ does not
events {{ worker_connections 1024; }}
http {{
  access_log stderr;
  upstream echo {{ server 127.0.0.1:{backend}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{port};
    auth_jwt_key "{secret}";
    auth_jwt_alg HS256;
    location /api/ {{
      auth_jwt on;
      proxy_set_header X-User-Id $jwt_claim_sub;
      proxy_set_header X-User-Role $jwt_claim_role;
      proxy_pass http://echo;
    }}
    location /public/ {{ proxy_pass http://echo; }}
    location = /health {{ return 200 "OK\\n"; }}
    location = /status {{ fastgate_status; }}
  }}
}}
"""


class EchoProtocol(asyncio.Protocol):
    """Answers every request with a JSON echo of its method, target, headers and body
    size. Small and strict (h11), enough for a demo."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.t = transport
        self.conn = h11.Connection(h11.SERVER)
        self.req: h11.Request | None = None
        self.size = 0

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        while True:
            try:
                ev = self.conn.next_event()
            except h11.RemoteProtocolError:
                self.t.close()
                return
            if isinstance(ev, h11.Request):
                self.req, self.size = ev, 0
            elif isinstance(ev, h11.Data):
                self.size += len(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                self._respond()
                if self.conn.our_state is h11.MUST_CLOSE:
                    self.t.close()
                    return
                self.conn.start_next_cycle()
            else:
                return

    def _respond(self) -> None:
        assert self.req is not None
        body = json.dumps({
            "method": self.req.method.decode(),
            "target": self.req.target.decode("latin-1"),
            "headers": {k.decode(): v.decode("latin-1") for k, v in self.req.headers},
            "body_bytes": self.size,
        }, indent=2).encode() + b"\n"
        out = self.conn.send(h11.Response(status_code=200, headers=[
            ("content-type", "application/json"), ("content-length", str(len(body)))]))
        out += self.conn.send(h11.Data(data=body)) + self.conn.send(h11.EndOfMessage())
        self.t.write(out)


def start_echo_backend() -> int:
    """Serve the echo backend on a free loopback port in a daemon thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port: int = sock.getsockname()[1]

    def serve() -> None:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(loop.create_server(EchoProtocol, sock=sock))
        loop.run_forever()

    threading.Thread(target=serve, name="echo-backend", daemon=True).start()
    return port


def demo_token(secret: str, ttl: int = 3600) -> str:
    key = HMACKey(secret.encode())
    payload = {"sub": "demo-user", "role": "admin", "exp": int(time.time()) + ttl}
    return encode({"alg": "HS256", "typ": "JWT"}, payload, lambda m: key.sign("HS256", m))


def port_free(port: int) -> str | None:
    """None when 127.0.0.1:``port`` can be bound, else why not (nginx's words)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            return f"bind() to 127.0.0.1:{port} failed ({e.errno}: {e.strerror})"
    return None


def main(port: int = DEMO_PORT) -> int:
    why = port_free(port)
    if why is not None:
        print(f"fastgate: [emerg] {why}: the demo needs this port; stop what holds it, "
              "or run fastgate with a configuration (-c FILE)", file=sys.stderr)
        return 1
    workdir = tempfile.mkdtemp(prefix="fastgate-demo-")
    try:
        return _run(port, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(port: int, workdir: str) -> int:
    from fastgate.ops.run import run

    backend = start_echo_backend()
    path = os.path.join(workdir, "demo.conf")
    with open(path, "w") as f:
        f.write(CONFIG.format(backend=backend, port=port, secret=DEMO_SECRET))
    token = demo_token(DEMO_SECRET)
    base = f"http://127.0.0.1:{port}"
    print(f"""fastgate demo: gateway on {base}, echo backend on 127.0.0.1:{backend}
config: {path} (removed at exit)

a valid token (HS256, sub=demo-user, role=admin, valid 1 hour):
  {token}

  curl -i {base}/api/hello -H 'Authorization: Bearer {token}'   # 200, echoed by the backend
  curl -i {base}/api/hello                                    # 401, never reaches the backend
  curl -i {base}/public/hello                                 # 200, no token needed
  curl -s {base}/status                                       # metrics

Ctrl-C stops it.""", flush=True)
    code = run(path, lambda message: print(f"fastgate: {message}", file=sys.stderr))
    if code == 0:
        print("fastgate demo: stopped", file=sys.stderr)
    return code
