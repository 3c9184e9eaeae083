"""``*_socket_keepalive``: the connections each module makes to its servers have
SO_KEEPALIVE (the system probes them when idle) with ``on``, and not by default, as
nginx's. Seen from outside, in the kernel's table of TCP sockets: a socket with
SO_KEEPALIVE has its keep-alive timer armed (/proc/net/tcp's ``tr`` 2)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from e2e_util import Listener, raw_exchange


class Silent(Listener):
    """A server that takes connections and never answers (each is held open until
    ``release``), so the gateway's connection to it stays there to be looked at."""

    def __init__(self) -> None:
        self.held: list[socket.socket] = []
        super().__init__(self.held.append)

    def release(self) -> None:
        """Close the connections held: the gateway's exchange ends now (a 502)."""
        for c in self.held:
            c.close()

    def stop(self) -> None:
        super().stop()
        self.release()


@pytest.fixture
def silent() -> Iterator[Silent]:
    s = Silent()
    yield s
    s.stop()


def _timers_towards(port: int) -> list[int]:
    """The ``tr`` (timer kind) of each IPv4 TCP socket connected to 127.0.0.1:``port``
    from elsewhere: the gateway's side of its connections to that server."""
    found = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, timer = fields[1], fields[2], fields[5]
            if (remote == f"0100007F:{port:04X}" and not local.endswith(f":{port:04X}")
                    and fields[3] == "01"):  # (established)
                found.append(int(timer.split(":")[0], 16))
    return found


LOCATIONS = {
    "proxy": "proxy_read_timeout 1s; proxy_pass http://127.0.0.1:{p};",
    "fastcgi": "fastcgi_read_timeout 1s; fastcgi_pass 127.0.0.1:{p};",
    "uwsgi": "uwsgi_read_timeout 1s; uwsgi_pass 127.0.0.1:{p};",
    "scgi": "scgi_read_timeout 1s; scgi_pass 127.0.0.1:{p};",
    "memcached": "set $memcached_key k; memcached_read_timeout 1s; "
                 "memcached_pass 127.0.0.1:{p};",
    "grpc": "grpc_read_timeout 1s; grpc_pass grpc://127.0.0.1:{p};",
}


@pytest.mark.parametrize("module", sorted(LOCATIONS))
@pytest.mark.parametrize("setting", ["on", "off", None])
def test_socket_keepalive_sets_so_keepalive_on_the_connection(
        module: str, setting: str | None, silent: Silent, gateway, free) -> None:  # type: ignore[no-untyped-def]
    port = free()
    directive = f"{module}_socket_keepalive {setting};" if setting else ""
    gateway(f"""http {{ access_log off; server {{ listen 127.0.0.1:{port};
      location / {{ {directive} {LOCATIONS[module].format(p=silent.port)} }} }} }}""", port)
    request = (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: application/grpc\r\n"
               b"Content-Length: 0\r\nConnection: close\r\n\r\n" if module == "grpc" else
               b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    answered: list[bytes] = []
    client = threading.Thread(target=lambda: answered.append(
        raw_exchange(port, request, timeout=8)), daemon=True)
    client.start()
    timers: list[int] = []
    deadline = time.monotonic() + 2.5
    while not timers and time.monotonic() < deadline:
        time.sleep(0.05)
        timers = _timers_towards(silent.port)
    assert timers, "the gateway never connected"
    time.sleep(0.1)  # (what it sent acknowledged: no retransmission timer in the way)
    timers = _timers_towards(silent.port)
    assert timers == ([2] if setting == "on" else [0]), timers
    silent.release()  # (the exchange ends at once, not at its read timeout)
    client.join(8)
    assert answered and answered[0].startswith((b"HTTP/1.1 502", b"HTTP/1.1 504")), answered
