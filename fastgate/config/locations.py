"""Location matching, as ``ngx_http_core_find_location`` does it.

1. an exact ``=`` match ends the search;
2. a URI that is the name of a prefix location ending in "/" that proxies, without
   the slash, gets a 301 to that name (nginx's auto_redirect; an exact or prefix
   location of that very URI wins);
3. otherwise the longest matching prefix is remembered (its nested locations are
   searched the same way, and a nested exact or regex match wins);
4. a ``^~`` longest prefix skips the regexes;
5. regexes (``~`` case-sensitive, ``~*`` case-insensitive) are tried in the order of the
   file; the first match wins and its captures become ``$1``, ``$2``...;
6. otherwise the longest prefix is used. Named locations (``@name``) are only reached by
   ``error_page`` and ``try_files``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fastgate.config.errors import ConfigError
from fastgate.config.model import Location

# PCRE's (?<name>...) is Python's (?P<name>...); lookbehinds (?<= (?<! are left alone.
_PCRE_NAMED = re.compile(r"\(\?<(?![=!])")


def compile_regex(pattern: str, caseless: bool) -> re.Pattern[str]:
    """A location, map or server_name regex; ``ConfigError`` (no position) if it does
    not compile. ASCII matching, as PCRE without UTF: ``\\w``, ``\\d`` and case folding
    never reach beyond ASCII (under Unicode rules ``ſ`` would match ``s`` and the Kelvin
    sign ``k``, letting ``/adminſ`` or ``/ADMIN`` spellings slip past a ``~*`` rule)."""
    flags = re.ASCII | (re.IGNORECASE if caseless else 0)
    try:
        return re.compile(_PCRE_NAMED.sub("(?P<", pattern), flags)
    except re.error as e:
        raise ConfigError(f'pcre2_compile() failed: {e} in "{pattern}"') from None


# distinct URIs whose answer ``LocationTree.find`` keeps; past this it starts over
FIND_MEMO_SIZE = 4096

# ``find``'s captures when the answer is nginx's auto_redirect (compared by identity):
# a 301 to the location's name, not the location's content
AUTO_REDIRECT: tuple[str, ...] = ("<auto_redirect>",)


@dataclass(frozen=True)
class LocationTree:
    exact: dict[str, Location] = field(default_factory=dict)
    prefixes: tuple[Location, ...] = ()  # longest pattern first
    regexes: tuple[Location, ...] = ()  # file order
    named: dict[str, Location] = field(default_factory=dict)
    # nginx's auto_redirect: a prefix location ending in "/" that proxies answers its
    # name without the slash with a 301 to the name, before any regex (so "/api" never
    # falls through to "location /" when "location /api/" is the protected one)
    redirects: dict[str, Location] = field(default_factory=dict)
    # find's answers by URI: a pure function of the URI and this (immutable) tree, and
    # the same few URIs come again and again; bounded, so a flood of distinct ones only
    # makes it start over
    _memo: dict[str, tuple[Location | None, tuple[str, ...]]] = field(
        default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, locations: list[Location]) -> "LocationTree":
        exact: dict[str, Location] = {}
        prefixes: dict[str, Location] = {}
        regexes: list[Location] = []
        named: dict[str, Location] = {}
        for loc in locations:
            if loc.modifier == "=":
                table = exact
            elif loc.modifier == "@":
                table = named
            elif loc.modifier in ("", "^~"):
                table = prefixes
            else:
                regexes.append(loc)
                continue
            if loc.pattern in table:
                raise ConfigError(f'duplicate location "{loc.pattern}"', loc.where.file,
                                  loc.where.line)
            table[loc.pattern] = loc
        ordered = tuple(sorted(prefixes.values(), key=lambda l: len(l.pattern), reverse=True))
        redirects = {}
        for loc in (*exact.values(), *ordered):
            name = loc.pattern
            if (loc.proxy_pass is not None and len(name) > 1 and name.endswith("/")
                    and name[:-1] not in exact and name[:-1] not in prefixes):
                redirects.setdefault(name[:-1], loc)
        return cls(exact, ordered, tuple(regexes), named, redirects)

    def find(self, uri: str) -> tuple[Location | None, tuple[str, ...]]:
        """The location for ``uri`` and the regex captures (``$0`` first) if a regex won."""
        memo = self._memo
        hit = memo.get(uri)
        if hit is None:
            loc, caps, _ = self._find(uri)
            hit = (loc, caps)
            if len(memo) >= FIND_MEMO_SIZE:
                memo.clear()
            memo[uri] = hit
        return hit

    def _find(self, uri: str) -> tuple[Location | None, tuple[str, ...], bool]:
        hit = self.exact.get(uri)
        if hit is not None:
            return hit, (), True
        if self.redirects:
            hit = self.redirects.get(uri)
            if hit is not None:
                return hit, AUTO_REDIRECT, True
        best = None
        for loc in self.prefixes:
            if uri.startswith(loc.pattern):
                best = loc
                break
        noregex = best is not None and best.modifier == "^~"
        if best is not None and best.children is not None:
            inner, caps, done = best.children._find(uri)
            if inner is not None:
                if done:
                    return inner, caps, True
                best = inner
                noregex = noregex or inner.modifier == "^~"
        if not noregex:
            for loc in self.regexes:
                assert loc.regex is not None
                m = loc.regex.search(uri)
                if m is not None:
                    if loc.children is not None:
                        inner, caps, done = loc.children._find(uri)
                        if inner is not None and done:
                            return inner, caps, True
                    return loc, (m.group(0),) + tuple(g or "" for g in m.groups()), True
        return best, (), noregex

    def all(self) -> list[Location]:
        """Every location, nested ones included (for load-time checks)."""
        out: list[Location] = []
        for loc in (*self.exact.values(), *self.prefixes, *self.regexes, *self.named.values()):
            out.append(loc)
            if loc.children is not None:
                out.extend(loc.children.all())
        return out
