"""Argument values as nginx reads them (fastgate.config.values): times by
ngx_parse_time's grammar, sizes by ngx_parse_size / ngx_parse_offset, flags in any case,
numbers of ASCII digits within nginx's integer — what nginx 1.22's ``-t`` takes, checked
against nginx itself where it is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fastgate.config import ConfigError, load_config
from fastgate.config.values import INT_MAX, size_value, time_value

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_nginx = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")


@pytest.mark.parametrize("text,msec,sec", [
    ("30", 30.0, 30.0),
    ("500ms", 0.5, None),  # (no "ms" where nginx reads whole seconds)
    ("1m30s", 90.0, 90.0),
    ("1m 30s", 90.0, 90.0),  # spaces between parts
    ("1h 30", 3630.0, 3630.0),  # a bare number last: seconds
    ("30s ", 30.0, 30.0),
    ("1m5", 65.0, 65.0),
    ("1d1h", 90000.0, 90000.0),
    ("1y", None, 31536000.0),  # timeouts (milliseconds) have no years nor months
    ("1M", None, 2592000.0),
    ("1h1d", None, None),  # largest unit first
    ("1s1s", None, None),  # each once
    ("1 1", 2.0, 2.0),  # numbers apart are seconds, added
    ("1 1s", None, None),  # but no unit after a bare number
    (" 30s", None, None),
    ("ms", None, None),
    ("", None, None),
    ("1x", None, None),
    ("\u0663s", None, None),  # an Arabic-Indic 3: a digit to Python, not to nginx
    ("9223372036854775s", 9223372036854775.0, 9223372036854775.0),
    ("9223372036854776s", None, 9223372036854776.0),  # past nginx's integer in ms
    ("9223372036854775808", None, None),
])
def test_times(text: str, msec: float | None, sec: float | None) -> None:
    assert time_value(text) == msec
    assert time_value(text, seconds_only=True) == sec


@pytest.mark.parametrize("text,offset,size", [
    ("8k", 8192, 8192), ("8K", 8192, 8192), ("1m", 1 << 20, 1 << 20),
    ("1g", 1 << 30, None),  # ngx_parse_size has no "g"; ngx_parse_offset has
    ("0", 0, 0), (str(INT_MAX), INT_MAX, INT_MAX), (str(INT_MAX + 1), None, None),
    (f"{INT_MAX >> 30}g", (INT_MAX >> 30) << 30, None),
    (f"{(INT_MAX >> 30) + 1}g", None, None),
    ("", None, None), ("k", None, None), ("8 k", None, None), ("-1", None, None),
    ("\u0663", None, None),
])
def test_sizes(text: str, offset: int | None, size: int | None) -> None:
    assert size_value(text, offset=True) == offset
    assert size_value(text) == size


def _loads(tmp_path: Path, body: str) -> bool:
    path = tmp_path / "t.conf"
    path.write_text(f"http {{ server {{ listen 127.0.0.1:8997; {body} }} }}\n")
    try:
        load_config(str(path))
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("body,loads", [
    ("gzip On;", True),  # nginx's flags are caseless
    ("sendfile OFF;", True),
    ("gzip yes;", False),
    ('proxy_read_timeout "1m 30s";', True),
    ("proxy_read_timeout 1y;", False),
    ("ssl_session_timeout 1y;", True),
    ("ssl_session_timeout 500ms;", False),
    ("client_max_body_size 1g;", True),
    ("client_max_body_size 9999999999999999999;", False),
    ("client_body_buffer_size 1g;", False),  # a size: no "g"
    ("client_body_buffer_size 1m;", True),
    ("keepalive_requests 9999999999999999999;", False),
    ("keepalive_requests \u00b2;", False),  # a superscript two: isdigit() to Python
    ("return \u00b2;", False),
    ("return \u0663\u0660\u0660 x;", False),
    ("error_page \u0664\u0660\u0664 /x;", False),
    ("location / { error_page 404 =\u0662\u0660\u0660 /x; }", False),
    # ignored directives' values, checked as nginx's slots read them
    ("proxy_buffers 8;", False),
    ("proxy_buffers 8 4k;", True),
    ("proxy_buffers 0 4k;", False),
    ("gzip_buffers 16 8g;", False),
    ("proxy_busy_buffers_size 1g;", False),
    ("proxy_busy_buffers_size 16k;", True),
    ("tcp_nopush maybe;", False),
    ("tcp_nopush On;", True),
    ("types_hash_max_size 2048;", True),
    ("types_hash_max_size 2k;", False),
    ("proxy_next_upstream_timeout 1y;", False),
    ("proxy_next_upstream_timeout 10s;", True),
    ("open_file_cache_valid 1y;", True),
    ("proxy_cache_lock;", False),
    ("proxy_cache_lock on;", True),
    ("sendfile on; sendfile off;", False),  # a slot is set once per level
    # enums and bitmasks are caseless too
    ("satisfy Any;", True),
    ("if_modified_since Exact;", True),
    ("ssl_protocols tlsv1.2 TLSv1.3;", True),
    ("proxy_next_upstream Error Timeout;", True),
    ("gzip_proxied Any;", True),
    ("satisfy anything;", False),
    ("proxy_next_upstream error updating;", True),  # (a cache's word: nothing here)
    ("fastcgi_next_upstream http_502;", False),  # not one of FastCGI's
    ("fastcgi_next_upstream Error; fastcgi_next_upstream timeout;", True),
    ("memcached_next_upstream not_found;", True),
    ("grpc_next_upstream maybe;", False),
    ("keepalive_disable msie6 Safari;", True),
    ("keepalive_disable opera;", False),
    ("open_log_file_cache max=1000 inactive=20s valid=1m min_uses=2;", True),
    ("open_log_file_cache off;", True),
    ("open_log_file_cache inactive=20s;", False),  # max= is required
    ("open_log_file_cache max=10 inactive=500ms;", False),  # whole seconds
    ("open_log_file_cache max=10 size=1;", False),
])
def test_what_loads(tmp_path: Path, body: str, loads: bool) -> None:
    assert _loads(tmp_path, body) is loads


@needs_nginx
def test_what_loads_is_what_nginx_loads(tmp_path: Path) -> None:
    """The table above, each line given to nginx 1.22's -t too."""
    for mark in test_what_loads.pytestmark:  # type: ignore[attr-defined]
        if mark.name == "parametrize":
            cases = mark.args[1]
    for body, loads in cases:
        assert _nginx_loads(tmp_path, body) is loads, body


