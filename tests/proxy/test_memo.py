"""The identity memo of the compiled request path (``proxy.memo.IdentityMemo``): what a
dict keyed by id() answers, for any sequence of puts and lookups, however many objects
(the table grows), and never an entry for an equal but distinct object."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgate.proxy.memo import IdentityMemo


@dataclass(frozen=True)
class Thing:  # (equal when their fields are, as a Location is: the memo must not care)
    n: int


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 199), st.integers()), max_size=400))
@settings(max_examples=200, deadline=None)
def test_the_memo_answers_as_a_dict_keyed_by_identity(
        steps: list[tuple[bool, int, int]]) -> None:
    things = [Thing(i % 7) for i in range(200)]  # many equal, all distinct
    memo = IdentityMemo()
    model: dict[int, tuple[object, int]] = {}
    for put, i, value in steps:
        obj = things[i]
        if put:
            entry = (obj, value)
            assert memo.store(obj, entry) is entry
            model[id(obj)] = entry
        else:
            assert memo.lookup(obj) is model.get(id(obj))
    assert len(memo) == len(model)
    for obj in things:
        assert memo.lookup(obj) is model.get(id(obj))


def test_an_entry_starts_with_its_object() -> None:
    memo = IdentityMemo()
    a, b = Thing(1), Thing(1)
    with pytest.raises(ValueError):
        memo.store(a, (b, 1))
    with pytest.raises(ValueError):
        memo.store(a, ())
    assert memo.lookup(a) is None and len(memo) == 0
