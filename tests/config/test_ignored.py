"""Directives accepted and ignored: one warning per name, with a count and the first
place, so that a real configuration's thirty "sendfile on" lines say it once."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastgate.config import load_config


def _warnings(tmp_path: Path, text: str) -> tuple[list[str], str]:
    path = tmp_path / "t.conf"
    path.write_text(text)
    return list(load_config(str(path)).warnings), str(path)


def test_one_warning_per_name_with_count_and_first_place(tmp_path: Path) -> None:
    warnings, path = _warnings(tmp_path, """http {
  sendfile on;
  server { listen 127.0.0.1:8997; sendfile on;
    location / { sendfile off; gzip_buffers 4 8k; gunzip_buffers 4 8k; } }
}""")
    sendfile = [w for w in warnings if '"sendfile"' in w]
    assert sendfile == [f'[warn] "sendfile" directive is ignored (3 times): files are read '
                        f'in the worker with pread and written through the event loop; none '
                        f'is cached open in {path}:2']
    assert f'[warn] "gzip_buffers" directive is ignored: compressed output goes out as ' \
        f"zlib gives it, without nginx's buffers in {path}:4" in warnings
    assert any('"gunzip_buffers" directive is ignored:' in w for w in warnings)


def test_families_and_switches(tmp_path: Path) -> None:
    warnings, _ = _warnings(tmp_path, """daemon off;
events { use epoll; }
http {
  proxy_cache_path /tmp/c keys_zone=c:1m;
  upstream u { zone u 64k; server 127.0.0.1:1; }
  server { listen 127.0.0.1:8997; http2_chunk_size 8k; http2_idle_timeout 1m;
    location / { proxy_cache c; proxy_cache_valid 200 1m; gunzip off;
                 open_file_cache max=10; } }
}""")
    text = "\n".join(warnings)
    for name in ("proxy_cache_path", "proxy_cache", "proxy_cache_valid", "zone",
                 "http2_chunk_size", "http2_idle_timeout", "use", "open_file_cache"):
        assert f'"{name}" directive is ignored' in text, name
    assert '"daemon"' not in text and '"gunzip"' not in text  # off is what fastgate does


def test_an_off_that_is_what_fastgate_does_says_nothing(tmp_path: Path) -> None:
    # (Nginx Proxy Manager's http-level proxy_cache off and server_tokens off)
    warnings, path = _warnings(tmp_path, """http { proxy_cache off; open_file_cache off;
  server_tokens off;
  server { listen 127.0.0.1:8997; server_tokens build;
    location / { fastcgi_cache off; proxy_cache $c; } } map $uri $c { default c; } }""")
    assert [w for w in warnings if "cache" in w or "server_tokens" in w] == [
        f'[warn] "server_tokens" directive is ignored: fastgate sends no Server version in '
        f"{path}:3",
        f'[warn] "proxy_cache" directive is ignored: fastgate caches no responses: every '
        f"request goes to the upstream in {path}:4"]


@pytest.mark.parametrize("text,error", [
    # (a zone no *_cache_path declares, or one of another module's, as nginx's -t; the
    # text starts on the file's second line)
    ("server { listen 127.0.0.1:8997; location / { proxy_cache nz; } }",
     '"proxy_cache" zone "nz" is unknown in {path}:2'),
    ("fastcgi_cache_path /tmp/c keys_zone=z:1m;\n"
     "server { listen 127.0.0.1:8997; location / { proxy_cache z; } }",
     '"proxy_cache" zone "z" is unknown in {path}:3'),
    ("server { listen 127.0.0.1:8997; location / { uwsgi_cache nz; } }",
     '"uwsgi_cache" zone "nz" is unknown in {path}:2'),
    ("proxy_cache_path /tmp/c levels=1:2;",
     '"proxy_cache_path" must have "keys_zone" parameter in {path}:2'),
    ("server { listen 127.0.0.1:8997; location / { proxy_cache $nosuch; } }",
     'unknown "nosuch" variable in {path}:2'),
])
def test_a_cache_zone_no_path_declares_fails_as_nginx(tmp_path: Path, text: str,
                                                      error: str) -> None:
    from fastgate.config.errors import ConfigError

    path = tmp_path / "t.conf"
    path.write_text(f"http {{\n{text}\n}}")
    with pytest.raises(ConfigError) as refused:
        load_config(str(path))
    assert str(refused.value) == error.format(path=path)


def test_a_cache_zone_may_be_declared_after_its_use(tmp_path: Path) -> None:
    warnings, _ = _warnings(tmp_path, """http {
  server { listen 127.0.0.1:8997; location / { proxy_cache z; } }
  proxy_cache_path /tmp/c keys_zone=z:1m; }""")
    assert any('"proxy_cache" directive is ignored' in w for w in warnings)


def test_listen_parameters(tmp_path: Path) -> None:
    import pytest

    from fastgate.config.errors import ConfigError

    warnings, path = _warnings(tmp_path, "http { server { listen 127.0.0.1:8997 http2 "
                               "fastopen=256 so_keepalive=on; } }")
    assert f'[warn] the "fastopen" parameter of "listen" is ignored: fastgate\'s listening ' \
        f'sockets take the system defaults in {path}:1' in warnings
    assert not any("http2" in w for w in warnings)  # HTTP/2 is spoken
    listen = load_config(str(path)).servers[0].listens[0]
    assert listen.http2 and not listen.ssl
    p = tmp_path / "pp.conf"
    p.write_text("http { server { listen 127.0.0.1:8997 proxy_protocol; } }")
    assert load_config(str(p)).servers[0].listens[0].proxy_protocol
    p.write_text("http { server { listen 127.0.0.1:8997 proxy_protocol=on; } }")
    with pytest.raises(ConfigError, match='invalid parameter "proxy_protocol=on"'):
        load_config(str(p))


def test_another_modules_directive_is_named_with_the_equivalent(tmp_path: Path) -> None:
    import pytest

    from fastgate.config.errors import ConfigError

    p = tmp_path / "t.conf"
    p.write_text("http { server { listen 127.0.0.1:8997;\n auth_jwt_enabled on; } }")
    with pytest.raises(ConfigError) as info:
        load_config(str(p))
    assert str(info.value) == (
        'unknown directive "auth_jwt_enabled": it is TeslaGov\'s ngx-http-auth-jwt-module\'s;'
        f' in fastgate write auth_jwt on|off in {p}:2')


def test_every_ignored_directive_warns_once_with_its_reason(tmp_path: Path) -> None:
    """Each of nginx's tuning directives that fastgate ignores says so, once, with why;
    a switch whose off is what fastgate does is silent when off."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_directives import SAMPLES

    from fastgate.config.directives import ignored

    silent_off = {"log_subrequest", "daemon", "server_tokens"}
    for spec in ignored.SPECS:
        sample = SAMPLES[spec.name]
        ctx = next(c for c in ("main", "events", "http", "server", "location", "upstream")
                   if c in spec.contexts)
        body = {"main": f"{sample}\nhttp {{ server {{ listen 127.0.0.1:8997; }} }}",
                "events": f"events {{ {sample} }}\nhttp {{ server {{ listen 127.0.0.1:8997; }} }}",
                "http": f"http {{ {sample} server {{ listen 127.0.0.1:8997; }} }}",
                "server": f"http {{ server {{ listen 127.0.0.1:8997; {sample} }} }}",
                "location": f"http {{ server {{ listen 127.0.0.1:8997; location / "
                            f"{{ {sample} }} }} }}",
                "upstream": f"http {{ upstream u {{ server 127.0.0.1:1; {sample} }} "
                            f"server {{ listen 127.0.0.1:8997; }} }}"}[ctx]
        warnings, _ = _warnings(tmp_path, body)
        said = [w for w in warnings if f'"{spec.name}" directive is ignored' in w]
        if spec.name in silent_off and sample.endswith(" off;"):
            assert said == [], spec.name
        else:
            assert len(said) == 1, (spec.name, warnings)
            assert said[0].split(" is ignored", 1)[1].startswith(": "), said[0]  # the reason


