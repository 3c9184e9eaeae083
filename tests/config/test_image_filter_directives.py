"""The image filter's directives at load: what each form of image_filter makes (rotate
with resize or crop, in either order), the values with variables, inheritance, and what
is refused (FILE:LINE), as nginx refuses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastgate.config import load_config
from fastgate.config.errors import ConfigError
from fastgate.config.model import ImageFilter


def _load(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.conf"
    path.write_text("http { server { listen 127.0.0.1:8997;\n" + body + "\n} }")
    return load_config(str(path))


def test_the_forms(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "image_filter_jpeg_quality 50; image_filter_sharpen $arg_s;\n"
                "location /a/ { image_filter rotate 90; image_filter resize 100 -; }\n"
                "location /b/ { image_filter crop 10 20; image_filter rotate $arg_a; }\n"
                "location /c/ { image_filter size; image_filter_buffer 5m; }\n"
                "location /d/ { image_filter test; location /d/e/ { } }\n"
                "location /f/ { image_filter resize $arg_w 9; image_filter off; }")
    tree = cfg.servers[0].locations
    a, b, c, d, e, f = (tree.find(p)[0].settings for p in
                        ("/a/", "/b/", "/c/", "/d/", "/d/e/", "/f/"))
    assert a.image_filter == ImageFilter("resize", 100, (1 << 64) - 1, 90)
    assert (b.image_filter.mode, b.image_filter.width, b.image_filter.height) == ("crop", 10, 20)
    assert b.image_filter.angle.source == "$arg_a"
    assert c.image_filter == ImageFilter("size") and c.image_filter_buffer == 5 << 20
    assert d.image_filter == e.image_filter == ImageFilter("test")  # inherited whole
    assert f.image_filter.mode == "off" and not f.filters_bodies
    assert a.image_filter_jpeg_quality == 50 and a.image_filter_sharpen.source == "$arg_s"
    assert a.filters_bodies and a.image_filter_webp_quality == 80


@pytest.mark.parametrize(("body", "message"), [
    ("location / { image_filter shrink; }", 'invalid parameter "shrink"'),
    ("location / { image_filter rotate 45; }", 'invalid parameter "45"'),
    ("location / { image_filter rotate -; }", 'invalid parameter "-"'),
    ("location / { image_filter turn 90; }", 'invalid parameter "turn"'),
    ("location / { image_filter resize 0 10; }", 'invalid parameter "0"'),
    ("location / { image_filter crop 10 x; }", 'invalid parameter "x"'),
    ("location / { image_filter scale 10 10; }", 'invalid parameter "scale"'),
    ("image_filter test;", '"image_filter" directive is not allowed here'),
    ("image_filter_jpeg_quality 0;", 'invalid value "0"'),
    ("image_filter_webp_quality -;", 'invalid value "-"'),
    ("image_filter_sharpen -;", 'invalid value "-"'),
    ("image_filter_buffer big;", "invalid value"),
])
def test_refusals(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, body)
    assert message in str(info.value) and str(info.value).endswith(":2")
