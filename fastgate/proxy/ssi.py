"""nginx's SSI filter (``ngx_http_ssi_filter_module``): the ``<!--# command -->`` of
a response's body carried out as it streams to the client — ``include`` (a subrequest,
``proxy.capture``, whose answer takes the command's place), ``echo``, ``set``,
``config``, ``if``/``elif``/``else``/``endif`` and ``block``/``endblock``.

The commands are read by nginx's own state machine (``Parser``), byte for byte: what is
not a command passes as it is; a command cut by the end of the body is dropped, as
nginx drops it; a command that cannot be carried out becomes ``[an error occurred while
processing the directive]`` (or ``config errmsg``'s text; nothing with
``ssi_silent_errors on``) and its reason goes to the error log in nginx's words.

Variables ``set`` by a page, the blocks it defines and the captures of its last regex
are the main request's: includes, nested or not, share them. An ``include`` without
``wait`` is carried out, as nginx posts its subrequest, once the filter has read the
piece of the body at hand — so a variable such an include sets is not yet seen by the
commands that follow it in the same piece; ``wait="yes"``, ``file=`` and ``set=`` wait
for the answer first. Subrequests nest at most 51 deep (nginx's "subrequests cycle").

Where it applies (``ssi on``, a type of ``ssi_types``, text/html always, a body not
known to be empty), the main response loses Content-Length and Accept-Ranges, and
Last-Modified and ETag unless ``ssi_last_modified on`` (then the ETag is made weak)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastgate.errors import FastgateError
from fastgate.http.uri import unsafe_uri
from fastgate.proxy.capture import (
    KEPT_MAX,
    Fetch,
    SubrequestFailed,
    SubrequestRefused,
    main_request,
)
from fastgate.proxy.headers import changed_body_head, html_or_of, kind_of
from fastgate.variables import find_variable, found_though_empty

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from fastgate.config.model import Settings
    from fastgate.http.engine import Headers
    from fastgate.http.handler import ClientSide
    from fastgate.proxy.request import Request
    from fastgate.variables import Getter


COMMAND_LEN = 32  # nginx's NGX_HTTP_SSI_COMMAND_LEN, PARAM_LEN, MAX_PARAMS
PARAM_LEN = 32
MAX_PARAMS = 16
ERRMSG = b"[an error occurred while processing the directive]"
TIMEFMT = b"%A, %d-%b-%Y %H:%M:%S %Z"
_NONE = b"(none)"
_SPACE = b" \r\n\t"

# the parser's states, in nginx's order
(_START, _TAG, _COMMENT0, _COMMENT1, _SHARP, _PRECOMMAND, _COMMAND, _PREPARAM, _PARAM,
 _PREEQUAL, _PREVALUE, _DOUBLE_QUOTED, _QUOTED, _QUOTED_SYMBOL, _POSTPARAM,
 _COMMENT_END0, _COMMENT_END1, _ERROR, _ERROR_END0, _ERROR_END1) = range(20)

# the text the parser holds back in each state before a command is sure
_HELD = {_TAG: b"<", _COMMENT0: b"<!", _COMMENT1: b"<!-", _SHARP: b"<!--"}

# a command: its parameters, the context it needs (1: after if/elif, 2: also after
# else), whether it ends a block
_COMMANDS: dict[bytes, tuple[tuple[bytes, ...], tuple[bytes, ...], int, bool]] = {
    # name: (parameters, mandatory ones, conditional, ends a block)
    b"include": ((b"virtual", b"file", b"wait", b"set", b"stub"), (), 0, False),
    b"echo": ((b"var", b"default", b"encoding"), (b"var",), 0, False),
    b"config": ((b"errmsg", b"timefmt"), (), 0, False),
    b"set": ((b"var", b"value"), (b"var", b"value"), 0, False),
    b"if": ((b"expr",), (b"expr",), 0, False),
    b"elif": ((b"expr",), (b"expr",), 1, False),
    b"else": ((), (), 1, False),
    b"endif": ((), (), 2, False),
    b"block": ((b"name",), (b"name",), 0, False),
    b"endblock": ((), (), 0, True),
}

_NAME = re.compile(rb"[A-Za-z0-9_]*")
# the characters ngx_escape_uri's NGX_ESCAPE_HTML escapes (echo encoding="url")
_URL_ESCAPED = frozenset([*range(0x21), 0x22, 0x23, 0x25, 0x27, 0x3C, 0x3E, 0x5C, 0x5E,
                          0x60, 0x7B, 0x7C, 0x7D, *range(0x7F, 0x100)])


class SsiError(FastgateError):
    """A command could not be carried out: its place gets the error message; the reason
    goes to the error log."""


@dataclass
class Shared:
    """What a page and everything it includes share (nginx's main request context)."""

    variables: dict[bytes, bytes] = field(default_factory=dict)  # names lowercased
    blocks: list[tuple[bytes, list[bytes]]] = field(default_factory=list)
    captures: tuple[bytes, ...] = ()  # $0..$9 of the last regex that matched


@dataclass
class Command:
    name: bytes
    params: list[tuple[bytes, bytes]]
    error: str | None = None  # a parse error (logged; the command is not carried out)


@dataclass
class Include:
    """An include's subrequest, its answer due at its place in the output."""

    uri: str
    wait: bool  # had before the commands after it are carried out
    stub: list[bytes] | None  # the block output when its answer is empty or a page of ours
    into: bytes | None  # the variable its answer goes into (then nothing is output)
    out: bytes = b""


class Parser:
    """nginx's ngx_http_ssi_parse: ``feed`` gives the text to pass and the commands
    found, in order; bytes that may begin a command wait for the next piece."""

    def __init__(self, value_len: int) -> None:
        self.value_len = value_len
        self.state = _START
        self.saved_state = _START
        self.command = bytearray()
        self.params: list[list[bytearray]] = []
        self.error: str | None = None

    def feed(self, data: bytes) -> list[bytes | Command]:
        out: list[bytes | Command] = []
        n = len(data)
        p = 0
        if self.state in _HELD:
            # the bytes held before this piece: passed on if they turn out to be text
            held = _HELD[self.state]
        else:
            held = b""
        while p < n:
            state = self.state
            if state == _START:
                at = data.find(b"<", p)
                if at < 0:
                    out.append(data[p:])
                    return out
                if at > p:
                    out.append(data[p:at])
                held = b"<"
                self.state = _TAG
                p = at + 1
                continue
            ch = data[p]
            p += 1
            if state in _HELD:
                if ch == 0x3C:  # "<": what was held is text; a tag may start here
                    out.append(held)
                    held = b"<"
                    self.state = _TAG
                elif state == _TAG and ch == 0x21 or state in (_COMMENT0, _COMMENT1) \
                        and ch == 0x2D:
                    held += bytes((ch,))
                    self.state = state + 1
                elif state == _SHARP and ch == 0x23:
                    held = b""
                    self.state = _PRECOMMAND
                else:
                    out.append(held + bytes((ch,)))
                    held = b""
                    self.state = _START
                continue
            done = self._command_byte(state, ch)
            if done:
                error, self.error = self.error, None
                out.append(Command(bytes(self.command),
                                   [(bytes(k), bytes(v)) for k, v in self.params], error))
                self.state = _START
        return out

    def _command_byte(self, state: int, ch: int) -> bool:
        """One byte inside a command; True when the command (or an error's) ends."""
        space = ch in (0x20, 0x0D, 0x0A, 0x09)
        if state == _PRECOMMAND:
            if not space:
                self.command = bytearray((ch,))
                self.params = []
                self.state = _COMMAND
        elif state == _COMMAND:
            if space:
                self.state = _PREPARAM
            elif ch == 0x2D:
                self.state = _COMMENT_END0
            elif len(self.command) == COMMAND_LEN:
                self._fail(f'the "{_s(self.command)}{chr(ch)}..." SSI command is too long')
            else:
                self.command.append(ch)
        elif state == _PREPARAM:
            if ch == 0x2D:
                self.state = _COMMENT_END0
            elif not space:
                self.params.append([bytearray((ch,)), bytearray()])
                self.state = _PARAM
        elif state == _PARAM:
            key = self.params[-1][0]
            if space:
                self.state = _PREEQUAL
            elif ch == 0x3D:
                self.state = _PREVALUE
            elif ch == 0x2D:
                self._fail(f'unexpected "-" symbol after "{_s(key)}" parameter in '
                           f'"{_s(self.command)}" SSI command', _ERROR_END0)
            elif len(key) == PARAM_LEN:
                self._fail(f'too long "{_s(key)}{chr(ch)}..." parameter in '
                           f'"{_s(self.command)}" SSI command')
            else:
                key.append(ch)
        elif state == _PREEQUAL:
            if ch == 0x3D:
                self.state = _PREVALUE
            elif not space:
                self._fail(f'unexpected "{chr(ch)}" symbol after "{_s(self.params[-1][0])}" '
                           f'parameter in "{_s(self.command)}" SSI command',
                           _ERROR_END0 if ch == 0x2D else _ERROR)
        elif state == _PREVALUE:
            if ch == 0x22:
                self.state = _DOUBLE_QUOTED
            elif ch == 0x27:
                self.state = _QUOTED
            elif not space:
                self._fail(f'unexpected "{chr(ch)}" symbol before value of '
                           f'"{_s(self.params[-1][0])}" parameter in "{_s(self.command)}" '
                           f'SSI command', _ERROR_END0 if ch == 0x2D else _ERROR)
        elif state in (_DOUBLE_QUOTED, _QUOTED):
            if ch == (0x22 if state == _DOUBLE_QUOTED else 0x27):
                self.state = _POSTPARAM
            else:
                if ch == 0x5C:
                    self.saved_state = state
                    self.state = _QUOTED_SYMBOL
                self._value_byte(ch)
        elif state == _QUOTED_SYMBOL:
            self.state = self.saved_state
            self._value_byte(ch)
        elif state == _POSTPARAM:
            if space:
                self.state = _PREPARAM
            elif ch == 0x2D:
                self.state = _COMMENT_END0
            else:
                key, value = self.params[-1]
                self._fail(f'unexpected "{chr(ch)}" symbol after "{_s(value)}" value of '
                           f'"{_s(key)}" parameter in "{_s(self.command)}" SSI command')
        elif state == _COMMENT_END0:
            if ch == 0x2D:
                self.state = _COMMENT_END1
            else:
                self._fail(f'unexpected "{chr(ch)}" symbol in "{_s(self.command)}" SSI '
                           f'command')
        elif state == _COMMENT_END1:
            if ch == 0x3E:
                return True
            self._fail(f'unexpected "{chr(ch)}" symbol in "{_s(self.command)}" SSI command')
        elif state == _ERROR:
            if ch == 0x2D:
                self.state = _ERROR_END0
        elif state == _ERROR_END0:
            self.state = _ERROR_END1 if ch == 0x2D else _ERROR
        elif state == _ERROR_END1:
            if ch == 0x3E:
                return True
            self.state = _ERROR
        return False

    def _value_byte(self, ch: int) -> None:
        key, value = self.params[-1]
        if len(value) == self.value_len:
            self._fail(f'too long "{_s(value)}{chr(ch)}..." value of "{_s(key)}" parameter '
                       f'in "{_s(self.command)}" SSI command')
            return
        value.append(ch)

    def _fail(self, reason: str, state: int = _ERROR) -> None:
        if self.error is None:
            self.error = reason
        self.state = state


def _s(b: bytes | bytearray) -> str:
    return bytes(b).decode("utf-8", "surrogateescape")


class Ssi:
    """One response's SSI: ``feed`` each piece of its body and ``finish`` at its end;
    each gives the bytes that go to the client now."""

    def __init__(self, req: Request, s: Settings, conn: ClientSide | None,
                 fetch: Fetch | None, variables: Mapping[str, Getter], kind: str | None,
                 log: Callable[[str], None]) -> None:
        self._req = req
        self._kind = kind  # the response's media type
        self._conn = conn
        self._fetch = fetch
        self._variables = variables
        self._log = log
        self._silent = s.ssi_silent_errors
        self._parser = Parser(s.ssi_value_length)
        main = main_request(req)
        shared = main.memo.get(_SHARED)
        if shared is None:
            shared = main.memo[_SHARED] = Shared()
        self._shared: Shared = shared
        self._errmsg = ERRMSG
        self._timefmt = TIMEFMT
        self._encoding = b"entity"
        self._output = True  # not inside a branch not taken or a block
        self._chosen = False  # a branch of the if has been taken
        self._conditional = 0  # 1: after if/elif, 2: after else
        self._block = False

    async def feed(self, data: bytes) -> bytes:
        parts: list[bytes | Include] = []
        due: list[Include] = []  # includes that do not wait: had once the piece is read
        for item in self._parser.feed(data):
            if isinstance(item, bytes):
                self._text(parts, item)
                continue
            inc = self._run(parts, item)
            if inc is None:
                continue
            parts.append(inc)
            if inc.wait:
                for waiting in due:  # (their subrequests were posted first)
                    await self._include(waiting)
                due = []
                await self._include(inc)
            else:
                due.append(inc)
        for inc in due:
            await self._include(inc)
        return b"".join(p if isinstance(p, bytes) else p.out for p in parts)

    async def finish(self) -> bytes:
        return b""  # a command cut by the end of the body is dropped, as nginx drops it

    def now(self, data: bytes) -> bytes:
        """The whole of a body of fastgate's own (an error page), where no subrequest is
        made: an include there is an error."""
        parts: list[bytes | Include] = []
        for item in self._parser.feed(data):
            if isinstance(item, bytes):
                self._text(parts, item)
            else:
                self._run(parts, item)  # (an include: an error, there being no fetch)
        return b"".join(p for p in parts if isinstance(p, bytes))

    # --- the text and the commands --------------------------------------------------------

    def _text(self, parts: list[bytes | Include], text: bytes) -> None:
        if self._output:
            parts.append(text)
        elif self._block and self._shared.blocks:
            self._shared.blocks[-1][1].append(text)

    def _error(self, parts: list[bytes | Include]) -> None:
        if not self._silent:
            parts.append(self._errmsg)

    def _run(self, parts: list[bytes | Include], cmd: Command) -> Include | None:
        """Carry out one command; an include is returned, its answer to be had."""
        if cmd.error is not None:
            self._log(cmd.error)
            self._error(parts)
            return None
        spec = _COMMANDS.get(cmd.name)
        name = _s(cmd.name)
        if spec is None:
            if self._output:
                self._log(f'invalid SSI command: "{name}"')
                self._error(parts)
            return None
        known, mandatory, conditional, ends_block = spec
        if not self._output and not ends_block:
            if self._block:  # the command is the block's text, as nginx writes it back
                text = b"<!--#" + cmd.name + b"".join(
                    b" " + k + b'="' + v + b'"' for k, v in cmd.params) + b" -->"
                if self._shared.blocks:
                    self._shared.blocks[-1][1].append(text)
                return None
            if conditional == 0:
                return None
        try:
            if conditional and (self._conditional == 0 or self._conditional > conditional):
                raise SsiError(f'invalid context of SSI command: "{name}"')
            if len(cmd.params) > MAX_PARAMS:
                raise SsiError(f'too many SSI command parameters: "{name}"')
            params: dict[bytes, bytes] = {}
            for key, value in cmd.params:
                if key not in known:
                    raise SsiError(f'invalid parameter name: "{_s(key)}" in "{name}" SSI '
                                   f'command')
                if key in params:
                    raise SsiError(f'duplicate "{_s(key)}" parameter in "{name}" SSI '
                                   f'command')
                params[key] = value
            for key in mandatory:
                if key not in params:
                    raise SsiError(f'mandatory "{_s(key)}" parameter is absent in "{name}" '
                                   f'SSI command')
            if cmd.name == b"include":
                return self._include_command(params)
            if cmd.name == b"echo":
                self._echo(parts, params)
            elif cmd.name == b"config":
                self._timefmt = params.get(b"timefmt", self._timefmt)
                self._errmsg = params.get(b"errmsg", self._errmsg)
            elif cmd.name == b"set":
                self._shared.variables[params[b"var"].lower()] = self._evaluate(
                    params[b"value"], False)
            elif cmd.name in (b"if", b"elif"):
                if cmd.name == b"if" and self._conditional:
                    raise SsiError('the "if" command inside the "if" command')
                if self._chosen:
                    self._output = False
                else:
                    self._output = self._chosen = self._holds(params[b"expr"])
                    self._conditional = 1
            elif cmd.name == b"else":
                self._output = not self._chosen
                self._conditional = 2
            elif cmd.name == b"endif":
                self._output, self._chosen, self._conditional = True, False, 0
            elif cmd.name == b"block":
                self._shared.blocks.append((params[b"name"], []))
                self._output, self._block = False, True
            else:  # endblock
                self._output, self._block = True, False
        except SsiError as e:
            self._log(str(e))
            self._error(parts)
        return None

    def _include_command(self, p: dict[bytes, bytes]) -> Include:
        virtual, file = p.get(b"virtual"), p.get(b"file")
        wait, into, stub = p.get(b"wait"), p.get(b"set"), p.get(b"stub")
        if virtual is not None and file is not None:
            raise SsiError(f'inclusion may be either virtual="{_s(virtual)}" or '
                           f'file="{_s(file)}"')
        if virtual is None and file is None:
            raise SsiError('no parameter in "include" SSI command')
        if into is not None and stub is not None:
            raise SsiError('"set" and "stub" cannot be used together in "include" SSI '
                           'command')
        waits = into is not None
        if wait is not None:
            if virtual is None:
                raise SsiError(f'"wait" cannot be used with file="{_s(file or b"")}"')
            if wait.lower() == b"yes":
                waits = True
            elif wait.lower() != b"no":
                raise SsiError(f'invalid value "{_s(wait)}" in the "wait" parameter')
        if virtual is None:
            waits = True  # (file= is a URI too, always waited for, as nginx's)
        target = self._evaluate(virtual if virtual is not None else file or b"", True)
        path, _, args = target.partition(b"?")
        uri = unsafe_uri(_s(path))
        if uri is None:
            raise SsiError(f'unsafe URI "{_s(target)}" was detected')
        bufs = None
        if stub is not None:
            bufs = next((b for n, b in self._shared.blocks if n == stub), None)
            if bufs is None:
                raise SsiError(f'"stub"="{_s(stub)}" for "include" not found')
        if into is not None:
            into = into.lower()
            self._shared.variables.setdefault(into, b"")  # found, empty, until it is had
        if self._fetch is None:
            raise SsiError("an SSI include in a page of fastgate's own is not carried out")
        return Include(uri + ("?" + _s(args) if args else ""), waits, bufs, into)

    async def _include(self, inc: Include) -> None:
        assert self._fetch is not None and self._conn is not None
        try:
            kept = await self._fetch(self._conn, self._req, inc.uri)
        except SubrequestRefused as e:  # (too deep)
            self._log(str(e))
            inc.out = b"" if self._silent else self._errmsg
            return
        if kept.cut:  # its answer cannot be had whole: nor can this page's
            raise SubrequestFailed(f'the answer to the SSI include "{inc.uri}" could not be '
                                   f'had whole (at most {KEPT_MAX} bytes)')
        body = bytes(kept.out)
        if inc.into is not None:
            if kept.status < 300 and not kept.page:
                if len(body) > kept.output_max:
                    self._log(f'too big subrequest response while sending to client, SSI '
                              f'include "{inc.uri}"')
                else:
                    self._shared.variables[inc.into] = body
            return
        if inc.stub is not None and (kept.page or not body):
            inc.out = b"".join(inc.stub)
            sub = kept.request
            if kept.page and sub is not None and sub.location is not None:
                # the stub is the subrequest's answer, of this page's type (nginx sends
                # its head then): SSI applies to it where it answered
                s = sub.location.settings
                if s.ssi and html_or_of(self._kind, s.ssi_types):
                    stub = Ssi(sub, s, self._conn, self._fetch, self._variables,
                               self._kind, self._log)
                    inc.out = await stub.feed(inc.out) + await stub.finish()
            return
        inc.out = body

    def _echo(self, parts: list[bytes | Include], p: dict[bytes, bytes]) -> None:
        value = self._value(p[b"var"].lower())
        if value is None:
            value = p.get(b"default", _NONE)
        encoding = p.get(b"encoding")
        if encoding is not None:
            if encoding in (b"none", b"url", b"entity"):
                self._encoding = encoding
            else:
                self._log(f'unknown encoding "{_s(encoding)}" in the "echo" command')
        if not value:
            return
        if self._encoding == b"entity":
            value = (value.replace(b"&", b"&amp;").replace(b"<", b"&lt;")
                     .replace(b">", b"&gt;").replace(b'"', b"&quot;"))
        elif self._encoding == b"url":
            value = b"".join(b"%%%02X" % c if c in _URL_ESCAPED else bytes((c,))
                             for c in value)
        parts.append(value)

    # --- values ----------------------------------------------------------------------------

    def _value(self, name: bytes) -> bytes | None:
        """A variable's value: the page's own first (and $0..$9 of its last regex), then
        the configuration's; None when it is not found (nginx's not_found: an unknown
        name, an absent header, argument or cookie), b"" when nginx finds it empty (an
        empty ``set`` or map value, ``$is_args``...)."""
        shared = self._shared
        if len(name) == 1 and 0x30 <= name[0] <= 0x39:
            index = name[0] - 0x30
            if index < len(shared.captures):
                return shared.captures[index]
        if name in shared.variables:
            return shared.variables[name]
        text = name.decode("latin-1")
        if text in ("date_local", "date_gmt"):
            return self._date(text == "date_gmt")
        get = find_variable(text, self._variables)
        if get is None:
            return None
        value = get(self._req)
        if value:
            return value.encode("utf-8", "surrogateescape")
        return b"" if found_though_empty(text.lower(), get, self._variables,
                                         self._req) else None

    def _date(self, gmt: bool) -> bytes:
        now = time.time()
        if self._timefmt == b"%s":
            return b"%d" % int(now)
        at = time.gmtime(now) if gmt else time.localtime(now)
        try:
            text = time.strftime(self._timefmt.decode("utf-8", "surrogateescape"), at)
        except ValueError:
            text = ""
        if not text:
            raise SsiError(f'the time format "{_s(self._timefmt)}" gives nothing')
        return text.encode("utf-8", "surrogateescape")

    def _evaluate(self, text: bytes, prefix: bool) -> bytes:
        """nginx's ngx_http_ssi_evaluate_string: ``$name`` and ``${name}`` replaced (a
        name not found: nothing), a backslash before \\ ' " $ dropped; with ``prefix``,
        a value not starting with "/" made relative to the request's URI."""
        out: list[bytes] = []
        i, n = 0, len(text)
        while i < n:
            if text[i] == 0x24:  # "$"
                i += 1
                bracket = i < n and text[i] == 0x7B
                if bracket:
                    i += 1
                if i >= n:
                    raise SsiError(f'invalid variable name in "{_s(text)}"')
                m = _NAME.match(text, i)
                assert m is not None
                name = m.group()
                i = m.end()
                if bracket:
                    if i < n and text[i] == 0x7D:
                        i += 1
                    else:
                        raise SsiError(f'the closing bracket in "{_s(text[m.start():])}" '
                                       f'variable is missing')
                if not name:
                    raise SsiError(f'invalid variable name in "{_s(text)}"')
                value = self._value(name.lower())
                out.append(value if value is not None else b"")
                continue
            part = bytearray()
            quoted = False
            while i < n:
                ch = text[i]
                if not quoted:
                    if ch == 0x5C:
                        quoted = True
                        i += 1
                        continue
                    if ch == 0x24:
                        break
                elif ch not in (0x5C, 0x27, 0x22, 0x24):
                    part.append(0x5C)
                    quoted = False
                else:
                    quoted = False
                part.append(ch)
                i += 1
            out.append(bytes(part))
        if prefix:
            first = next((o for o in out if o), b"")
            if not first.startswith(b"/"):
                uri = self._req.uri.encode("utf-8", "surrogateescape")
                out.insert(0, uri[:uri.rfind(b"/") + 1])
        return b"".join(out)

    def _holds(self, expr: bytes) -> bool:
        """nginx's ngx_http_ssi_if: ``$a``, ``$a = text``, ``$a != text``,
        ``$a = /regex/``, ``$a != /regex/``."""
        n = len(expr)
        p = 0
        while p < n and (chr(expr[p]).isalnum() and expr[p] < 0x80
                         or expr[p] in b"${}_\"'"):
            p += 1
        left = self._evaluate(expr[:p].lower(), False)
        while p < n and expr[p] == 0x20:
            p += 1
        if p == n:
            return bool(left)
        if expr[p] == 0x3D:
            negative = False
            p += 1
        elif expr[p:p + 2] == b"!=":
            negative = True
            p += 2
        else:
            raise SsiError(f'invalid expression in "{_s(expr)}"')
        while p < n and expr[p] == 0x20:
            p += 1
        last = n
        regex = p < last - 1 and expr[p] == 0x2F
        if regex:
            if expr[last - 1] != 0x2F:
                raise SsiError(f'invalid expression in "{_s(expr)}"')
            p += 1
            last -= 1
        elif p < last - 1 and expr[p:p + 2] == b"\\/":
            p += 1
        right = self._evaluate(expr[p:last], False)
        if not regex:
            matched = left == right
        else:
            try:  # (PCRE's named groups in Python's words)
                pattern = re.compile(re.sub(rb"\(\?<(?![=!])", b"(?P<", right))
            except re.error as e:
                raise SsiError(f'{e} in "{_s(right)}"') from None
            m = pattern.search(left)
            matched = m is not None
            if m is not None:
                self._shared.captures = tuple(g or b"" for g in (m.group(0), *m.groups()))
                for gname, value in m.groupdict().items():
                    self._shared.variables[gname.lower().encode()] = value or b""
        return matched != negative


_SHARED = ("ssi",)  # the main request's memo: its Shared


def start(req: Request, s: Settings, headers: Headers, length: int
          ) -> tuple[bool, Headers, int]:
    """Whether SSI applies to a response with ``headers`` and ``length`` (-1: unknown),
    and the headers and length the client gets (a subrequest's are its own affair)."""
    if length == 0 or not html_or_of(kind_of(headers), s.ssi_types):
        return False, headers, length
    if main_request(req) is not req:
        return True, headers, -1
    return True, changed_body_head(headers, (b"content-length", b"accept-ranges"),
                                   s.ssi_last_modified), -1
