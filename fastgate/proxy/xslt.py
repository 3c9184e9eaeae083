"""The XSLT filter (``xslt_stylesheet``), as nginx's ngx_http_xslt_filter_module: a
response whose type is one of ``xslt_types`` (text/xml) is held whole, parsed, put
through the location's stylesheets in order with their parameters, and sent as the
last one made it — Content-Type its ``xsl:output`` media type (text/html for an HTML
result), with its encoding as the charset; Content-Length the result's; Last-Modified
and ETag gone unless ``xslt_last_modified on`` (then the ETag weak); no ranges.

The response is held by running the location's content handler on a ``Held``
connection (a ``proxy.capture.Kept`` that passes the client's body through), so
every handler (files, proxied and FastCGI-family answers, fastgate's own pages) is
held the same way, and the transform sees what nginx's filter sees: the response of
the location that answered (after internal redirects), its status and headers. A
document that is not well formed, a parameter that does not evaluate or a stylesheet
that fails is a 500, as nginx's (through ``error_page``). A HEAD is answered with the
head of the transformed GET, as nginx's (it reads the body to know its length).

Differences: a response past ``capture.KEPT_MAX`` (8 MiB) is not held (500); the
filter runs after the body filters (sub_filter, charset, SSI), where nginx runs it
before charset and SSI; an external entity is never loaded (``fastgate.stylesheets``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from fastgate.http.engine import ProtocolError
from fastgate.http.uri import unescape
from fastgate.proxy.capture import KEPT_MAX, Kept
from fastgate.proxy.headers import kind_of
from fastgate.proxy.status import reason
from fastgate.proxy.steps import DONE, finished
from fastgate.stylesheets import is_html, parse_document

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastgate.config.model import Location, Settings
    from fastgate.http.engine import Headers
    from fastgate.http.flow import BodyBuffer
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request
    from fastgate.proxy.steps import Fail, Phase, Step


class Held(Kept):
    """The connection a main request answers on while its response is held whole: the
    client's body comes through, and its end; what is written is kept. (Not a
    subrequest's ``Capture``: conditionals, ranges, additions apply as to the client's.)"""

    @property
    def body(self) -> BodyBuffer | None:
        return self.main.body

    def close_after_response(self) -> None:
        self.main.close_after_response()


class Failed(Exception):
    """The transform failed (logged): the answer is a 500."""


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
            raise Failed
        value, _, rest = rest.partition(":")
        out[name] = unescape(value)
    return out


def transform(req: Request, s: Settings, headers: Headers, body: bytes,
              log: Callable[[str], None]) -> tuple[Headers, bytes]:
    """The response's headers and body through the location's stylesheets (Failed:
    logged, a 500)."""
    try:
        doc = parse_document(body, s.xml_entities)
    except etree.XMLSyntaxError as e:
        log(f'libxml2 error: "{e.msg}"')
        log("not well formed XML document")
        raise Failed from None
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
            raise Failed from None
    assert sheet is not None
    out = bytes(doc)
    if not out:
        log("xsltSaveResultToString() returned zero-length result")
        raise Failed
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


class XsltFilter:
    """Holds the responses of locations with stylesheets, and transforms them."""

    def __init__(self, fail: Fail, client_error: Callable[[Request], Callable[[str], None]]
                 ) -> None:
        self.fail = fail
        self.client_error = client_error

    def wrap(self, inner: Phase) -> Phase:
        """``inner`` (a location's content handler) with its response held."""

        def run(conn: ClientSide, req: Request, loc: Location) -> object:
            if isinstance(conn, Held):  # (an internal redirect while held: held once)
                return inner(conn, req, loc)
            return self._held(conn, req, loc, inner)

        return run  # type: ignore[return-value]

    async def _held(self, conn: ClientSide, req: Request, loc: Location,
                    inner: Phase) -> Step:
        held = Held(conn)
        method = req.method
        req.method = "GET" if method == "HEAD" else method  # (the body tells the length)
        try:
            await finished(inner(held, req, loc))
        finally:
            req.method = method
        if conn.closed:
            return DONE
        log = self.client_error(req)
        final = req.location if req.location is not None else loc
        if held.cut:
            log(f"a response of more than {KEPT_MAX} bytes cannot be held for XSLT")
            return await finished(self.fail(conn, req, final, 500))
        status, headers, body = held.status, held.headers, bytes(held.out)
        if applies(final.settings, status, headers):
            try:
                headers, body = transform(req, final.settings, headers, body, log)
            except Failed:
                req.status = 0
                return await finished(self.fail(conn, req, final, 500))
        head_only = method == "HEAD" or status in (204, 304) or status < 200
        exchange = conn.exchange
        assert exchange is not None
        try:
            out = exchange.respond(status, reason(status), headers, len(body), head_only)
        except ProtocolError:
            exchange.abort()
            return DONE
        if not head_only:
            out += exchange.body(body)
        out += exchange.end()
        req.sent_headers = headers
        req.status = status
        exchange.write(out)
        req.bytes_sent = len(out)
        req.body_bytes_sent = 0 if head_only else len(body)
        return DONE


__all__ = ["Held", "XsltFilter", "applies", "transform"]
