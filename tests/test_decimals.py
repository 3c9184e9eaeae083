"""fastgate.decimals: a peer's decimal numbers as nginx's ngx_atoof reads them, never
given whole to int() (which refuses more than 4,300 digits with a ValueError)."""

from __future__ import annotations

import pytest
from helpers import fuzz_examples
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgate.decimals import MAX_OFF_T, decimal


@pytest.mark.parametrize("text,value", [
    ("0", 0), ("42", 42), (b"42", 42), ("000000000000000000000000007", 7),
    (str(MAX_OFF_T), MAX_OFF_T), (str(MAX_OFF_T + 1), None), ("9" * 20, None),
    ("9" * 5000, None), (b"9" * 5000, None), ("", None), ("-1", None), ("+1", None),
    (" 1", None), ("1 ", None), ("\u00b2", None), ("\u0661", None), ("0x10", None),
])
def test_decimal(text: str | bytes, value: int | None) -> None:
    assert decimal(text) == value


def test_a_limit() -> None:
    assert decimal("65535", 65535) == 65535 and decimal("65536", 65535) is None


@settings(max_examples=fuzz_examples(500), deadline=None)
@given(text=st.text(max_size=6000) | st.from_regex(r"\A[0-9]{1,6000}\Z"))
def test_any_text_is_a_number_or_none(text: str) -> None:
    value = decimal(text)
    assert value is None or (0 <= value <= MAX_OFF_T and int(text.lstrip("0") or "0") == value)
