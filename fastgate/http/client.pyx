# cython: language_level=3
# cython: embedsignature=True
"""One HTTP/1.1 connection to an upstream server, as the client side: the engine frames
the requests and parses the responses, the write gate applies back-pressure, and the
layers above send and receive through its methods, never through the engine or the
transport. A 101 turns it into one side of a raw tunnel.

A response reaches either the task path (``begin()``'s future for the head, then
``body``, a ``BodyBuffer``) or a callback exchange that ``attach``-ed itself (the
engine then calls it directly, one call per event instead of two).

A C class (its fields and the pool's per-request calls without a Python frame): the
callback exchange (``proxy.fast``) and the pool (``proxy.upstream``) call it on every
request. Its types for mypy are in client.pyi.
"""

import asyncio
import socket

from fastgate.errors import UpstreamError
from fastgate.http.events cimport ClientEvents
from fastgate.http.httptools_engine cimport HttptoolsClient
from fastgate.http.buffered_body import KeptBodyError
from fastgate.http.engines import client_engine
from fastgate.http.flow import BodyBuffer, StreamClosed, WriteGate


def probe_when_idle(transport):
    """SO_KEEPALIVE on a connection's socket (nginx's ``*_socket_keepalive``): the
    system probes it when idle, with its own timings, so a peer that vanished is
    found."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        except OSError:  # (closed already: the exchange finds that out itself)
            pass


cdef class HttpClientConnection:
    """Carries one exchange at a time; ``engine_name`` names the HTTP/1.1 engine.
    (An asyncio protocol by its methods: a C class cannot derive from
    ``asyncio.Protocol``, and nothing asks.)"""

    def __init__(self, str engine_name):
        self.engine = client_engine(engine_name, self)
        self.transport = None
        self.gate = WriteGate()
        self.closed = False
        self.received = 0
        self.sent = 0
        self.head = None  # asyncio.Future[ResponseHead] of the task path's exchange
        self.body = None  # BodyBuffer
        self.tunnel = None  # the client connection once a 101 switched protocols
        self.sink = None  # a callback exchange that takes the events

    def probe_when_idle(self):
        """SO_KEEPALIVE on this connection's socket (``*_socket_keepalive``)."""
        probe_when_idle(self.transport)

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if self.tunnel is not None:
            self.tunnel.tunnel_write(data)
            return
        self.received += len(data)
        sink = self.sink
        if sink is not None:
            engine = self.engine
            try:
                if type(engine) is HttptoolsClient:  # (a C call)
                    (<HttptoolsClient>engine).feed(data)
                else:
                    engine.feed(data)
                if self.sink is sink:
                    if isinstance(sink, ClientEvents):  # (a C call)
                        (<ClientEvents>sink).flush()
                    else:
                        sink.flush()
            except Exception as e:  # a bug costs the exchange, never the event loop
                sink.crashed(e)
            return
        if self.head is None:  # idle in the pool: nothing is expected
            self.close()
            return
        self.engine.feed(data)

    def eof_received(self):
        if self.tunnel is not None:
            self.tunnel.tunnel_eof()
            return True
        if self.head is not None or self.sink is not None:
            self.engine.feed(b"")
        return False

    def connection_lost(self, exc):
        self.closed = True
        error = UpstreamError("reset", "upstream closed the connection")
        self.gate.close(StreamClosed("upstream closed"))
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        if self.body is not None:
            self.body.fail(error)
        if self.tunnel is not None:
            self.tunnel.tunnel_close()
        sink = self.sink
        if sink is not None:
            try:
                sink.upstream_lost()
            except Exception as e:
                sink.crashed(e)

    def pause_writing(self):
        self.gate.pause()

    def resume_writing(self):
        self.gate.resume()

    # --- the engine's callbacks -------------------------------------------------------------

    def on_response(self, head):
        if self.sink is not None:
            self.sink.on_response(head)
            return
        assert self.transport is not None
        self.body = BodyBuffer(self.transport.pause_reading, self.transport.resume_reading)
        if self.head is not None and not self.head.done():
            self.head.set_result(head)

    def on_informational(self, head):
        if self.sink is not None:
            self.sink.on_informational(head)
            return
        if head.status == 101 and self.head is not None and not self.head.done():
            self.head.set_result(head)
        # other 1xx (100, 103) are not forwarded, as nginx does

    def on_body(self, data):
        if self.sink is not None:
            self.sink.on_body(data)
        elif self.body is not None:
            self.body.push(data)

    def on_end(self):
        if self.sink is not None:
            self.sink.on_end()
        elif self.body is not None:
            self.body.finish()

    def on_whole(self, head, body):
        self.on_response(head)
        if body:
            self.on_body(body)
        self.on_end()

    def on_error(self, error):
        if self.sink is not None:
            self.sink.on_error(error)
            return
        err = UpstreamError("invalid", error.upstream_line)
        if self.head is not None and not self.head.done():
            self.head.set_exception(err)
        elif self.body is not None:
            self.body.fail(err)
        self.close()

    # --- receiving ---------------------------------------------------------------------------

    cpdef attach(self, sink):
        """A callback exchange takes this connection's events straight from the engine."""
        self.sink = sink
        engine = self.engine
        if type(engine) is HttptoolsClient:
            (<HttptoolsClient>engine).bind(sink)
        else:
            engine.bind(sink)

    cpdef detach(self):
        self.sink = None
        engine = self.engine
        if type(engine) is HttptoolsClient:
            (<HttptoolsClient>engine).bind(self)
        else:
            engine.bind(self)

    def begin(self):
        """The task path's exchange starts: the response head will be this future's."""
        self.head = asyncio.get_running_loop().create_future()
        self.body = None
        return self.head

    cpdef bint ready_for_next(self):
        """After an exchange: if its response ended cleanly and nothing followed it,
        the connection is made ready to carry another request (True)."""
        engine = self.engine
        cdef bint fast = type(engine) is HttptoolsClient  # (then C calls)
        if fast:
            if not (<HttptoolsClient>engine).reusable or (<HttptoolsClient>engine).leftover():
                return False
        elif not engine.reusable or engine.leftover():
            return False
        self.head = None
        self.body = None
        if fast:
            (<HttptoolsClient>engine).start_next()
        else:
            engine.start_next()
        return True

    def trailing_data(self):
        """What the server sent after a 101's head: the tunnel's first bytes."""
        return bytes(self.engine.trailing_data())

    cpdef pause_reading(self):
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    cpdef resume_reading(self):
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # --- sending -----------------------------------------------------------------------------

    cpdef limit_head(self, Py_ssize_t size):
        """The longest response head the next request takes (proxy_buffer_size):
        past it, a 502 (nginx's "upstream sent too big header")."""
        if size != self._head_limit:  # (the engine's attribute, set only on a change)
            self._head_limit = size
            self.engine.head_limit = size

    cpdef send_request(self, bytes method, bytes target, list headers, length,
                       bytes body=b""):
        """A whole request, in one write (``length``: its Content-Length, -1 for none)."""
        engine = self.engine
        cdef HttptoolsClient fast = None
        if type(engine) is HttptoolsClient:  # (C calls)
            fast = <HttptoolsClient>engine
            out = fast.send_head(method, target, headers, length)
            if body:
                out += fast.send_body(body)
        else:
            out = engine.send_head(method, target, headers, length)
            if body:
                out += engine.send_body(body)
        if self.transport is not None and not self.closed:  # (write(), inline: hot)
            out += fast.send_end() if fast is not None else engine.send_end()
            self.sent += len(out)
            self.transport.write(out)

    def send_head(self, method, target, headers, length):
        """A request head; its body follows with ``send_body``/``send_end`` (``length``
        None: chunked), or a tunnel after a 101."""
        self.write(self.engine.send_head(method, target, headers, length))

    def send_body(self, data):
        self.write(self.engine.send_body(data))

    def send_end(self):
        self.write(self.engine.send_end())

    async def send_kept_body(self, body, timeout):
        """A body kept in a file, read back as fast as the server takes it, then the
        request's end: TimeoutError after ``timeout`` seconds without progress,
        StreamClosed when the connection is lost, KeptBodyError (the connection
        aborted: the request cannot be whole) when the file cannot be read back."""
        try:
            for piece in body.pieces():
                self.send_body(piece)
                await self.wait_writable(timeout)
        except KeptBodyError:
            self.abort()
            raise
        self.send_end()

    def wait_writable(self, timeout):
        """Awaitable: done when the server takes more; TimeoutError after ``timeout``,
        StreamClosed when the connection is lost."""
        return self.gate.wait(timeout)

    cpdef write(self, data):
        if data and self.transport is not None and not self.closed:
            self.sent += len(data)
            self.transport.write(data)

    cpdef close(self):
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    cpdef abort(self):
        if self.transport is not None:
            self.closed = True
            self.transport.abort()
