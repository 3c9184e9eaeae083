"""The image filter end to end, with nginx 1.22 and its image filter (Debian's
libnginx-mod-http-image-filter, on the same libgd) as the oracle: JPEG, PNG, GIF and
WebP images through test, size, resize, crop, rotate and both, with qualities,
sharpening, interlacing and transparency, sizes from variables, what it refuses (415)
— the same status, type, length, validators and bytes — and a protected location that
reaches its backend only with a token."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import request
from e2e_util import bearer
from image_sample import gradient, palette
from raw_backend import RawBackend

MODULE = Path("/usr/lib/nginx/modules/ngx_http_image_filter_module.so")
SECRET = "image-filter-secret-0123456789abcdef"
PLACES = {
    "test": "image_filter test;",
    "size": "image_filter size;",
    "resize": "image_filter resize 40 30; image_filter_jpeg_quality 60;",
    "crop": "image_filter crop 20 20; image_filter_sharpen 50;",
    "rotate": "image_filter rotate 90;",
    "both": "image_filter rotate 180; image_filter resize 50 -;",
    "var": "image_filter resize $arg_w $arg_h; image_filter_jpeg_quality $arg_q;",
    "small": "image_filter_buffer 100; image_filter resize 10 10;",
    "flags": "image_filter_interlace on; image_filter_transparency off; "
             "image_filter resize 16 16; image_filter_webp_quality 50;",
    "turn": "image_filter rotate $arg_a;",
}
FILES = {"a.jpg": gradient("jpeg"), "b.png": gradient("png"), "c.gif": palette("gif"),
         "d.png": palette("png"), "e.webp": gradient("webp"), "f.jpg": gradient("jpeg", 8, 6),
         "g.txt": b"not an image at all, just text\n"}


def _files(home: Path) -> None:
    for place in PLACES:
        d = home / "www" / place
        d.mkdir(parents=True, exist_ok=True)
        for name, data in FILES.items():
            (d / name).write_bytes(data)


def test_nginx_makes_the_same_images(tmp_path: Path, engine: str) -> None:
    from test_nginx_parity_e2e import NGINX, _request, both

    for needed in (Path(NGINX), MODULE):
        if not needed.exists():
            pytest.skip(f"{needed} is installed by make test (test-deps)")
    _files(tmp_path)
    block = ("types { image/jpeg jpg; image/png png; image/gif gif; image/webp webp; "
             "text/plain txt; }\nserver { listen 127.0.0.1:PORT; root HOME/www;\n"
             + "\n".join(f"  location /{p}/ {{ {d} }}" for p, d in PLACES.items()) + "\n}")
    with both(tmp_path, block, engine, f"load_module {MODULE};\n") as (nginx, fastgate):
        seen = 0
        for place in PLACES:
            for name in [*FILES, "missing.png"]:
                for query in ("", "?w=30&h=-&q=20&a=270", "?w=0&h=5&q=-&a=45"):
                    if query and place not in ("var", "turn"):
                        continue
                    for method in ("GET", "HEAD"):
                        raw = _request(method, f"/{place}/{name}{query}",
                                       "Range: bytes=0-3")
                        want, got = nginx.send(raw), fastgate.send(raw)
                        what = f"{method} /{place}/{name}{query}"
                        assert got[0] == want[0], f"{what}: {got[0]}, nginx {want[0]}"
                        for header in ("content-type", "content-length", "etag",
                                       "last-modified", "accept-ranges", "content-range"):
                            if want[0] >= 400 and header == "content-length":
                                continue  # (the error pages name their server)
                            assert got[1].get(header) == want[1].get(header), \
                                f"{what}: {header}"
                        if want[0] < 400:
                            assert got[2] == want[2], what
                            seen += want[0] == 200 and method == "GET"
        assert seen > 40


def test_a_protected_location_reaches_its_backend_only_with_a_token(gateway, free) -> None:  # type: ignore[no-untyped-def]
    image = gradient("png")
    backend = RawBackend(answer=lambda r: (
        b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n"
        % len(image) + image))
    port = free()
    try:
        gateway(f"""error_log stderr info;
http {{ access_log off;
  server {{ listen 127.0.0.1:{port};
    location /thumbs/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
      image_filter size; proxy_pass http://127.0.0.1:{backend.port}; }}
  }} }}""", port)
        assert request(port, "GET", "/thumbs/a.png")[0] == 401
        assert backend.requests() == []
        status, headers, body = request(port, "GET", "/thumbs/a.png", headers=bearer(SECRET))
        assert (status, headers["content-type"]) == (200, "application/json")
        assert body == b'{ "img" : { "width": 80, "height": 60, "type": "png" } }\r\n'
        assert len(backend.requests()) == 1
    finally:
        backend.stop()
