"""Host names as nginx's hostname hashes hold them (ngx_hash_find_combined): an exact
name, else the longest leading wildcard (``*.example.com``; ``.example.com`` is that
and ``example.com`` too), else the longest trailing one (``www.example.*``). Used by
server selection and ``valid_referers``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

V = TypeVar("V")


def is_wildcard_ok(name: str) -> bool:
    """Whether nginx takes ``name`` as a name or a wildcard: a ``*`` only as the whole
    first label or the whole last one, and not both."""
    if "*" not in name:
        return bool(name) and name != "."
    if name.startswith("*.") and "*" not in name[2:]:
        return len(name) > 2
    if name.endswith(".*") and "*" not in name[:-2]:
        return len(name) > 2
    return False


class HostTable(Generic[V]):
    """Each name's value; the first given wins where two are the same name."""

    def __init__(self, entries: Iterable[tuple[str, V]]) -> None:
        self.exact: dict[str, V] = {}
        heads: list[tuple[str, V]] = []
        tails: list[tuple[str, V]] = []
        for name, value in entries:
            name = name.lower()
            if name.startswith("*."):
                heads.append((name[1:], value))
            elif name.startswith("."):
                heads.append((name, value))
                self.exact.setdefault(name[1:], value)
            elif name.endswith(".*"):
                tails.append((name[:-1], value))
            else:
                self.exact.setdefault(name, value)
        # longest first; sorted() keeps the order given between equals
        self.heads = sorted(heads, key=lambda x: len(x[0]), reverse=True)
        self.tails = sorted(tails, key=lambda x: len(x[0]), reverse=True)

    def __bool__(self) -> bool:
        return bool(self.exact or self.heads or self.tails)

    def find(self, host: str) -> tuple[V] | None:
        """``(value,)`` of the name ``host`` (lowercase) matches, or None."""
        if host in self.exact:
            return (self.exact[host],)
        for suffix, value in self.heads:
            if host.endswith(suffix):
                return (value,)
        for prefix, value in self.tails:
            if host.startswith(prefix):
                return (value,)
        return None
