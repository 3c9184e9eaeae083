"""The XSLT filter's directives at load: stylesheets compiled (and refused as nginx
refuses them, FILE:LINE), what each takes from its xsl:output (and its imports'),
parameters and their inheritance, entities."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastgate.config import load_config
from fastgate.config.errors import ConfigError

XSL = '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">{}' \
      '<xsl:template match="/"><x/></xsl:template></xsl:stylesheet>'


def _load(tmp_path: Path, body: str, http: str = ""):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.conf"
    path.write_text("http {\n" + http + "\n server { listen 127.0.0.1:8997;\n" + body
                    + "\n} }")
    return load_config(str(path))


def test_stylesheets_their_output_and_parameters(tmp_path: Path) -> None:
    (tmp_path / "base.xsl").write_text(XSL.format(
        '<xsl:output media-type="application/rss+xml" encoding="koi8-r"/>'))
    (tmp_path / "main.xsl").write_text(XSL.format(
        '<xsl:import href="base.xsl"/><xsl:output method="html"/>'
        '<xsl:output encoding="utf-8"/>'))
    (tmp_path / "e.dtd").write_text('<!ENTITY copy "&#169;">\n')
    cfg = _load(tmp_path, f"xslt_param p1 1; xml_entities {tmp_path}/e.dtd;\n"
                f"location /a/ {{ xslt_stylesheet {tmp_path}/main.xsl x=1:y=2 $arg_z;\n"
                "  xslt_string_param p2 two; xslt_types application/xml; }\n"
                f"location /b/ {{ xslt_stylesheet {tmp_path}/base.xsl; }}")
    tree = cfg.servers[0].locations
    a, b = tree.find("/a/")[0].settings, tree.find("/b/")[0].settings
    [(sheet, params)] = a.xslt_stylesheet
    # its own output first (later elements override), then its imports'
    assert (sheet.method, sheet.encoding, sheet.media_type) == (
        "html", "utf-8", "application/rss+xml")
    assert [t.source for t in params] == ["x=1:y=2", "$arg_z"]
    assert [(n, t.source, q) for n, t, q in a.xslt_param] == [("p2", "two", True)]
    assert [(n, t.source, q) for n, t, q in b.xslt_param] == [("p1", "1", False)]
    assert (a.xslt_types, b.xslt_types) == (("text/xml", "application/xml"), ("text/xml",))  # text/xml always (nginx)
    assert a.xml_entities == b.xml_entities == b'<!ENTITY copy "&#169;">\n'
    assert a.filters_bodies and b.filters_bodies  # (off the callback path)


@pytest.mark.parametrize(("body", "message"), [
    ("location / { xslt_stylesheet NOFILE; }", 'xsltParseStylesheetFile("'),
    ("location / { xslt_stylesheet BROKEN; }", 'xsltParseStylesheetFile("'),
    ("xslt_stylesheet GOOD;", '"xslt_stylesheet" directive is not allowed here'),
    ("xml_entities BROKEN;", "xmlParseDTD() failed"),
    ("xml_entities NOFILE;", "xmlParseDTD() failed"),
    ("xslt_last_modified maybe;", "invalid value"),
    ("location / { xslt_param p; }", "invalid number of arguments"),
])
def test_refusals(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "good.xsl").write_text(XSL.format(""))
    (tmp_path / "broken.xsl").write_text("<xsl:stylesheet><not closed")
    body = (body.replace("NOFILE", str(tmp_path / "none.xsl"))
            .replace("BROKEN", str(tmp_path / "broken.xsl"))
            .replace("GOOD", str(tmp_path / "good.xsl")))
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, body)
    assert message in str(info.value) and str(info.value).endswith(":4")
