"""``TlsOrPlain``: the first byte of a TLS address's connection chooses between the
handshake and plain HTTP, on uvloop (the gateway's loop) and on asyncio's."""

from __future__ import annotations

import asyncio
import gc
import ssl
from pathlib import Path
from typing import Any

import pytest
import uvloop
from helpers import self_signed

from fastgate.http.tls_or_plain import TlsOrPlain, is_tls

LOOPS = {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}


class App(asyncio.Protocol):
    """What the connection's application protocol is told."""

    def __init__(self) -> None:
        self.made: asyncio.BaseTransport | None = None
        self.data = b""
        self.plain = False
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made = transport

    def data_received(self, data: bytes) -> None:
        self.data += data
        assert self.made is not None
        self.made.write(b"echo:" + data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


def test_the_first_byte() -> None:
    assert is_tls(0x16) and is_tls(0x80) and is_tls(0xFF)
    assert not any(is_tls(c) for c in b"GETPOSTHEADOPTIONS\r\n")


def _contexts(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = self_signed(tmp, "localhost")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    return server, client


def _run(loop_name: str, tmp: Path, wait: float, plain_allowed: bool,
         talk: Any) -> tuple[list[App], Any]:
    """A server of TlsOrPlain connections, and ``talk(port, client_context)``'s result;
    the apps the connections made."""
    server_ctx, client_ctx = _contexts(tmp)
    loop = LOOPS[loop_name]()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))

    async def main() -> tuple[list[App], Any]:
        apps: list[App] = []

        def made() -> TlsOrPlain:
            app = App()
            apps.append(app)

            def plain() -> None:
                app.plain = True

            return TlsOrPlain(app, server_ctx, 5.0, wait, plain if plain_allowed else None)

        srv = await asyncio.get_running_loop().create_server(made, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        try:
            result = await asyncio.wait_for(talk(port, client_ctx), 10)
            # (an application never made is never told the connection is lost)
            await asyncio.wait_for(
                asyncio.gather(*(a.lost for a in apps if a.made is not None)), 10)
        finally:
            srv.close()
        return apps, result

    try:
        out = loop.run_until_complete(main())
        gc.collect()  # (a future whose exception nobody took would be reported here)
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    assert errors == []
    return out


async def _plain(port: int, _ctx: ssl.SSLContext) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    answer = await reader.read(100)
    writer.close()
    return answer


async def _tls(port: int, ctx: ssl.SSLContext) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                   server_hostname="localhost")
    writer.write(b"hello")
    answer = await reader.read(100)
    writer.close()
    return answer


@pytest.mark.parametrize("loop_name", LOOPS)
def test_plain_bytes_go_to_the_connection_as_they_came(tmp_path: Path,
                                                       loop_name: str) -> None:
    apps, answer = _run(loop_name, tmp_path, 5.0, True, _plain)
    [app] = apps
    assert app.plain and app.data == b"GET / HTTP/1.1\r\n\r\n"
    assert app.made is not None and app.made.get_extra_info("ssl_object") is None
    assert answer == b"echo:GET / HTTP/1.1\r\n\r\n"


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_handshake_is_the_loops_own(tmp_path: Path, loop_name: str) -> None:
    apps, answer = _run(loop_name, tmp_path, 5.0, True, _tls)
    [app] = apps
    assert not app.plain and app.data == b"hello" and answer == b"echo:hello"
    assert app.made is not None and app.made.get_extra_info("ssl_object") is not None


@pytest.mark.parametrize("loop_name", LOOPS)
def test_without_a_plain_path_plain_bytes_fail_the_handshake(tmp_path: Path,
                                                             loop_name: str) -> None:
    """A stream or mail address: the handshake gets them, fails, and the connection is
    closed; the failure is not reported as an exception nobody retrieved."""
    apps, answer = _run(loop_name, tmp_path, 5.0, False, _plain)
    [app] = apps
    assert answer == b"" and app.made is None and not app.plain


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_broken_handshake_closes(tmp_path: Path, loop_name: str) -> None:
    async def talk(port: int, _ctx: ssl.SSLContext) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x16\x03\x01\x00\x05hello")  # a record, but no ClientHello
        answer = await reader.read(100)
        writer.close()
        return answer

    apps, answer = _run(loop_name, tmp_path, 5.0, True, talk)
    assert apps[0].made is None and not apps[0].plain
    assert not answer.startswith(b"echo")


@pytest.mark.parametrize("loop_name", LOOPS)
def test_silence_is_closed_after_the_wait(tmp_path: Path, loop_name: str) -> None:
    async def talk(port: int, _ctx: ssl.SSLContext) -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = loop.time()
        answer = await reader.read(100)
        writer.close()
        return answer, loop.time() - started

    apps, (answer, waited) = _run(loop_name, tmp_path, 0.3, True, talk)
    assert answer == b"" and 0.2 < waited < 3 and apps[0].made is None
