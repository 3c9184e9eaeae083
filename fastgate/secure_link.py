"""``$secure_link`` and ``$secure_link_expires``, as nginx's secure_link module: the
link's hash (base64url MD5) against ``secure_link_md5``'s string, and its expiry; or,
with ``secure_link_secret``, the older form ``/prefix/HEX-MD5/link`` (MD5 of the link
and the secret). "" when the link is not valid, "0" when it has expired, "1" (or, in
the older form, the link) when it is valid."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Any

from fastgate.decimals import decimal

_EXPIRES = ("secure_link", "expires")  # the request's memo key
_URL_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _split(r: Any, s: Any) -> tuple[str, str | None]:
    """secure_link's value: the hash and, after a comma, the expiry as given."""
    text = s.secure_link.render(r)
    hashed, comma, expires = text.partition(",")
    return hashed, expires if comma else None


def _md5_of_base64url(text: str) -> bytes | None:
    """ngx_decode_base64url: stops at "=", refuses other characters and a length that
    cannot be base64."""
    data = text.encode("latin-1", "replace").split(b"=", 1)[0]
    if not set(data) <= _URL_ALPHABET or len(data) % 4 == 1:
        return None
    try:
        return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return None


def secure_link(r: Any, s: Any) -> str:
    """``$secure_link`` under the request's location's settings ``s``."""
    if s.secure_link_secret is not None:
        return _older_form(r, s.secure_link_secret)
    if s.secure_link is None or s.secure_link_md5 is None:
        return ""
    hashed, expires = _split(r, s)
    deadline = 0
    if expires is not None:
        deadline = decimal(expires) or 0  # (ngx_atotm's: past 2^63 - 1 it is none)
        if deadline <= 0:
            return ""
        # $secure_link_expires from now on (secure_link_md5 may use it), as nginx's ctx
        r.memo[_EXPIRES] = expires
    if len(hashed) > 24:
        return ""
    given = _md5_of_base64url(hashed)
    if given is None or len(given) != 16:
        return ""
    wanted = hashlib.md5(s.secure_link_md5.render(r).encode("utf-8", "surrogateescape"),
                         usedforsecurity=False).digest()
    if not hmac.compare_digest(given, wanted):
        return ""
    return "0" if deadline and deadline < time.time() else "1"


def secure_link_expires(r: Any) -> str:
    """The expiry of the link ``$secure_link`` has read (empty before it is read, or
    when it had none or an invalid one)."""
    value: str = r.memo.get(_EXPIRES, "")
    return value


def _older_form(r: Any, secret: str) -> str:
    """``/prefix/HEX/link`` in the request's URI as the client sent it (arguments
    included): the link when HEX is the MD5 of the link and the secret."""
    uri = r.target
    rest = uri[1:]
    slash = rest.find("/")
    if slash < 0:
        return ""
    rest = rest[slash + 1:]
    slash = rest.find("/")
    if slash != 32 or len(rest) == 33:
        return ""
    hexed, link = rest[:32], rest[33:]
    try:
        given = bytes.fromhex(hexed)
    except ValueError:
        return ""
    wanted = hashlib.md5(link.encode("utf-8", "surrogateescape") + secret.encode("utf-8"),
                         usedforsecurity=False).digest()
    return link if hmac.compare_digest(given, wanted) else ""

