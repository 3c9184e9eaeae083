"""The worker's memory of location answers (fastgate.proxy.locate): the same answers as
the tree's own search, kept per tree, bounded."""

from __future__ import annotations

from pathlib import Path

from fastgate.config import load_config
from fastgate.proxy.locate import MEMO_SIZE, Locator

CONFIG = """http { server { listen 127.0.0.1:1;
    location / { return 200 root; }
    location ~ ^/users/(\\d+)/(\\w+)$ { return 200 users; }
} server { listen 127.0.0.1:2;
    location / { return 200 other; }
} }"""


def test_answers_as_the_tree_does_again_from_memory_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text(CONFIG)
    first, second = load_config(str(path)).servers
    locator = Locator()
    for _ in range(2):  # the second answer comes from memory: the same objects
        found = locator.find(first.locations, "/users/7/x")
        assert found == first.locations.find("/users/7/x")
        assert found[1] == ("/users/7/x", "7", "x")
    assert locator.kept(first.locations) == 1
    # another server's tree has its own answers for the same URI
    assert locator.find(second.locations, "/users/7/x")[0] is second.locations.find("/")[0]
    assert locator.kept(second.locations) == 1
    for i in range(MEMO_SIZE + 10):
        locator.find(first.locations, f"/users/{i}/x")
    assert locator.kept(first.locations) <= MEMO_SIZE
    loc, caps = locator.find(first.locations, "/users/8/y")
    assert loc is first.locations.find("/users/8/y")[0] and caps == ("/users/8/y", "8", "y")


def test_the_configuration_keeps_no_answers(tmp_path: Path) -> None:
    # issue #16 item 5: the model is frozen data; the memory is the worker's
    path = tmp_path / "t.conf"
    path.write_text(CONFIG)
    tree = load_config(str(path)).servers[0].locations
    before = dict(vars(tree))
    tree.find("/users/1/a")
    assert vars(tree) == before
