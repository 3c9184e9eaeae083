"""Request targets (RFC 9112 section 3.2) into the normalised ``$uri`` that locations
match, as nginx's ``ngx_http_parse_complex_uri`` does: percent-decoding, merged
slashes, ``.`` and ``..`` resolved; a target that escapes the root or decodes to a NUL
byte is a 400."""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import quote

from fastgate._wire import split_target
from fastgate.http.engine import ProtocolError, in_line

_HEX = "0123456789abcdefABCDEF"
# scheme "://" authority, up to the path ("/"), the query ("?") or the target's end
_ABSOLUTE = re.compile(r"[A-Za-z]+://"
                       r"((?:\[[0-9A-Za-z:._~!$&'()*+,;=-]*\]|[A-Za-z0-9.-]*)(?::[0-9]*)?)"
                       r"(?=[/?]|\Z)")


class Target(NamedTuple):  # a tuple: a request makes one (a frozen dataclass cost 2 µs)
    path: str  # normalised, decoded: $uri
    args: str  # the query string, undecoded, without "?": $args
    host: str | None  # the authority of an absolute-form target, which overrides Host
    # (as received: the request normalises it as it does a Host header)


_as_target = tuple.__new__  # Target(...) goes through a Python-level __new__: 0.2 us more


def parse_target(raw: bytes, merge_slashes: bool = True) -> Target:
    simple = split_target(raw)
    if simple is not None:
        return _as_target(Target, simple)
    return parse_target_fully(raw, merge_slashes)


def target_first(error: ProtocolError) -> ProtocolError:
    """A refused request head as nginx says it: nginx reads the target with the request
    line, before any header, so a target it refuses ("client sent invalid request") is
    the refusal, whatever the headers or the framing after it hold (``DELETE *`` with
    ``Transfer-Encoding: gzip`` is a 400, not the coding's 501)."""
    line = error.line
    if error.reading != "headers" or line is None or error.gone:
        return error
    try:
        parse_target_fully(line[1])
    except ProtocolError:
        return in_line(ProtocolError("client sent invalid request", 400, whole=True), line)
    return error


def parse_target_fully(raw: bytes, merge_slashes: bool = True) -> Target:
    """What ``parse_target`` does when the common case does not apply."""
    host = None
    # bytes past ASCII as UTF-8 (else kept as they are): the same text as their
    # percent-encoded form decodes to, so one location matches either
    text = raw.decode("utf-8", "surrogateescape")
    if not text.startswith("/"):
        # an absolute-form target, as nginx's request line parser reads one: any
        # scheme (of letters: llhttp takes no other), a host of letters, digits, "."
        # and "-" (or an IP literal), an optional port, then the path or the query
        form = _ABSOLUTE.match(text)
        if form is None:
            raise ProtocolError("invalid request target", 400)
        host = form[1]  # checked and normalised as a Host value (normal_host)
        text = text[form.end():]
        if not text.startswith("/"):
            text = "/" + text
    # as nginx's parser: a "#" ends the path and the arguments (a "?" after it starts
    # none); the target goes upstream whole all the same ($request_uri)
    path, mark, args = text.partition("?")
    if "#" in path:
        path, args = path.split("#", 1)[0], ""
    elif mark:
        args = args.split("#", 1)[0]
    return Target(normalize(path, merge_slashes), args, host)


def normalize(path: str, merge_slashes: bool = True) -> str:
    """The path decoded, ``.`` and ``..`` segments resolved and, unless
    ``merge_slashes`` is off, runs of slashes made one (nginx's URI parsing)."""
    if "%" in path:
        path = _percent_decode(path)
    if "\x00" in path:
        raise ProtocolError("NUL in request path", 400)
    if "//" not in path and "/." not in path:
        return path
    out: list[str] = []
    segs = path.split("/")[1:]
    last = len(segs) - 1
    for i, seg in enumerate(segs):
        # an empty segment is a doubled slash (kept with merge_slashes off) or, last,
        # the trailing slash (added back below)
        if seg == "." or (seg == "" and (merge_slashes or i == last)):
            continue
        if seg == "..":
            if not out:
                raise ProtocolError("request path escapes the root", 400)
            out.pop()
            continue
        out.append(seg)
    trailing = path.endswith("/") or path.endswith("/.") or path.endswith("/..")
    return "/" + "/".join(out) + ("/" if trailing and out else "")


