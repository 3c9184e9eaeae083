"""XSLT stylesheets and entity declarations for the XSLT filter (``xslt_stylesheet``,
``xml_entities``), read at load through lxml — libxml2 and libxslt, the libraries
nginx's ngx_http_xslt_filter_module links — and applied to a response's document.

What nginx takes from a compiled stylesheet for the response's head is read here from
its ``xsl:output`` elements (and those of the stylesheets it imports or includes, as
nginx walks ``s->imports``): the media type, the encoding, the output method.

Documents are parsed as nginx parses them (entities substituted, an external DTD
replaced by ``xml_entities``' declarations) but for one thing: an external entity
(``<!ENTITY x SYSTEM "file:///etc/passwd">``) is never loaded — libxml2 in nginx would
read it, an XXE read of the gateway's files that fastgate does not reproduce; such a
document does not parse. Stylesheets may read local files (``document()``), never the
network, and write nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from fastgate.errors import FastgateError

_XSL = "{http://www.w3.org/1999/XSL/Transform}"
# what a stylesheet may do when applied: read files (nginx's libxslt default), no more
_ACCESS = etree.XSLTAccessControl(read_file=True, write_file=False, create_dir=False,
                                  read_network=False, write_network=False)


class StylesheetError(FastgateError):
    """A stylesheet or a DTD that cannot be read (nginx's words)."""


@dataclass(frozen=True, eq=False)
class Stylesheet:
    path: str
    xslt: Any  # lxml's etree.XSLT
    media_type: str | None  # xsl:output's, here or in an import
    encoding: str | None
    method: str | None


def _output(path: Path, seen: set[Path]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """A stylesheet's own xsl:output attributes (later elements override earlier), and
    those of the stylesheets it imports or includes, in order."""
    if path in seen:
        return {}, []
    seen.add(path)
    try:
        root = etree.parse(str(path)).getroot()
    except (OSError, etree.XMLSyntaxError):
        return {}, []
    own: dict[str, str] = {}
    for out in root.iter(f"{_XSL}output"):
        own.update({k: v for k, v in out.attrib.items() if isinstance(k, str)})
    others: list[dict[str, str]] = []
    for child in root:
        if child.tag in (f"{_XSL}import", f"{_XSL}include") and child.get("href"):
            theirs, further = _output(path.parent / child.get("href", ""), seen)
            others.append(theirs)
            others.extend(further)
    return own, others


def load_stylesheet(path: str) -> Stylesheet:
    try:
        xslt = etree.XSLT(etree.parse(path), access_control=_ACCESS)
    except (OSError, etree.XMLSyntaxError, etree.XSLTParseError):
        raise StylesheetError(f'xsltParseStylesheetFile("{path}") failed') from None
    own, others = _output(Path(path), set())

    def first(name: str) -> str | None:
        return next((o[name] for o in (own, *others) if name in o), None)

    return Stylesheet(path, xslt, first("media-type"), first("encoding"), own.get("method"))


def load_entities(path: str) -> bytes:
    """``xml_entities``' file, checked as a DTD."""
    try:
        etree.DTD(path)
        return Path(path).read_bytes()
    except (OSError, etree.DTDParseError):
        raise StylesheetError("xmlParseDTD() failed") from None


class _Entities(etree.Resolver):  # type: ignore[misc]
    """Every external DTD a document names is ``xml_entities``' declarations (nginx
    puts them in its place); without them, an empty one."""

    def __init__(self, dtd: bytes) -> None:
        super().__init__()
        self.dtd = dtd

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        return self.resolve_string(self.dtd, context)


def parse_document(data: bytes, entities: bytes | None) -> Any:
    """The document (etree.XMLSyntaxError: not well formed)."""
    parser = etree.XMLParser(load_dtd=True, resolve_entities="internal", no_network=True)
    parser.resolvers.add(_Entities(entities or b""))
    return etree.fromstring(data, parser).getroottree()


def is_html(sheet: Stylesheet, result: Any) -> bool:
    """Whether libxslt made an HTML document: the html method, or none and a result
    whose root is an ``html`` element without a namespace."""
    if sheet.method is not None:
        return sheet.method == "html"
    root = result.getroot()
    return root is not None and isinstance(root.tag, str) and root.tag.lower() == "html"


__all__ = ["Stylesheet", "StylesheetError", "is_html", "load_entities", "load_stylesheet",
           "parse_document"]
