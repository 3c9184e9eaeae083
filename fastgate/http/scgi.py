"""The SCGI request, as nginx's ``ngx_http_scgi_module`` writes it: a netstring
("LENGTH:" + the headers + ",") whose first header is CONTENT_LENGTH (the body's
length), each header "NAME\\0VALUE\\0", then the body. The answer is the application's
raw output (``http.cgi``), until it closes the connection."""

from __future__ import annotations

from collections.abc import Iterable


def request_head(params: Iterable[tuple[bytes, bytes]], length: int) -> bytes:
    """The netstring of headers that comes before a body of ``length`` bytes."""
    headers = b"CONTENT_LENGTH\0%d\0" % length + b"".join(
        name + b"\0" + value + b"\0" for name, value in params)
    return b"%d:" % len(headers) + headers + b","


def request(params: Iterable[tuple[bytes, bytes]], body: bytes) -> bytes:
    return request_head(params, len(body)) + body


def read_headers(data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers of a request and what follows the netstring (for tests and the
    recording backend)."""
    colon = data.index(b":")
    size = int(data[:colon])
    block = data[colon + 1:colon + 1 + size]
    if data[colon + 1 + size:colon + 2 + size] != b",":
        raise ValueError("not a netstring")
    fields = block.split(b"\0")[:-1]
    return list(zip(fields[::2], fields[1::2], strict=True)), data[colon + 2 + size:]
