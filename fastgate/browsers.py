"""``$modern_browser``, ``$ancient_browser`` and ``$msie``, as nginx's browser module
and request parser decide them from User-Agent (ngx_http_browser_module.c)."""

from __future__ import annotations

from typing import Any

# per browser of config/directives/browser.BROWSERS: (characters of the User-Agent to
# skip before looking, the name looked for, characters from it to the version)
_MASKS = ((0, "Opera", 6), (25, "MSIE ", 5), (13, "rv:", 3), (13, "Safari/", 7),
          (25, "Konqueror/", 10))
_OPERA_NEVER = 4001000000  # Opera unlisted: a version it cannot have (it says MSIE too)


def _user_agent(r: Any) -> str | None:
    value = r.header(b"user-agent")
    return value.decode("latin-1") if value is not None else None


def _modern(r: Any, s: Any) -> bool:
    ua = _user_agent(r)
    if ua is None:
        return bool(s.modern_unlisted)
    if s.modern_browsers:
        listed = list(s.modern_browsers)
        if not any(slot == 0 for slot, _ in listed):
            listed.append((0, _OPERA_NEVER))
        for slot, wanted in sorted(listed, key=lambda b: b[0]):
            skip, name, add = _MASKS[slot]
            if skip >= len(ua):
                continue
            at = ua.find(name, skip)
            if at < 0:
                continue
            at += add
            if at >= len(ua):
                continue
            return _version_at(ua, at, wanted)
        if not s.modern_unlisted:
            return False
    if s.ancient_netscape4 and len(ua) > len("Mozilla/4.72 ") and ua.startswith(
            "Mozilla/") and "0" < ua[8] < "5":
        return False
    if any(text in ua for text in s.ancient_browsers):
        return False
    return bool(s.modern_unlisted)


def _version_at(ua: str, at: int, wanted: int) -> bool:
    version, part, scale = 0, 0, 1000000
    for c in ua[at:]:
        if "0" <= c <= "9":
            part = part * 10 + ord(c) - 48
            continue
        if c == ".":
            version += part * scale
            if version > wanted:
                return True
            part, scale = 0, scale // 100
            continue
        break
    return version + part * scale >= wanted


def modern_browser(r: Any, s: Any) -> str:
    return s.modern_browser_value if _modern(r, s) else ""


def ancient_browser(r: Any, s: Any) -> str:
    return "" if _modern(r, s) else s.ancient_browser_value


def msie(r: Any) -> str:
    """``$msie``: "1" for the agents nginx's request parser takes for MSIE."""
    return "1" if is_msie(r.header(b"user-agent")) else ""


def is_msie(agent: bytes | None) -> bool:
    """nginx's request parser's ``msie``: "MSIE " with at least three characters after
    it, and no "Opera" anywhere."""
    if agent is None or b"Opera" in agent:
        return False
    at = agent.find(b"MSIE ")
    return at >= 0 and at + 7 < len(agent)


def is_chrome(agent: bytes | None) -> bool:
    """nginx's request parser's ``chrome``: "Chrome/" from an agent that is neither
    MSIE, Opera nor a Gecko ("Gecko/": Chrome says "like Gecko")."""
    return (agent is not None and b"Chrome/" in agent and b"Gecko/" not in agent
            and not is_msie(agent) and b"Opera" not in agent)


def msie6(agent: bytes | None) -> bool:
    """nginx's request parser's ``msie6``: "MSIE 4.", "MSIE 5." or "MSIE 6." without
    "SV1" after it, unless the agent says Opera."""
    if agent is None:
        return False
    at = agent.find(b"MSIE ")
    if at < 0 or at + 7 >= len(agent) or b"Opera" in agent:
        return False
    if agent[at + 6:at + 7] != b".":
        return False
    major = agent[at + 5:at + 6]
    return major in (b"4", b"5") or major == b"6" and b"SV1" not in agent[at + 8:]


def safari(agent: bytes | None) -> bool:
    """nginx's request parser's ``safari``: "Safari/" and "Mac OS X", from an agent
    that is not MSIE (with three characters after "MSIE "), Opera, a Gecko ("Gecko/")
    nor a Chrome ("Chrome/")."""
    if agent is None or b"Opera" in agent or is_msie(agent):
        return False
    return (b"Gecko/" not in agent and b"Chrome/" not in agent and b"Safari/" in agent
            and b"Mac OS X" in agent)


# keepalive_disable's bits (ConnPolicy.keepalive_disable)
KEEPALIVE_MSIE6, KEEPALIVE_SAFARI = 1, 2


def keepalive_refused(r: Any, disabled: int) -> bool:
    """``keepalive_disable`` ends the connection after this request: a POST from MSIE
    4-6 (it may wait on a keep-alive answer to a POST), anything from Safari on a Mac
    (it may send a POST on a connection the server closed), as nginx's
    ngx_http_update_location_config."""
    agent = r.header(b"user-agent")
    if disabled & KEEPALIVE_MSIE6 and r.method == "POST" and msie6(agent):
        return True
    return bool(disabled & KEEPALIVE_SAFARI) and safari(agent)
