"""The CGI-family modules' directives at load (FastCGI, uwsgi, SCGI): the pass
directives' address forms, *_param (and nginx's stock fastcgi_params, fastcgi.conf,
uwsgi_params, scgi_params included as they are), the split and index, inheritance, and
what is refused (FILE:LINE)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fastgate.config import load_config
from fastgate.config.errors import ConfigError
from fastgate.variables import NGINX_VERSION

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _load(tmp_path: Path, body: str, http: str = ""):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.conf"
    path.write_text("http { upstream php { server 127.0.0.1:9000; } " + http
                    + "\n server { listen 127.0.0.1:8997;\n" + body + "\n} }")
    return load_config(str(path))


def test_the_address_forms(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "location /a/ { fastcgi_pass php; }\n"
                "location /b/ { fastcgi_pass 127.0.0.1:9001; }\n"
                "location /c/ { fastcgi_pass unix:/run/php/php-fpm.sock; }\n"
                "location /d/ { fastcgi_pass unix:php.sock; }")
    tree = cfg.servers[0].locations
    a, b, c, d = (tree.find(p)[0] for p in ("/a/", "/b/", "/c/", "/d/"))
    assert a.app_pass.upstream == "php" and a.app_pass.unix is None
    assert b.app_pass.upstream == "127.0.0.1:9001"
    assert "127.0.0.1:9001" in cfg.upstreams  # an implicit group, as proxy_pass's
    assert c.app_pass.unix == "/run/php/php-fpm.sock"
    assert d.app_pass.unix == str(tmp_path / "php.sock")  # beside the file


def test_a_pass_with_variables_is_read_per_request(tmp_path: Path) -> None:
    path = tmp_path / "v.conf"
    path.write_text("http { server { listen 127.0.0.1:8080;\n"
                    "location /f/ { fastcgi_pass $arg_to; }\n"
                    "location /u/ { uwsgi_pass suwsgi://$arg_to; }\n"
                    "location /s/ { scgi_pass $arg_to; } } }\n")
    (s,) = load_config(str(path)).servers
    for loc in s.locations.prefixes:
        ap = loc.app_pass
        assert ap is not None and ap.template is not None and not ap.upstream


@pytest.mark.parametrize("body,message", [
    ("location / { memcached_pass $backend; }", "with variables is not in fastgate"),
    ("location / { fastcgi_pass 127.0.0.1; }", 'no port in upstream "127.0.0.1"'),
    ("location / { fastcgi_pass http://127.0.0.1:9000; }", "invalid host in upstream"),
    ("location / { fastcgi_pass php; uwsgi_pass php; }", "in one location"),
    ("location / { uwsgi_pass suwsgi://unix:/run/app.sock; uwsgi_ssl_ciphers NOTHING-AT-ALL; }",
     "SSL_CTX_set_cipher_list(\"NOTHING-AT-ALL\") failed"),
    ("location / { uwsgi_pass $arg_to; uwsgi_ssl_verify on; }",
     'no "uwsgi_ssl_trusted_certificate" for "uwsgi_ssl_verify"'),
    ("location / { uwsgi_pass suwsgi://127.0.0.1:1; uwsgi_ssl_verify on; }",
     'no "uwsgi_ssl_trusted_certificate" for "uwsgi_ssl_verify"'),
    ("location / { uwsgi_pass suwsgi://127.0.0.1:1; uwsgi_ssl_ciphers NOTHING-AT-ALL; }",
     "SSL_CTX_set_cipher_list(\"NOTHING-AT-ALL\") failed"),
    ("location / { uwsgi_pass http://127.0.0.1:1; }", "invalid URL prefix"),
    ("uwsgi_modifier1 256;", "equal or less than 255"),
    ("scgi_store_access other:rw;", 'invalid value "other:rw"'),
    ("location / { fastcgi_pass unix:; }", "no path"),
    ("location / { fastcgi_pass php; fastcgi_pass php; }", "is duplicate"),
    ("location / { fastcgi_pass php; proxy_pass http://php; }", "one content handler"),
    ("fastcgi_pass php;", "directive is not allowed here"),
    ("fastcgi_param A b maybe;", 'invalid parameter "maybe"'),
    ("fastcgi_split_path_info ^(.+)$;", "must have 2 captures"),
    ("location / { fastcgi_split_path_info (unclosed; }", "pcre2_compile() failed"),
    ("fastcgi_store on; fastcgi_store off;", "is duplicate"),
    ("fastcgi_hide_header Bad:Name;", "invalid"),
])
def test_refusals(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, body)
    assert message in str(info.value) and str(info.value).endswith(":3")


def test_parameters_inherit_only_where_a_level_has_none(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "fastcgi_param A server; fastcgi_param B server if_not_empty;\n"
                "location /own/ { fastcgi_param C own; fastcgi_pass php; }\n"
                "location /inh/ { fastcgi_pass php; }", http="fastcgi_param Z http;")
    tree = cfg.servers[0].locations
    own = tree.find("/own/")[0].settings.fastcgi_param
    inh = tree.find("/inh/")[0].settings.fastcgi_param
    assert [(p.name, p.if_not_empty) for p in own] == [(b"C", False)]
    assert [(p.name, p.if_not_empty) for p in inh] == [(b"A", False), (b"B", True)]


@pytest.mark.parametrize("stock", ["fastcgi_params", "fastcgi.conf", "uwsgi_params",
                                   "scgi_params"])
def test_nginx_stock_parameter_files_load_as_they_are(tmp_path: Path, stock: str) -> None:
    kind = stock.split("_")[0].split(".")[0]
    shutil.copy(CONFIGS / stock, tmp_path / stock)
    cfg = _load(tmp_path, f"root /srv/www;\nlocation ~ \\.php$ {{ include {stock};\n"
                f"{kind}_pass php; }}")
    loc = cfg.servers[0].locations.find("/index.php")[0]
    assert loc.app_pass.kind == kind
    names = [p.name for p in getattr(loc.settings, f"{kind}_param")]
    assert b"REQUEST_METHOD" in names and b"SERVER_NAME" in names
    assert (b"SCRIPT_FILENAME" in names) == (stock == "fastcgi.conf")
    assert NGINX_VERSION == "1.22.1"  # what $nginx_version says in SERVER_SOFTWARE


def test_root_is_document_root_and_relative_roots_are_under_the_prefix(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "location /a/ { root /srv/a/; fastcgi_pass php; }\n"
                "location /b/ { root public; fastcgi_pass php; }\n"
                "location /c/ { fastcgi_pass php; }")
    tree = cfg.servers[0].locations
    assert tree.find("/a/")[0].settings.root.path == "/srv/a"
    assert tree.find("/b/")[0].settings.root.path == str(tmp_path / "public")
    assert tree.find("/c/")[0].settings.root.path == str(tmp_path / "html")  # nginx's default
    assert not any('"root"' in w for w in cfg.warnings)  # it serves files too now


def test_the_buffering_and_cache_knobs_warn_once_each(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "fastcgi_buffers 16 16k; fastcgi_buffer_size 32k;\n"
                "fastcgi_cache_valid 200 1m; fastcgi_cache_key $uri; fastcgi_keep_conn on;\n"
                "fastcgi_next_upstream error timeout; fastcgi_buffering off;\n"
                "location / { fastcgi_pass php; }")
    text = "\n".join(cfg.warnings)
    assert '"fastcgi_buffers" directive is ignored' in text
    assert '"fastcgi_cache_valid" directive is ignored' in text
    assert '"fastcgi_keep_conn" directive is ignored' in text
    assert '"fastcgi_next_upstream" directive is ignored' in text
    assert "fastcgi_buffering" not in text  # "off" is what fastgate does
    assert "fastcgi_buffer_size" not in text  # taken: the longest response head
    assert cfg.servers[0].locations.find("/")[0].settings.fastcgi_buffer_size == 32768