def test_http2_on_and_its_settings(tmp_path: Path) -> None:
    """``http2 on`` (nginx 1.25.1+) makes every listen of its server http2, as ``ssl on``
    makes them ssl; the stream settings are the server's."""
    warnings, path = _warnings(tmp_path, """http {
  http2_max_concurrent_streams 16;
  server { listen 127.0.0.1:8997; listen 127.0.0.1:8998; http2 on;
    http2_body_preread_size 1m; }
  server { listen 127.0.0.1:8999; }
}""")
    config = load_config(path)
    first, second = config.servers
    assert [x.http2 for x in first.listens] == [True, True]
    assert not second.listens[0].http2
    assert first.settings.http2_max_concurrent_streams == 16
    assert first.settings.http2_body_preread_size == 1 << 20
    assert second.settings.http2_body_preread_size == 64 * 1024


def test_an_absolute_index_before_the_last_is_a_warning(tmp_path: Path) -> None:
    warnings, path = _warnings(tmp_path, "http { server { listen 127.0.0.1:8997;\n"
                               "location / { index /main.html index.html; } } }")
    assert f'[warn] only the last index in "index" directive should be absolute in ' \
        f"{path}:2" in warnings


@pytest.mark.parametrize("text,error", [
    ("sendfile yes;", 'invalid value "yes" in "sendfile" directive, it must be "on" or "off"'),
    ("server { location / { proxy_cache_lock maybe; } }",
     'invalid value "maybe" in "proxy_cache_lock" directive, it must be "on" or "off"'),
    ("server { location / { proxy_cache_lock; } }",
     'invalid number of arguments in "proxy_cache_lock" directive'),
    ("server_tokens maybe;", 'invalid value "maybe"'),
])
def test_an_ignored_switch_takes_only_its_values(tmp_path: Path, text: str,
                                                 error: str) -> None:
    """Ignored or not, nginx's on|off directives (and server_tokens' on|off|build) take
    only those values, in any case, and -t fails on another as nginx's does."""
    from fastgate.config.errors import ConfigError

    path = tmp_path / "t.conf"
    path.write_text(f"http {{ {text} }}")
    with pytest.raises(ConfigError) as refused:
        load_config(str(path))
    assert str(refused.value) == f"{error} in {path}:1"
    path.write_text("http { sendfile ON; tcp_nodelay Off; server_tokens BUILD; }")
    assert load_config(str(path)).servers == ()
