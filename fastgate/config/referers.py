"""``valid_referers`` and ``$invalid_referer``, as nginx's referer module decides: the
Referer's host (after ``http://`` or ``https://``) is looked up among the names given
(exact, leading or trailing wildcard, each with an optional URI prefix), then the
server's regex names (``server_names``), then the ``~`` regexes (caseless, over the
Referer without its scheme). No Referer is valid with ``none``; one without a known
scheme (a firewall blanked it) with ``blocked``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fastgate.config.hostnames import HostTable
from fastgate.config.regex import compile_regex

INVALID = "1"
VALID = ""
_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class Referers:
    names: tuple[tuple[str, str], ...]  # (name or wildcard, URI prefix or "")
    regexes: tuple[re.Pattern[str], ...] = ()
    none: bool = False
    blocked: bool = False
    server_names: bool = False  # the server's names are valid too
    table: HostTable[str] = field(init=False, compare=False, repr=False)
    # the server's names as tables, per server (server_names): built on first use
    _of_server: dict[tuple[str, ...], tuple[HostTable[str], tuple[re.Pattern[str], ...]]] = (
        field(default_factory=dict, init=False, compare=False, repr=False))

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", HostTable(self.names))

    def check(self, referer: str | None, server_names: tuple[str, ...]) -> str:
        """``$invalid_referer``: "" for a valid Referer, "1" for another."""
        if not (self.table or self.regexes or self.server_names):
            return VALID  # nginx: nothing to check against
        if referer is None:
            return VALID if self.none else INVALID
        low = referer[:8].lower()
        scheme = next((s for s in _SCHEMES if low.startswith(s)), None)
        if scheme is None or len(referer) < len("http://i.ru"):
            return VALID if self.blocked else INVALID
        rest = referer[len(scheme):]
        host = re.split(r"[/:]", rest, maxsplit=1)[0]
        if len(host) > 256:
            return INVALID
        host = host.lower()
        table, server_regexes = self._tables(server_names)
        found = table.find(host)
        if found is not None:
            prefix = found[0]
            if not prefix:
                return VALID
            slash = rest.find("/")
            path = rest[slash:] if slash >= 0 else ""
            return VALID if path.startswith(prefix) else INVALID
        if any(rx.search(host) for rx in server_regexes):
            return VALID
        if any(rx.search(rest) for rx in self.regexes):
            return VALID
        return INVALID

    def _tables(self, names: tuple[str, ...],
                ) -> tuple[HostTable[str], tuple[re.Pattern[str], ...]]:
        """The names to look the host up in (with ``server_names``, the server's too,
        in one table as nginx's hash) and the server's regex names."""
        if not self.server_names:
            return self.table, ()
        built = self._of_server.get(names)
        if built is None:
            plain = ((n, "") for n in names if not n.startswith("~"))
            built = (HostTable((*self.names, *plain)),
                     tuple(compile_regex(n[1:], True) for n in names if n.startswith("~")))
            self._of_server[names] = built
        return built
