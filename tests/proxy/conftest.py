"""What the in-process tests of the request phases share."""

from __future__ import annotations

import pytest
from scenario import ENGINES


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """A test that asks for ``engine`` runs on both protocol engines."""
    return str(request.param)