def _nginx_loads(tmp_path: Path, body: str) -> bool:
    path = tmp_path / "n.conf"
    path.write_text(f"pid {tmp_path}/n.pid; error_log {tmp_path}/e.log; events {{ }}\n"
                    f"http {{ server {{ listen 127.0.0.1:8997; {body} }} }}\n")
    done = subprocess.run([NGINX, "-t", "-q", "-p", str(tmp_path), "-c", str(path)],
                          capture_output=True, timeout=20)
    return done.returncode == 0


@needs_nginx
@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="0123456789 smhdwMy", max_size=7))
@example("1m 30s")
@example("1y")
@example("500ms")
@example("5 5")
def test_times_are_taken_where_nginx_takes_them(text: str) -> None:
    """Any time made of nginx's units and spaces: taken as a timeout (milliseconds) and
    as ssl_session_timeout (seconds) exactly where nginx 1.22 takes it."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        for directive, seconds in (("proxy_read_timeout", False),
                                   ("ssl_session_timeout", True)):
            body = f'{directive} "{text}";'
            assert _nginx_loads(home, body) is (time_value(text, seconds) is not None), body


def test_a_log_format_s_pieces_are_read_each_on_its_own(tmp_path: Path) -> None:
    """``'$status' 'x'`` is $status then "x", as nginx compiles each piece, not an
    unknown variable "statusx"."""
    path = tmp_path / "t.conf"
    path.write_text("http { log_format f '$remote_addr:$status' 'x' '$host' '-y';\n"
                    "  server { listen 127.0.0.1:8997; } }\n")
    fmt = load_config(str(path)).log_formats["f"]
    assert [p if isinstance(p, str) else "VAR" for p in fmt.template.parts] == [
        "VAR", ":", "VAR", "x", "VAR", "-y"]
