"""The XSLT filter end to end, with nginx 1.22 and its XSLT module (Debian's
libnginx-mod-http-xslt-filter) as the oracle: files and proxied answers through one and
two stylesheets with every kind of parameter, the head it makes (type, charset, length,
validators), HEAD and Range, what it leaves alone, its failures — and, fastgate's own,
a document with an external entity that reads nothing, and a location that checks
tokens reaching its backend only with one."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import request
from e2e_util import bearer
from raw_backend import RawBackend

MODULE = Path("/usr/lib/nginx/modules/ngx_http_xslt_filter_module.so")
SECRET = "xslt-test-secret-0123456789abcdef-01"

LIST = """<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="html" encoding="utf-8"/>
<xsl:param name="title" select="'none'"/>
<xsl:param name="who" select="'nobody'"/>
<xsl:param name="n" select="0"/>
<xsl:param name="s" select="''"/>
<xsl:template match="/"><html><head><title><xsl:value-of select="$title"/></title></head>
<body><p><xsl:value-of select="$who"/>|<xsl:value-of select="$n * 2"/>|<xsl:value-of
 select="$s"/></p><ul><xsl:for-each select="//item"><li><xsl:value-of select="."/></li>
</xsl:for-each></ul></body></html></xsl:template>
</xsl:stylesheet>
"""
TO_XML = """<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="xml" encoding="iso-8859-1" media-type="application/atom+xml"/>
<xsl:template match="/"><feed><xsl:for-each select="//item"><entry n="{@id}"><xsl:value-of
 select="."/></entry></xsl:for-each></feed></xsl:template>
</xsl:stylesheet>
"""
NO_OUTPUT = """<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:template match="/"><items><xsl:copy-of select="//item[1]"/></items></xsl:template>
</xsl:stylesheet>
"""
DATA = """<?xml version="1.0"?>
<!DOCTYPE items SYSTEM "items.dtd">
<items><item id="1">caf&eacute; &amp; more</item><item id="2">Two</item></items>
"""

BLOCK = """
types { text/xml xml; text/plain txt; }
server { listen 127.0.0.1:PORT; root HOME/www;
  xml_entities HOME/entities.dtd;
  location / { xslt_stylesheet HOME/list.xsl title='The%20List' who='$arg_who';
    xslt_param n $arg_n; xslt_string_param s "it's $arg_s"; }
  location /two/ { xslt_stylesheet HOME/plain.xsl; xslt_stylesheet HOME/feed.xsl; }
  location /keep/ { xslt_stylesheet HOME/plain.xsl; xslt_last_modified on;
    xslt_types text/plain; }
  location /all/ { xslt_stylesheet HOME/feed.xsl; xslt_types *; }
  location /bad/ { xslt_stylesheet HOME/list.xsl n=1:x; }
  location /up/ { xslt_stylesheet HOME/feed.xsl; proxy_pass http://BACKEND/; }
  location = /own { default_type text/xml; xslt_stylesheet HOME/feed.xsl;
    return 200 '<items><item id="9">own</item></items>'; }
}"""

REQUESTS = [("GET", "/data.xml?who=bob&n=21&s=x", ()), ("HEAD", "/data.xml", ()),
            ("GET", "/data.xml", ("Range: bytes=0-9",)), ("GET", "/broken.xml", ()),
            ("GET", "/plain.txt", ()), ("GET", "/missing.xml", ()),
            ("GET", "/two/data.xml", ()), ("GET", "/keep/data.txt", ()),
            ("GET", "/all/data.txt", ()), ("GET", "/bad/data.xml", ()),
            ("GET", "/up/xml", ()), ("GET", "/up/plain", ()), ("GET", "/own", ())]


def _files(home: Path) -> None:
    www = home / "www"
    for d in (www / "two", www / "keep", www / "all", www / "bad"):
        d.mkdir(parents=True, exist_ok=True)
    (home / "list.xsl").write_text(LIST)
    (home / "feed.xsl").write_text(TO_XML)
    (home / "plain.xsl").write_text(NO_OUTPUT)
    (home / "entities.dtd").write_text('<!ENTITY eacute "&#233;">\n')
    for d in (www, www / "two", www / "bad"):
        (d / "data.xml").write_text(DATA)
    (www / "broken.xml").write_text("<items><item>not closed</items>")
    (www / "plain.txt").write_text("left alone\n")
    for d in (www / "keep", www / "all"):
        (d / "data.txt").write_text(DATA)


def test_nginx_makes_the_same_responses(tmp_path: Path, engine: str) -> None:
    from test_nginx_parity_e2e import NGINX, _request, both

    for needed in (Path(NGINX), MODULE):
        if not needed.exists():
            pytest.skip(f"{needed} is installed by make test (test-deps)")
    _files(tmp_path)
    with both(tmp_path, BLOCK, engine, f"load_module {MODULE};\n") as (nginx, fastgate):
        for method, path, headers in REQUESTS:
            raw = _request(method, path, *headers)
            want, got = nginx.send(raw), fastgate.send(raw)
            what = f"{method} {path}"
            assert got[0] == want[0], f"{what}: {got[0]}, nginx {want[0]}"
            for name in ("content-type", "content-length", "etag", "last-modified",
                         "accept-ranges", "content-range"):
                if want[0] >= 400 and name == "content-length":
                    continue  # (the error pages name their server)
                assert got[1].get(name) == want[1].get(name), f"{what}: {name}"
            if want[0] < 400:
                assert got[2] == want[2], what


ORDER = """
types { text/xml xml; }
charset_map windows-1251 utf-8 { E9 C3A9; }
server { listen 127.0.0.1:PORT; root HOME/www;
  location /order/sub/ { alias HOME/www/order/; xslt_stylesheet HOME/feed.xsl;
    sub_filter_types *; sub_filter_once off; sub_filter 'Two' 'Deux'; sub_filter 'Deux' 'X'; }
  location /order/broken/ { alias HOME/www/order/; xslt_stylesheet HOME/feed.xsl;
    sub_filter_types *; sub_filter '</items>' ''; }
  location /order/ssi/ { alias HOME/www/order/; xslt_stylesheet HOME/feed.xsl;
    ssi on; ssi_types text/xml application/atom+xml; }
  location /order/charset/ { alias HOME/www/order/; xslt_stylesheet HOME/plain.xsl;
    charset windows-1251; source_charset utf-8; charset_types text/xml; }
  location /order/named/ { alias HOME/www/order/; xslt_stylesheet HOME/feed.xsl;
    charset windows-1251; source_charset utf-8; charset_types text/xml; }
}"""
ORDER_DATA = ('<?xml version="1.0" encoding="utf-8"?>\n<items><item id="1">caf\u00e9 '
              '<!--# echo var="arg_x" --> Two</item><item id="2">Two</item></items>\n')


def test_the_filters_around_it_run_in_nginxs_order(tmp_path: Path, engine: str) -> None:
    """sub_filter's replacements before the stylesheets (a replacement that breaks the
    document is a 500; one the result would match is not made), the charset module and
    SSI after them (a comment the stylesheet drops is never an SSI command; the result's
    own charset stays; a result without one is named and recoded) — as nginx 1.22 and
    Debian's module."""
    from test_nginx_parity_e2e import NGINX, _request, both

    for needed in (Path(NGINX), MODULE):
        if not needed.exists():
            pytest.skip(f"{needed} is installed by make test (test-deps)")
    _files(tmp_path)
    (tmp_path / "www" / "order").mkdir()
    (tmp_path / "www" / "order" / "data.xml").write_text(ORDER_DATA, encoding="utf-8")
    with both(tmp_path, ORDER, engine, f"load_module {MODULE};\n") as (nginx, fastgate):
        for where in ("sub", "broken", "ssi", "charset", "named"):
            raw = _request("GET", f"/order/{where}/data.xml?x=HELLO")
            want, got = nginx.send(raw), fastgate.send(raw)
            assert got[0] == want[0], (where, got[0], want[0])
            for name in ("content-type", "content-length", "transfer-encoding"):
                assert got[1].get(name) == want[1].get(name), (where, name)
            if want[0] < 400:
                assert got[2] == want[2], (where, got[2], want[2])
        # (what the order decides, so that the comparison above cannot pass vacuously)
        assert nginx.send(_request("GET", "/order/broken/data.xml"))[0] == 500
        assert b"HELLO" not in nginx.send(_request("GET", "/order/ssi/data.xml?x=HELLO"))[2]


