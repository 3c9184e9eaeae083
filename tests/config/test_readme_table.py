"""README's directive table says, for every directive fastgate takes, where it may be
written and what becomes of it (works / accepted and ignored, and why / refused), and
says the truth about its contexts: checked against the directive table itself."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from fastgate.config.context import EVENTS, HTTP, LOCATION, MAIN, SERVER, UPSTREAM, Spec
from fastgate.config.directives import TABLE, UPSTREAM_TABLE
from fastgate.config.directives.ignored import PREFIXED
from fastgate.config.directives.refused import refused_message

README = Path(__file__).resolve().parents[2] / "README.md"
LETTERS = ((MAIN, "M"), (EVENTS, "E"), (HTTP, "H"), (SERVER, "S"), (LOCATION, "L"),
           (UPSTREAM, "U"))
STATUS = re.compile(r"(works?\b|accepted|refused|those parameters)")
PARSER = {"include"}  # the parser's own (nginx's ngx_conf_file.c)
NGINX = [line.split()[1] for line in
         (Path(__file__).with_name("nginx_1.22_directives.txt").read_text().splitlines())
         if line and not line.startswith("#")]


def _rows() -> list[tuple[list[str], list[str], str]]:
    """(names, context alternatives, status) of every row of the table. A name is the
    first word of each code span of the first column."""
    text = README.read_text()
    table = text[text.index("## Directives: what works today"):text.index("## Variables")]
    out = []
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        first, contexts, status = re.split(r"(?<!\\) \| ", line[2:-2])
        names = [re.match(r"[^ \[({;]+", span).group(0)  # type: ignore[union-attr]
                 for span in re.findall(r"`([^`]+)`", first)]
        lead = re.split(r"[,(]", contexts)[0].strip()
        alternatives = [a.strip() for a in lead.split("/")] if lead else []
        out.append((names, alternatives, status))
    return out


def _letters(spec: Spec) -> str:
    return "".join(letter for ctx, letter in LETTERS if ctx in spec.contexts)


def _specs(name: str) -> list[Spec]:
    """The table entries a README name stands for (a name with * stands for a family)."""
    if "*" in name:
        family = [s for s in PREFIXED.values() if s.name == name]
        return family or [TABLE[n] for n in fnmatch.filter(TABLE, name)]
    return [s for s in (TABLE.get(name), UPSTREAM_TABLE.get(name)) if s is not None]


ROWS = _rows()


def test_the_table_is_read() -> None:
    assert len(ROWS) > 50
    names = {n for row in ROWS for n in row[0]}
    assert {"auth_jwt", "proxy_pass", "proxy_cache*", "uwsgi_*", "keepalive"} <= names


def test_every_directive_fastgate_takes_has_a_row() -> None:
    listed = [n for row in ROWS for n in row[0]]
    every = ([s.name for s in TABLE.values()] + [s.name for s in UPSTREAM_TABLE.values()]
             + [s.name for s in PREFIXED.values()])
    missing = [n for n in every
               if n not in listed and not any("*" in w and fnmatch.fnmatch(n, w) for w in listed)]
    assert missing == []


def test_every_row_says_what_becomes_of_its_directives() -> None:
    for names, _, status in ROWS:
        assert STATUS.match(status), (names, status[:40])


def test_every_name_in_the_table_is_a_directive_taken_or_refused() -> None:
    for names, _, status in ROWS:
        for name in names:
            if status.startswith("refused"):
                # a family stands for the nginx directives of its pattern
                nginx = fnmatch.filter(NGINX, name) if "*" in name else [name]
                assert nginx, name
                assert all(refused_message(n) is not None for n in nginx), name
            else:
                assert _specs(name) or name in PARSER, name


def test_the_contexts_are_the_tables() -> None:
    """A row's contexts (one group, or "A / B" when its directives differ) are where
    the directive table lets each directive be written."""
    seen: dict[str, set[str]] = {}
    for names, alternatives, status in ROWS:
        if status.startswith("refused") or alternatives in ([], ["any"]):
            continue
        for name in names:
            letters = {_letters(s) for s in _specs(name)}
            assert letters & set(alternatives), (name, letters, alternatives)
            seen.setdefault(name, set()).update(letters & set(alternatives))
    for name, found in seen.items():
        if "*" not in name:
            assert found == {_letters(s) for s in _specs(name)}, name
