"""nginx syntax → a tree of directives, each knowing its FILE:LINE.

The parser knows the syntax only; which directives exist, where they may appear and
what their arguments mean is the directive table's business (directives.py), except
for ``include``, which is expanded here so that every later stage sees one tree.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass

from fastgate.config.errors import ConfigError
from fastgate.config.lexer import Token, tokenize

MAX_INCLUDE_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Directive:
    name: str
    args: tuple[str, ...]
    file: str
    line: int
    block: tuple[Directive, ...] | None = None
    # which arguments were quoted: a quoted "{" or "$x" is literal text
    quoted: tuple[bool, ...] = ()

    def error(self, message: str) -> ConfigError:
        return ConfigError(message, self.file, self.line)


def read_file(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(f'open() "{path}" failed (2: No such file or directory)') from None
    except IsADirectoryError:
        raise ConfigError(f'open() "{path}" failed (21: Is a directory)') from None
    except PermissionError:
        raise ConfigError(f'open() "{path}" failed (13: Permission denied)') from None
    except OSError as e:
        raise ConfigError(f'open() "{path}" failed ({e.errno}: {e.strerror})') from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError("invalid UTF-8 in configuration", path, line) from None


def parse_file(path: str) -> tuple[Directive, ...]:
    """Parse the configuration at ``path`` with its includes expanded."""
    return parse_text(read_file(path), path, os.path.dirname(os.path.abspath(path)))


def config_files(path: str) -> list[str]:
    """The file at ``path`` and every file it includes that holds a directive, in the
    order they are read (``-T``)."""
    seen = {path: None}

    def walk(items: tuple[Directive, ...]) -> None:
        for d in items:
            seen.setdefault(d.file, None)
            if d.block:
                walk(d.block)

    walk(parse_file(path))
    return list(seen)


def parse_text(text: str, file: str, base_dir: str | None = None) -> tuple[Directive, ...]:
    parser = _Parser(file, base_dir or os.getcwd(), depth=0)
    return parser.parse(tokenize(text, file))


class _Parser:
    def __init__(self, file: str, base_dir: str, depth: int) -> None:
        self.file = file
        self.base_dir = base_dir
        self.depth = depth

    def parse(self, tokens: Iterator[Token]) -> tuple[Directive, ...]:
        items = self._block(tokens, top=True, open_line=0)
        return tuple(items)

    def _block(self, tokens: Iterator[Token], top: bool, open_line: int) -> list[Directive]:
        out: list[Directive] = []
        words: list[Token] = []
        for tok in tokens:
            if not tok.is_special:
                words.append(tok)
                continue
            if tok.value == "}":
                if words:
                    raise ConfigError('unexpected "}"', self.file, tok.line)
                if top:
                    raise ConfigError('unexpected "}"', self.file, tok.line)
                return out
            if not words:
                raise ConfigError(f'unexpected "{tok.value}"', self.file, tok.line)
            head = words[0]
            # an empty first word is a map key ('' close; in the WebSocket idiom);
            # anywhere else the directive table calls it an unknown directive
            name = head.value
            args = tuple(w.value for w in words[1:])
            quoted = tuple(w.quoted for w in words[1:])
            if tok.value == ";":
                d = Directive(name, args, self.file, head.line, None, quoted)
                if name == "include":
                    out.extend(self._include(d))
                else:
                    out.append(d)
            else:  # "{"
                children = self._block(tokens, top=False, open_line=tok.line)
                out.append(Directive(name, args, self.file, head.line, tuple(children), quoted))
            words = []
        if words:
            raise ConfigError('unexpected end of file, expecting ";" or "}"', self.file,
                              words[-1].line)
        if not top:
            raise ConfigError('unexpected end of file, expecting "}"', self.file, open_line)
        return out

    def _include(self, d: Directive) -> list[Directive]:
        if len(d.args) != 1:
            raise d.error('invalid number of arguments in "include" directive')
        if self.depth >= MAX_INCLUDE_DEPTH:
            raise d.error("include nesting is too deep (a file includes itself?)")
        pattern = d.args[0]
        if not os.path.isabs(pattern):
            pattern = os.path.join(self.base_dir, pattern)
        if glob.has_magic(pattern):
            paths = sorted(glob.glob(pattern))  # no match is fine, as in nginx
        else:
            paths = [pattern]
        out: list[Directive] = []
        for path in paths:
            try:
                text = read_file(path)
            except ConfigError as e:
                raise d.error(e.message) from None
            sub = _Parser(path, self.base_dir, self.depth + 1)
            out.extend(sub.parse(tokenize(text, path)))
        return out
