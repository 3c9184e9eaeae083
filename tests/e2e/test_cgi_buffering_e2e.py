"""The CGI family (fastcgi_pass, uwsgi_pass, scgi_pass) reads the client's body whole
before the application is asked, as nginx does: in memory up to
``client_body_buffer_size`` (then ``$request_body`` gives it, as nginx's), past it in a
file with no name, framed for the application piece by piece as it is sent — never a
whole large upload in the gateway's memory. On both engines, against applications that
keep every byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import request
from e2e_util import proc_status_kib
from fastcgi_backend import FastcgiBackend, FcgiReceived, StreamBackend

LARGE = bytes(range(256)) * 1200  # 300 KiB: past client_body_buffer_size 1k, in a file
SMALL = b"name=alice&role=admin"


def _json(r: FcgiReceived) -> bytes:
    return json.dumps({"stdin": len(r.stdin),
                       "request_body": (r.param(b"REQUEST_BODY") or b"").decode()}).encode()


def _fastcgi_answer(r: FcgiReceived) -> tuple[bytes, bytes]:
    return b"Content-Type: application/json\r\n\r\n" + _json(r), b""


def _stream_answer(r: FcgiReceived) -> bytes:
    body = _json(r)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body) + body)


@pytest.mark.parametrize("kind", ["fastcgi", "uwsgi", "scgi"])
def test_bodies_reach_the_application_whole_from_memory_or_file(
        tmp_path: Path, gateway, free, kind: str) -> None:  # type: ignore[no-untyped-def]
    app = (FastcgiBackend(answer=_fastcgi_answer) if kind == "fastcgi"
           else StreamBackend(kind, _stream_answer))
    try:
        port = free()
        temp = tmp_path / "body"
        g = gateway(f"""http {{ access_log off; client_body_buffer_size 1k;
  client_max_body_size 64m; client_body_temp_path {temp};
  server {{ listen 127.0.0.1:{port};
    location / {{ {kind}_param CONTENT_LENGTH $content_length;
      {kind}_param REQUEST_BODY $request_body;
      {kind}_pass 127.0.0.1:{app.port}; }} }} }}""", port)
        answers = [request(port, "POST", "/small", SMALL)[2],
                   request(port, "POST", "/large", LARGE)[2]]
        got = app.requests()
        assert [r.stdin for r in got] == [SMALL, LARGE]  # byte for byte, in its framing
        assert [json.loads(a) for a in answers] == [
            {"stdin": len(SMALL), "request_body": SMALL.decode()},
            {"stdin": len(LARGE), "request_body": ""}]  # in a file: empty, as nginx's
        assert list(temp.iterdir()) == []  # the file had no name: nothing left
        if kind != "fastcgi":  # (the same path; their test applications parse slowly)
            return
        # a 16 MiB upload: through the file, never whole in the gateway's memory
        before = proc_status_kib(g.proc.pid, "VmHWM")
        huge = LARGE * 56
        assert json.loads(request(port, "POST", "/huge", huge, timeout=60)[2])["stdin"] == len(huge)
        assert proc_status_kib(g.proc.pid, "VmHWM") - before < 8 * 1024, "held in memory"
    finally:
        app.stop()


def test_a_chunked_body_has_its_length_once_read(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    """nginx's $content_length is the length of a chunked body read whole: the stock
    fastcgi_params send it as CONTENT_LENGTH, without which PHP reads no body."""
    from e2e_util import raw_exchange

    app = FastcgiBackend(answer=_fastcgi_answer)
    try:
        port = free()
        gateway(f"""http {{ access_log off; client_body_buffer_size 1k;
  server {{ listen 127.0.0.1:{port};
    location / {{ fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_pass 127.0.0.1:{app.port}; }} }} }}""", port)
        for body in (SMALL, LARGE):
            chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 5000]), body[i:i + 5000])
                               for i in range(0, len(body), 5000)) + b"0\r\n\r\n"
            out = raw_exchange(port, b"POST /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                     b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
            assert out.startswith(b"HTTP/1.1 200"), out[:200]
        got = app.requests()
        assert [(r.param(b"CONTENT_LENGTH"), r.stdin) for r in got] == [
            (str(len(SMALL)).encode(), SMALL), (str(len(LARGE)).encode(), LARGE)]
    finally:
        app.stop()
