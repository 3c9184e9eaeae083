"""Set-Cookie of proxied responses as ``proxy_cookie_domain``, ``proxy_cookie_path``
and ``proxy_cookie_flags`` rewrite them, step for step as nginx's proxy module
(ngx_http_proxy_rewrite_cookie): the value is split at ``;`` into attributes, the
Domain and Path values go through their rules, the flags are set or cleared, and only a
cookie that changed is written again (``name=value; Attr=value; Flag``)."""

from __future__ import annotations

from typing import Any

from fastgate import userid
from fastgate._wire import field_value
from fastgate.config.model import CookieFlags, CookieRewrite, Settings
from fastgate.http.engine import Headers
from fastgate.variables import set_named_captures

Attribute = list[Any]  # [name or None (removed), value or None (a flag)]

_SAMESITE = {"samesite=strict": "Strict", "samesite=lax": "Lax", "samesite=none": "None"}


def response_cookies(headers: Headers, s: Settings, req: Any, log: Any) -> Headers:
    """A proxied response's Set-Cookie rewritten by ``proxy_cookie_*``, then the
    userid module's own cookie added (as nginx's header filter adds it after)."""
    if s.proxy_cookie_path or s.proxy_cookie_domain or s.proxy_cookie_flags:
        headers = rewrite_set_cookies(headers, s, req)
    if s.sets_userid:
        headers = [*headers, *userid.set_cookie(req, s, log)]
    return headers


def rewrite_set_cookies(headers: Headers, s: Settings, req: Any) -> Headers:
    """``headers`` with each Set-Cookie rewritten by the location's rules."""
    out: Headers = []
    for name, value in headers:
        if name.lower() == b"set-cookie":
            text = rewrite_cookie(value.decode("utf-8", "surrogateescape"), s, req)
            if text is not None:
                # a replacement that would put a control byte in the header is dropped
                value = field_value(text) or value
        out.append((name, value))
    return out


def rewrite_cookie(text: str, s: Settings, req: Any) -> str | None:
    """The cookie ``text`` as the rules leave it, or None when they change nothing (or
    it is not ``name=value``: nginx leaves it alone)."""
    attrs = _parse(text)
    if attrs[0][1] is None:
        return None
    changed = False
    for attr in attrs[1:]:
        key, value = attr
        if value is None:
            continue
        low = key.lower()
        if s.proxy_cookie_domain and low == "domain":
            new = _rewritten(value, s.proxy_cookie_domain, req, domain=True)
            if new is not None:
                attr[1], changed = new, True
        if s.proxy_cookie_path and low == "path":
            new = _rewritten(attr[1], s.proxy_cookie_path, req, domain=False)
            if new is not None:
                attr[1], changed = new, True
    if s.proxy_cookie_flags and _flagged(attrs, s.proxy_cookie_flags, req):
        changed = True
    if not changed:
        return None
    return "; ".join(k if v is None else f"{k}={v}" for k, v in attrs if k is not None)


def _parse(text: str) -> list[Attribute]:
    """nginx's split: at each ``;``, spaces (not tabs) trimmed around the name and the
    value; an attribute without ``=`` has no value."""
    out: list[Attribute] = []
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        out.append([name.strip(" "), value.strip(" ") if eq else None])
    return out


def _rewritten(value: str, rules: tuple[CookieRewrite, ...], req: Any,
               domain: bool) -> str | None:
    for rule in rules:
        if rule.regex is not None:
            m = rule.regex.search(value)
            if m is None:
                continue
            req.captures = (m.group(0), *m.groups())  # $1... in the replacement, as nginx
            set_named_captures(req, m)
            return str(rule.replacement.render(req))
        assert rule.pattern is not None
        pattern = rule.pattern.render(req)
        if domain:
            dot = "." if value.startswith(".") else ""
            if pattern.lower() == value[len(dot):].lower():
                return dot + rule.replacement.render(req)
        elif value.startswith(pattern):
            return rule.replacement.render(req) + value[len(pattern):]
    return None


def _flagged(attrs: list[Attribute], rules: tuple[CookieFlags, ...], req: Any) -> bool:
    """The first rule naming the cookie sets and clears its flags; True when it named
    any flag (nginx writes the cookie again then, changed or not)."""
    name = attrs[0][0]
    for rule in rules:
        if rule.regex is not None:
            m = rule.regex.search(name)
            if m is not None:
                req.captures = (m.group(0), *m.groups())
                set_named_captures(req, m)
                break
        elif rule.name is not None and rule.name.render(req).lower() == name.lower():
            break
    else:
        return False
    wanted = {v for v in (f.render(req).lower() for f in rule.flags)
              if v in _KNOWN}
    if not wanted:
        return False
    for attr in attrs[1:]:
        key = attr[0].lower() if attr[0] is not None else ""
        if key in ("secure", "httponly"):
            if key in wanted:
                wanted.discard(key)  # already there
            elif "no" + key in wanted:
                attr[0] = None
        elif key == "samesite":
            flag = _first_samesite(wanted)
            if flag is not None:
                wanted.discard(flag)
                if (attr[1] or "").lower() != flag[9:]:
                    attr[0], attr[1] = "SameSite", _SAMESITE[flag]
            elif "nosamesite" in wanted:
                attr[0] = None
    if "secure" in wanted:
        attrs.append(["Secure", None])
    if "httponly" in wanted:
        attrs.append(["HttpOnly", None])
    flag = _first_samesite(wanted)
    if flag is not None:
        attrs.append(["SameSite", _SAMESITE[flag]])
    return True


def _first_samesite(wanted: set[str]) -> str | None:
    return next((f for f in _SAMESITE if f in wanted), None)


_KNOWN = frozenset({"secure", "nosecure", "httponly", "nohttponly", "nosamesite",
                    *_SAMESITE})