def _percent_decode(path: str) -> str:
    buf = bytearray()
    i = 0
    raw = path.encode("utf-8", "surrogateescape")
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == 0x25:  # %
            h = raw[i + 1:i + 3].decode("latin-1")
            if len(h) != 2 or h[0] not in _HEX or h[1] not in _HEX:
                raise ProtocolError("invalid percent-encoding in request path", 400)
            buf.append(int(h, 16))
            i += 3
        else:
            buf.append(c)
            i += 1
    return bytes(buf).decode("utf-8", "surrogateescape")


def unsafe_uri(path: str) -> str | None:
    """nginx's ngx_http_parse_unsafe_uri for a path a header names (X-Accel-Redirect,
    WebDAV's Destination): decoded (a bad escape stays as it is, as ngx_unescape_uri
    leaves it), or None when it is empty or has a NUL or a ".." segment before or after
    decoding."""
    if not path or _unsafe(path):
        return None
    if "%" not in path:
        return path
    raw = path.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        two = raw[i + 1:i + 3].decode("latin-1")
        if raw[i] == 0x25 and len(two) == 2 and two[0] in _HEX and two[1] in _HEX:
            out.append(int(two, 16))
            i += 3
            continue
        out.append(raw[i])
        i += 1
    decoded = out.decode("utf-8", "surrogateescape")
    return None if _unsafe(decoded) else decoded


def _unsafe(path: str) -> bool:
    return ("\0" in path or path == ".." or path.startswith("../") or "/../" in path
            or path.endswith("/.."))


# nginx's NGX_ESCAPE_URI keeps these unescaped in a path it sends upstream
_SAFE = "/:@!$&'()*+,;=-._~"


def encode_path(path: str) -> str:
    return quote(path.encode("utf-8", "surrogateescape"), safe=_SAFE)


# what cannot stand in a query string on a request line: a space, a control byte (CR
# and LF above all), DEL and "#"; the rest stays as it is ("%" too, so escapes that are
# there stay as they are, and bytes past ASCII, which nginx copies from a client's
# arguments byte for byte)
_ARGS_UNSAFE = re.compile(r"[\x00-\x20#\x7f]")


def encode_args(args: str) -> str:
    """Arguments made by the gateway (a rewrite, try_files, error_page, set $args) from
    decoded values such as ``$uri``, fit for a request line: they can never end it."""
    return _ARGS_UNSAFE.sub(lambda m: f"%{ord(m[0]):02X}", args)


# nginx's NGX_ESCAPE_ARGS: what a capture is escaped for in a rewrite's redirect when the
# request's URI was escaped itself (space " # % & + ; < > ? \\ ^ ` { | }, controls, and
# every byte past ASCII)
_ESCAPED_ARGS = frozenset(b' "#%&+;<>?\\^`{|}') | frozenset(range(0x20)) \
    | frozenset(range(0x7F, 0x100))


def escape_capture(text: str) -> str:
    """A rewrite capture as nginx writes it into a redirect of an escaped URI."""
    raw = text.encode("utf-8", "surrogateescape")
    return "".join(f"%{b:02X}" if b in _ESCAPED_ARGS else chr(b) for b in raw)


def unescape_redirect(text: str) -> str:
    """nginx's NGX_UNESCAPE_REDIRECT over a rewrite's redirect: an escape of a visible
    character past "%" is undone, any other stays as it is; from a "?" on (written or
    escaped), the rest is left alone."""
    return unescape(text, redirect=True)


def unescape(text: str, redirect: bool = False) -> str:
    """ngx_unescape_uri: every escape undone (``redirect``: as unescape_redirect says);
    a "%" before a byte that is no hex digit is dropped, one with a bad second digit is
    dropped with both (ngx_unescape_uri's ways)."""
    raw = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == 0x3F and redirect:  # "?"
            out += raw[i:]
            break
        if c != 0x25:
            out.append(c)
            i += 1
            continue
        first = raw[i + 1:i + 2]
        if not first:
            break
        if first not in _HEX_BYTES:
            out += first  # (the "%" goes, the byte after it stays, whatever it is)
            i += 2
            continue
        second = raw[i + 2:i + 3]
        if not second:
            break
        if second not in _HEX_BYTES:
            i += 3  # (nginx writes neither)
            continue
        ch = int(raw[i + 1:i + 3], 16)
        if not redirect:
            out.append(ch)
        elif ch == 0x3F:  # an escaped "?" ends it too
            out.append(ch)
            out += raw[i + 3:]
            break
        elif 0x25 < ch < 0x7F:
            out.append(ch)
        else:
            out += raw[i:i + 3]
        i += 3
    return out.decode("utf-8", "surrogateescape")


_HEX_BYTES = frozenset(bytes([c]) for c in b"0123456789abcdefABCDEF")
