"""The README's layout section matches the tree (issue #16 item 9): every module of the
package is named in it, and every file it names under ``fastgate/`` exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fastgate"


def _layout() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Layout"):]
    start = section.index("```") + 3
    return section[start:section.index("```", start)]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*")
                  if p.suffix in (".py", ".pyx") and p.stem != "__init__"
                  and "__pycache__" not in p.parts)


def test_every_module_is_named_in_the_layout() -> None:
    layout = _layout()
    unnamed = [str(p.relative_to(ROOT)) for p in _modules()
               if not re.search(rf"(?<![\w.]){re.escape(p.stem)}\b", layout)]
    assert not unnamed, f"README's layout does not name: {unnamed}"


def test_every_file_the_layout_names_exists() -> None:
    layout = _layout()
    named = set(re.findall(r"\b([\w]+\.(?:py|pyx|pxd))\b", layout))
    have = {p.name for p in PACKAGE.rglob("*")} | {p.name for p in (ROOT / "bench").iterdir()}
    have |= {p.name for p in (ROOT / "fuzz").iterdir()}
    have |= {p.name for p in (ROOT / "tests").rglob("*.py")}
    gone = sorted(n for n in named if n not in have)
    assert not gone, f"README's layout names files that do not exist: {gone}"
