"""A body kept in a file goes to a CGI-family application framed byte for byte as the
same body in memory would be; a file that cannot be read back is our failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fastgate.http import fastcgi, scgi, uwsgi
from fastgate.http.buffered_body import BufferedBody, KeptBodyError
from fastgate.proxy.cgi import body_pieces

ENV = [(b"REQUEST_METHOD", b"POST"), (b"SCRIPT_NAME", b"/x.php")]
DATA = bytes(range(256)) * 600  # 150 KiB: several records and pieces


def _kept(tmp_path: Path, data: bytes = DATA) -> BufferedBody:
    body = BufferedBody(0, str(tmp_path))
    body.write(data)
    return body


def test_a_body_from_its_file_is_framed_as_the_same_body_in_memory(tmp_path: Path) -> None:
    body = _kept(tmp_path)
    try:
        assert (fastcgi.request_head(ENV, False) + b"".join(body_pieces("fastcgi", body))
                == fastcgi.request(ENV, DATA, False))
        assert (scgi.request_head(ENV, body.size) + b"".join(body_pieces("scgi", body))
                == scgi.request(ENV, DATA))
        assert (uwsgi.request(ENV, b"") + b"".join(body_pieces("uwsgi", body))
                == uwsgi.request(ENV, DATA))
    finally:
        body.close()


def test_a_file_that_cannot_be_read_back_is_our_failure(tmp_path: Path) -> None:
    body = _kept(tmp_path, b"0123456789")
    try:
        f = body._file
        assert f is not None
        f.flush()
        os.ftruncate(f.fileno(), 3)
        with pytest.raises(KeptBodyError, match="temporary file ended at 3 of 10 bytes"):
            b"".join(body_pieces("fastcgi", body))
    finally:
        body.close()