@pytest.fixture
def served(tmp_path: Path, gateway, free):  # type: ignore[no-untyped-def]
    _files(tmp_path)
    backend = RawBackend(answer=lambda r: (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n"
        % len(r.body) + r.body))
    port = free()
    g = gateway(f"""error_log stderr info;
http {{ access_log off; types {{ text/xml xml; }}
  server {{ listen 127.0.0.1:{port}; root {tmp_path}/www;
    location / {{ xslt_stylesheet {tmp_path}/feed.xsl; }}
    location /api/ {{ auth_jwt on; auth_jwt_key "{SECRET}"; auth_jwt_alg HS256;
      xslt_stylesheet {tmp_path}/feed.xsl; proxy_pass http://127.0.0.1:{backend.port}; }}
  }} }}""", port)
    yield port, backend, g
    backend.stop()


def test_an_external_entity_reads_nothing(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, _, g = served
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    (tmp_path / "www" / "xxe.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE items [<!ENTITY x SYSTEM "file://{tmp_path}/'
        'secret.txt">]><items><item id="1">&x;</item></items>')
    status, _, body = request(port, "GET", "/xxe.xml")
    assert status == 500 and b"TOP-SECRET" not in body
    assert "not well formed XML document" in g.stderr and "TOP-SECRET" not in g.stderr


def test_a_protected_location_is_held_only_after_its_check(served) -> None:  # type: ignore[no-untyped-def]
    port, backend, _ = served
    doc = b'<items><item id="7">posted</item></items>'
    status, _, _ = request(port, "POST", "/api/x", doc, {"Content-Type": "text/xml"})
    assert status == 401 and backend.requests() == []
    status, headers, body = request(port, "POST", "/api/x", doc,
                                    {"Content-Type": "text/xml", **bearer(SECRET)})
    assert status == 200 and headers["content-type"].startswith("application/atom+xml")
    assert b'<entry n="7">posted</entry>' in body
    [got] = backend.requests()
    assert got.body == doc and got.method == b"POST"  # (the client's body went through)
