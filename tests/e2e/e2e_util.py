"""Helpers for end-to-end tests."""

from __future__ import annotations

from pathlib import Path

SEEDS = Path(__file__).parent.parent / "seeds"


def seed(name: str, port: int, replace: dict[str, str]) -> str:
    """A seed configuration with only its address, ports and key paths changed."""
    text = (SEEDS / name).read_text().replace("listen 80;", f"listen 127.0.0.1:{port};")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text
