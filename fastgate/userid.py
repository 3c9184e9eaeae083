"""The userid module at run time, as nginx's ngx_http_userid_filter_module: the client's
``uid`` cookie read (``$uid_got``), a new one made where it has none or it was reset
(``$uid_set``, ``set $uid_reset 1``), and the Set-Cookie (and P3P) added to the
response. The numbers are nginx's four 32-bit words: the service (or the address the
request came to), the time, the worker's start value, a sequence; their bytes in the
cookie are the words as nginx keeps them in memory (little-endian for ``v1``, network
order for ``on``)."""

from __future__ import annotations

import base64
import binascii
import email.utils
import os
import struct
import time
from typing import Any

from fastgate.config import addresses
from fastgate.cookie_header import cookie_of

_MAX_EXPIRES = 2145916555
_MAX_DATE = "Thu, 31-Dec-37 23:55:55 GMT"


class _Sequence:
    """Each worker's start value and sequences (nginx keeps them per process too: two
    workers never make the same uid because their start values differ)."""

    def __init__(self) -> None:
        usec = int((time.time() % 1) * 1_000_000)
        self.start = ((usec // 20) << 16 | os.getpid()) & 0xFFFFFFFF
        self.v1 = 1
        self.v2 = 0x03030302

    def next_v1(self) -> int:
        n, self.v1 = self.v1, (self.v1 + 0x100) & 0xFFFFFFFF
        return n

    def next_v2(self) -> int:
        n = self.v2
        self.v2 = (self.v2 + 0x100) & 0xFFFFFFFF
        if self.v2 < 0x03030302:
            self.v2 = 0x03030302
        return n


_SEQUENCE = _Sequence()
_KEY = ("userid", "ctx")
_LE = struct.Struct("<4I")
_BE = struct.Struct(">4I")


def _context(r: Any, s: Any, log: Any = None) -> dict[str, Any]:
    """The request's uid state: the cookie, the words it holds (got), those to set."""
    ctx: dict[str, Any] | None = r.memo.get(_KEY)
    if ctx is not None:
        return ctx
    ctx = {"cookie": "", "got": None, "set": None, "reset": False}
    r.memo[_KEY] = ctx
    value = cookie_of(r.headers, s.userid_name.lower())
    if value is None:
        return ctx
    ctx["cookie"] = value
    if len(value) < 22:
        if log is not None:
            log(f'client sent too short userid cookie "{s.userid_name}={value}"')
        return ctx
    try:
        raw = base64.b64decode(value[:22] + "==", validate=True)
    except (binascii.Error, ValueError):
        if log is not None:
            log(f'client sent invalid userid cookie "{s.userid_name}={value}"')
        return ctx
    ctx["got"] = _LE.unpack(raw)
    return ctx


def _make(r: Any, s: Any, ctx: dict[str, Any]) -> None:
    """ngx_http_userid_create_uid: keep the client's, mark it, or make a new one."""
    if ctx["set"] is not None:
        return
    got = ctx["got"]
    if got is not None and got[3] != 0:
        reset = r.variables.get("uid_reset", "")
        if reset in ("", "0"):
            cookie = ctx["cookie"]
            if not s.userid_mark or (len(cookie) > 23 and cookie[22] == s.userid_mark
                                     and cookie[23] == "="):
                ctx["set"] = (0, 0, 0, 0)  # nothing to set
                return
            ctx["set"] = got
            return
        ctx["reset"] = True
    now = int(time.time()) & 0xFFFFFFFF
    if s.userid == "v1":
        service = s.userid_service if s.userid_service is not None else 0
        ctx["set"] = (service & 0xFFFFFFFF, now, _SEQUENCE.start, _SEQUENCE.next_v1())
        return
    if s.userid_service is not None:
        first = struct.pack(">I", s.userid_service & 0xFFFFFFFF)
    else:
        first = _address_bytes(r.server_addr)
    raw = first + struct.pack(">III", now, _SEQUENCE.start, _SEQUENCE.next_v2())
    ctx["set"] = _LE.unpack(raw)  # as nginx's words in memory, read little-endian


def _address_bytes(addr: str) -> bytes:
    """The address the request came to, as nginx takes it for ``userid on``: IPv4's four
    bytes, IPv6's last four."""
    found = addresses.parse(addr)
    return found.packed[-4:] if found is not None else b"\0\0\0\0"


def set_cookie(r: Any, s: Any, log: Any = None) -> list[tuple[bytes, bytes]]:
    """The response's Set-Cookie (and P3P) for ``userid on|v1``; none when the client's
    cookie stands as it is."""
    ctx = _context(r, s, log)
    _make(r, s, ctx)
    words = ctx["set"]
    if words is None or words[3] == 0:
        return []
    got = ctx["got"]
    mark = s.userid_mark
    if got is None or got[3] == 0 or ctx["reset"]:
        encoded = base64.b64encode(_LE.pack(*words)).decode()  # the words' bytes
        if mark:
            encoded = encoded[:-2] + mark + encoded[-1:]
        value = encoded
    else:
        value = ctx["cookie"][:22] + mark + "="
    text = f"{s.userid_name}={value}"
    if s.userid_expires == _MAX_EXPIRES:
        text += f"; expires={_MAX_DATE}"
    elif s.userid_expires:
        when = email.utils.formatdate(int(time.time()) + s.userid_expires, usegmt=True)
        # nginx's cookie date (ngx_http_cookie_time): "Thu, 31-Dec-37 23:55:55 GMT", the
        # year in two digits up to 2037
        day, date, month, year, clock, zone = when.replace(",", "").split()
        short = year[2:] if int(year) <= 2037 else year
        text += f"; expires={day}, {date}-{month}-{short} {clock} {zone}"
    text += s.userid_domain + s.userid_path
    for flag in s.userid_flags:
        text += f"; {flag}"
    out = [(b"Set-Cookie", text.encode("latin-1", "replace"))]
    if s.userid_p3p:
        out.append((b"P3P", s.userid_p3p.encode("latin-1", "replace")))
    return out


def _words(name: str, words: tuple[int, ...]) -> str:
    return name + "=" + "".join(f"{w:08X}" for w in words)


def uid_got(r: Any, s: Any) -> str:
    if s.userid == "off":
        return ""
    got = _context(r, s)["got"]
    return _words(s.userid_name, got) if got is not None and got[3] != 0 else ""


def uid_set(r: Any, s: Any) -> str:
    if not s.sets_userid:
        return ""
    ctx = _context(r, s)
    _make(r, s, ctx)
    words = ctx["set"]
    return _words(s.userid_name, words) if words is not None and words[3] != 0 else ""


def uid_reset(r: Any) -> str:
    value: str = r.variables.get("uid_reset", "")
    return value

