"""The XSLT filter (``xslt_stylesheet``), as nginx's ngx_http_xslt_filter_module: a
response whose type is one of ``xslt_types`` (text/xml) is held whole, parsed, put
through the location's stylesheets in order with their parameters, and sent as the
last one made it — Content-Type its ``xsl:output`` media type (text/html for an HTML
result), with its encoding as the charset; Content-Length the result's; Last-Modified
and ETag gone unless ``xslt_last_modified on`` (then the ETag weak); no ranges.

The response is held whole by ``proxy.held`` (a return's text, made in the rewrite
phase, is transformed where it is made: ``Responder.page``). A document that is not
well formed, a parameter that does not evaluate or a stylesheet that fails is a 500, as
nginx's (through ``error_page``).

It runs where nginx's does among the filters: after sub_filter's replacements, before
the charset module and SSI (``proxy.output``). Difference: an external entity is never
loaded (``fastgate.stylesheets``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from fastgate.http.uri import unescape
from fastgate.proxy.headers import kind_of
from fastgate.proxy.held import Failed
from fastgate.stylesheets import is_html, parse_document

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastgate.config.model import Settings
    from fastgate.http.engine import Headers
    from fastgate.proxy.request import Request


def applies(s: Settings, status: int, headers: Headers) -> bool:
    if not s.xslt_stylesheet or status == 304:
        return False
    kind = kind_of(headers)
    return "*" in s.xslt_types or (kind is not None and kind in s.xslt_types)


def _sheet_params(text: str, log: Callable[[str], None]) -> dict[str, str]:
    """``xslt_stylesheet``'s ``name=value:name=value`` (values unescaped)."""
    out: dict[str, str] = {}
    rest = text
    while rest:
        name, eq, rest = rest.partition("=")
        if not eq:
            log(f'invalid libxslt parameter "{name}"')
            raise Failed(500)
        value, _, rest = rest.partition(":")
        out[name] = unescape(value)
    return out


def too_big(log: Callable[[str], None]) -> None:
    """(no word of its own for a response too large to hold: the holder's 500)"""


async def transform(req: Request, s: Settings, status: int, headers: Headers, body: bytes,
                    log: Callable[[str], None]) -> tuple[int, Headers, bytes]:
    """A held response through the stylesheets (``proxy.held``)."""
    shown, out = apply_sheets(req, s, headers, body, log)
    return status, shown, out


def apply_sheets(req: Request, s: Settings, headers: Headers, body: bytes,
                 log: Callable[[str], None]) -> tuple[Headers, bytes]:
    """The response's headers and body through the location's stylesheets (Failed:
    logged, a 500)."""
    try:
        doc = parse_document(body, s.xml_entities)
    except etree.XMLSyntaxError as e:
        log(f'libxml2 error: "{e.msg}"')
        log("not well formed XML document")
        raise Failed(500) from None
    common: dict[str, str] = {}
    for param, template, quoted in s.xslt_param:
        text = template.render(req)
        common[param] = etree.XSLT.strparam(text) if quoted else text
    sheet = None
    for sheet, params in s.xslt_stylesheet:
        args = dict(common)
        for template in params:
            args.update(_sheet_params(template.render(req), log))
        try:
            doc = sheet.xslt(doc, **args)
        except (etree.XSLTApplyError, etree.XPathError) as e:
            log(f"xsltApplyStylesheet() failed: {e}")
            raise Failed(500) from None
    assert sheet is not None
    out = bytes(doc)
    if not out:
        log("xsltSaveResultToString() returned zero-length result")
        raise Failed(500)
    kind = (sheet.media_type or ("text/html" if is_html(sheet, doc) else None))
    shown: Headers = []
    for name, value in headers:
        low = name.lower()
        if low in (b"content-length", b"accept-ranges"):
            continue
        if low in (b"last-modified", b"etag") and not s.xslt_last_modified:
            continue
        if low == b"etag" and not value.startswith(b"W/"):
            value = b"W/" + value
        if low == b"content-type":
            if kind is not None:
                value = kind.encode("latin-1")
            if sheet.encoding and (kind is not None or b";" not in value):
                value += b"; charset=" + sheet.encoding.encode("latin-1")
        shown.append((name, value))
    return shown, out


__all__ = ["applies", "apply_sheets", "too_big", "transform"]
