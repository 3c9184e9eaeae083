"""nginx configuration syntax as tokens.

Follows ``ngx_conf_read_token`` (src/core/ngx_conf_file.c): a token is a word or a
quoted string; ``;``, ``{`` and ``}`` are tokens of their own; ``#`` starts a comment
outside quotes; a backslash escapes the next character; inside quotes and words
``\\"``, ``\\'``, ``\\\\``, ``\\t``, ``\\r`` and ``\\n`` are unescaped and any other
backslash is kept (so regexes like ``\\.php$`` survive); ``${name}`` keeps its braces
inside a word.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastgate.config.errors import ConfigError

SPECIAL = frozenset(";{}")
WHITESPACE = frozenset(" \t\r\n")
_UNESCAPE = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "r": "\r", "n": "\n"}


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    line: int
    quoted: bool = False

    @property
    def is_special(self) -> bool:
        return not self.quoted and self.value in SPECIAL


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    out = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw) and raw[i + 1] in _UNESCAPE:
            out.append(_UNESCAPE[raw[i + 1]])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def tokenize(text: str, file: str) -> Iterator[Token]:
    """Yield the tokens of ``text``; a ``ConfigError`` names ``file`` and the line."""
    nul = text.find("\0")
    if nul >= 0:
        # (no value of a configuration holds one: a path with it cannot be opened, and
        # nginx's C strings would end there)
        raise ConfigError("unexpected NUL byte", file, text.count("\n", 0, nul) + 1)
    i = 0
    n = len(text)
    line = 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c in WHITESPACE:
            i += 1
            continue
        if c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c in SPECIAL:
            yield Token(c, line)
            i += 1
            continue
        if c in "\"'":
            start_line = line
            j = i + 1
            while True:
                if j >= n:
                    raise ConfigError("unexpected end of file, expecting " + c, file, start_line)
                d = text[j]
                if d == "\\" and j + 1 < n:
                    if text[j + 1] == "\n":
                        line += 1
                    j += 2
                    continue
                if d == "\n":
                    line += 1
                if d == c:
                    break
                j += 1
            yield Token(_unescape(text[i + 1:j]), start_line, quoted=True)
            i = j + 1
            # nginx lets ")" follow a quote, as a token of its own: the end of an if
            # condition, if ($request_method = 'OPTIONS') {
            if (i < n and text[i] not in WHITESPACE and text[i] not in SPECIAL
                    and text[i] != ")"):
                raise ConfigError(f'unexpected "{text[i]}"', file, line)
            continue
        j = i
        brace = False  # inside ${...}, where '{' and '}' belong to the word
        while j < n:
            d = text[j]
            if d == "\\" and j + 1 < n and text[j + 1] != "\n":
                j += 2
                continue
            if d == "$" and j + 1 < n and text[j + 1] == "{":
                brace = True
                j += 2
                continue
            if brace:
                if d == "}":
                    brace = False
                elif d in WHITESPACE or d == ";":
                    raise ConfigError('the closing bracket in variable is missing', file, line)
                j += 1
                continue
            if d in WHITESPACE or d in SPECIAL:
                break
            if d in "\"'" and j > i and text[j - 1] != "\\":
                # a quote inside a word is an ordinary character in nginx
                j += 1
                continue
            j += 1
        yield Token(_unescape(text[i:j]), line)
        i = j
