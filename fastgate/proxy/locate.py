"""The find-location phase's memory: ``LocationTree.find`` is a pure function of the
tree and the URI, and the same few URIs come again and again, so a worker keeps its
answers — here, beside the request path, not in the frozen configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastgate.config.model import Location, LocationTree

Found = tuple["Location | None", tuple[str, ...]]

# distinct URIs whose answer is kept per tree; past this it starts over, so a flood of
# distinct URIs costs a search each, never unbounded memory
MEMO_SIZE = 4096


class Locator:
    """One per worker: answers by tree (a server's locations; hashed by identity) and
    URI. The trees live as long as the worker's configuration, and so does this."""

    def __init__(self) -> None:
        # tree -> URI -> answer (the request path reads it inline, without a call)
        self.memos: dict[LocationTree, dict[str, Found]] = {}

    def find(self, tree: LocationTree, uri: str) -> Found:
        """``tree.find(uri)``: the location and the regex captures (``$0`` first)."""
        memo = self.memos.get(tree)
        if memo is None:
            memo = self.memos[tree] = {}
        hit = memo.get(uri)
        if hit is None:
            hit = tree.find(uri)
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[uri] = hit
        return hit

    def kept(self, tree: LocationTree) -> int:
        """How many answers are kept for ``tree``."""
        return len(self.memos.get(tree, ()))
