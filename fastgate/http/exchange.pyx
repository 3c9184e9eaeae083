# cython: language_level=3
# cython: embedsignature=True
"""The one way the layers above talk to a client connection while they answer its
request: frame a response (``respond`` for its head, ``body``, ``end``: bytes, so that
a caller can write one response in one ``write``), ``write`` it, wait until the client
can take more, ``abort``, or hand the connection over to a tunnel after a 101.

One per connection, made by ``ClientConnection`` when it has its engine and transport;
the engine, the transport and the write gate stay behind it. It is a C class because
the callback exchange (``proxy.fast``) frames and writes through it for every upstream
read, and cimports it to make those calls without a Python frame.

``listener`` is the callback exchange in progress, if any: it is told when the client
can take more of its response (``client_writable``) and when the client is gone
(``client_gone``), which ends it as nginx ends a request whose client closed.
"""


cdef class Exchange:
    def __init__(self, conn, engine, transport, gate):
        self.conn = conn
        self.engine = engine
        self.transport = transport
        self.gate = gate
        self.listener = None
        self.last = False
        self.began = False

    # --- framing: the engine turns these into the bytes of this connection's protocol ----

    cpdef bytes respond(self, int status, bytes reason, list headers, object length,
                        bint head_only=False, bint chunked=True):
        """A response head (``length`` None: the engine frames the body, chunked on
        HTTP/1.1 unless not ``chunked`` — chunked_transfer_encoding off — then ended by
        the connection's close). Raises ProtocolError when the engine refuses a header."""
        if self.last:
            # decided once the request's location was known (keepalive_requests...)
            self.last = False
            self.engine.no_keep_alive()
        engine = self.engine
        if type(engine) is HttptoolsServer:  # (a C call)
            return (<HttptoolsServer>engine).send_head(status, reason, headers, length,
                                                       head_only, chunked)
        return engine.send_head(status, reason, headers, length, head_only, chunked)

    cpdef bytes body(self, data):
        engine = self.engine
        if type(engine) is HttptoolsServer:
            return (<HttptoolsServer>engine).send_body(data)
        return engine.send_body(data)

    cpdef bytes end(self, trailers=None):
        """The end of the response body, with ``trailers`` where it is chunked."""
        engine = self.engine
        if type(engine) is HttptoolsServer:
            return (<HttptoolsServer>engine).send_end(trailers)
        return engine.send_end(trailers)

    def expect_continue(self):
        """The "100 Continue" a client that asked for it waits for before it sends
        its body (b"" when it did not ask)."""
        return self.engine.send_continue()

    def switch(self, int status, bytes reason, list headers):
        """A protocol switch's head, and the bytes the client sent after its request
        (they belong to the new protocol)."""
        return self.engine.switch_protocol(status, reason, headers)

    # --- the connection ------------------------------------------------------------------

    cpdef write(self, data):
        if data and not self.conn.closed and self.transport is not None:
            self.began = True
            self.transport.write(data)

    @property
    def closed(self):
        return self.conn.closed

    cpdef bint paused(self):
        """The client is not taking what is written: the writer should wait."""
        return self.gate.paused

    def wait_writable(self, float timeout):
        """Awaitable: done when the client can take more; TimeoutError after
        ``timeout`` seconds, the connection's error if it is lost."""
        return self.gate.wait(timeout)

    def abort(self):
        """Cut the connection: a response that cannot be completed must not look
        complete."""
        self.conn.abort()

    def tunnel(self, upstream, bytes client_rest, bytes upstream_rest):
        """After a 101: bytes pass unchanged between the client and ``upstream`` (which
        has ``write``, and whose ``tunnel`` attribute is set to this connection) until
        either side closes."""
        self.conn.start_tunnel(upstream, client_rest, upstream_rest)

    # --- told by the connection ----------------------------------------------------------

    def on_writable(self):
        listener = self.listener
        if listener is not None:
            listener.client_writable()

    def on_gone(self):
        listener = self.listener
        if listener is not None:
            listener.client_gone()
