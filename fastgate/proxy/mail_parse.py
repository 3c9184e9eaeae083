"""A mail client's commands before login, read as nginx reads them
(ngx_mail_parse.c): byte by byte, into a buffer of the configured size, with its state
kept between reads. The state machines are nginx's, quirks included (an IMAP literal
``{0}`` takes one byte; a space is part of a POP3 USER or PASS argument; the line after
``AUTHENTICATE``/``AUTH`` is read as that command's argument), so that a client sees
fastgate answer what nginx would, and an argument means here what it means there."""

from __future__ import annotations

# what parse() finds
OK, AGAIN, INVALID, NEXT = "ok", "again", "invalid", "next"

IMAP_COMMANDS = {b"NOOP", b"LOGIN", b"LOGOUT", b"STARTTLS", b"CAPABILITY", b"AUTHENTICATE"}
POP3_COMMANDS = {b"USER", b"PASS", b"APOP", b"QUIT", b"CAPA", b"AUTH", b"NOOP", b"STLS"}
SMTP_COMMANDS = {b"HELO", b"EHLO", b"QUIT", b"AUTH", b"NOOP", b"MAIL", b"RSET", b"RCPT",
                 b"VRFY", b"EXPN", b"HELP", b"STARTTLS"}

# the states (nginx's enum values, so that "state != 0" means what it means there)
(_START, _TAG, _INVALID, _SPACES_BEFORE_COMMAND, _COMMAND, _SPACES_BEFORE_ARGUMENT,
 _ARGUMENT, _BACKSLASH, _LITERAL, _NO_SYNC_LITERAL_ARGUMENT, _START_LITERAL_ARGUMENT,
 _LITERAL_ARGUMENT, _END_LITERAL_ARGUMENT, _ALMOST_DONE) = range(14)
# POP3's and SMTP's states are fewer, numbered as their own enum
(_P_START, _P_COMMAND, _P_INVALID, _P_SPACES_BEFORE_ARGUMENT, _P_ARGUMENT,
 _P_ALMOST_DONE) = range(6)

CR, LF, SP = 13, 10, 32
_TAG_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._")
_LETTERS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class CommandReader:
    """The buffer of one client's command lines and the parser's state over it. Bytes
    beyond the buffer's size wait outside it, as they would in nginx's socket."""

    def __init__(self, protocol: str, size: int) -> None:
        self.imap = protocol == "imap"
        # POP3's and SMTP's line parsers differ in their commands, how many arguments a
        # line may have, and whether a space ends USER's and PASS's
        self._commands = SMTP_COMMANDS if protocol == "smtp" else POP3_COMMANDS
        self._max_args = 10 if protocol == "smtp" else 2
        self._spaced = (b"USER", b"PASS") if protocol == "pop3" else ()
        self.size = size
        self.buf = bytearray()
        self.waiting = bytearray()  # read but not yet in the buffer
        self.pos = 0
        self.state = 0
        self.command = b""
        self.args: list[bytes] = []
        self.tag = b""  # the IMAP tag with its space ("a1 "), or empty
        self.quit = False  # a non-synchronizing literal in an invalid command
        self._cmd_start = 0
        self._arg_end = 0  # where the last argument ended (SMTP's MAIL and RCPT lines)
        self._arg_start = 0
        self._tag_start = 0
        self._quoted = False
        self._backslash = False
        self._literal_len = 0
        self._no_sync = False

    # --- the buffer ----------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.waiting += data
        self._fill()

    def _fill(self) -> None:
        room = self.size - len(self.buf)
        if room > 0 and self.waiting:
            self.buf += self.waiting[:room]
            del self.waiting[:room]

    @property
    def full(self) -> bool:
        return len(self.buf) >= self.size

    @property
    def unread(self) -> bool:
        """Bytes after the last command (pipelined): nginx goes on with them."""
        return self.pos < len(self.buf) or bool(self.waiting)

    def rest(self) -> bytes:
        """What the client sent past its last command: the mail server gets it."""
        out = bytes(self.buf[self.pos:]) + bytes(self.waiting)
        self.discard()
        return out

    def discard(self) -> None:
        """STARTTLS: what came after it in clear is not read (nginx empties its buffer)."""
        self.buf.clear()
        self.waiting.clear()
        self.pos = 0

    def settle(self, keep_argument: bool) -> None:
        """After a command is answered: the args are forgotten, the buffer emptied when
        all of it was read; an argument still to come (``state != 0``) starts here."""
        self.args = []
        if self.pos == len(self.buf):
            self.buf.clear()
            self.pos = 0
            self._fill()
        if keep_argument and self.state:
            self._arg_start = self.pos

    def text(self) -> bytes:
        return bytes(self.buf)

    def command_line(self) -> bytes:
        """The command and its arguments as sent (nginx's MAIL FROM and RCPT TO)."""
        return bytes(self.buf[self._cmd_start:self._arg_end])

    # --- parsing ---------------------------------------------------------------------------

    def parse(self) -> str:
        return self._imap() if self.imap else self._line()

    def _invalid(self, p: int) -> str:
        """Skip the invalid command up to its LF (nginx's ``invalid:`` label)."""
        self.state = _INVALID if self.imap else _P_INVALID
        self._quoted = self._backslash = self._no_sync = False
        self._literal_len = 0
        buf = self.buf
        end = buf.find(b"\n", p)
        if end < 0:
            self.pos = len(buf)
            return AGAIN
        self.state = 0
        self.pos = end + 1
        # a non-synchronizing literal in a command refused: its bytes would follow
        # unasked, and be read as commands
        if self.imap and end > 4:
            q = end - 1
            if buf[q] == CR:
                q -= 1
            if buf[q] == ord("}") and buf[q - 1] == ord("+"):
                self.quit = True
        return INVALID

    def _push(self, start: int, end: int) -> None:
        self.args.append(bytes(self.buf[start:end]))
        self._arg_end = end

    def _imap(self) -> str:
        buf = self.buf
        state = self.state
        p = self.pos
        last = len(buf)
        while p < last:
            ch = buf[p]
            if state == _START:
                self._tag_start = p
                state = _TAG
            if state == _TAG:
                if ch == SP:
                    self.tag = bytes(buf[self._tag_start:p + 1])
                    state = _SPACES_BEFORE_COMMAND
                elif ch in (CR, LF) or ch not in _TAG_CHARS or p - self._tag_start > 31:
                    return self._invalid(p)
            elif state == _INVALID:
                return self._invalid(p)
            elif state == _SPACES_BEFORE_COMMAND:
                if ch in (CR, LF):
                    return self._invalid(p)
                if ch != SP:
                    self._cmd_start = p
                    state = _COMMAND
            elif state == _COMMAND:
                if ch in (SP, CR, LF):
                    name = bytes(buf[self._cmd_start:p]).upper()
                    if name not in IMAP_COMMANDS:
                        return self._invalid(p)
                    self.command = name
                    if ch == SP:
                        state = _SPACES_BEFORE_ARGUMENT
                    elif ch == CR:
                        state = _ALMOST_DONE
                    else:
                        return self._done(p, b"AUTHENTICATE")
                elif ch not in _LETTERS:
                    return self._invalid(p)
            elif state == _SPACES_BEFORE_ARGUMENT:
                if ch == SP:
                    pass
                elif ch == CR:
                    state = _ALMOST_DONE
                elif ch == LF:
                    return self._done(p, b"AUTHENTICATE")
                elif len(self.args) > 2:
                    return self._invalid(p)
                elif ch == ord('"'):
                    self._quoted = True
                    self._arg_start = p + 1
                    state = _ARGUMENT
                elif ch == ord("{"):
                    state = _LITERAL
                else:
                    self._arg_start = p
                    state = _ARGUMENT
            elif state == _ARGUMENT:
                if ch == SP and self._quoted:
                    pass
                elif ch == ord('"') and not self._quoted:
                    pass
                elif ch in (ord('"'), SP, CR, LF):
                    if ch == ord('"'):
                        self._quoted = False
                    arg = bytes(buf[self._arg_start:p])
                    if self._backslash:
                        arg = _unescape(arg)
                        self._backslash = False
                    self.args.append(arg)
                    if ch in (ord('"'), SP):
                        state = _SPACES_BEFORE_ARGUMENT
                    elif ch == CR:
                        state = _ALMOST_DONE
                    else:
                        return self._done(p, b"AUTHENTICATE")
                elif ch == ord("\\") and self._quoted:
                    self._backslash = True
                    state = _BACKSLASH
            elif state == _BACKSLASH:
                if ch in (CR, LF):
                    return self._invalid(p)
                state = _ARGUMENT
            elif state == _LITERAL:
                if 48 <= ch <= 57:
                    self._literal_len = self._literal_len * 10 + (ch - 48)
                elif ch == ord("}"):
                    state = _START_LITERAL_ARGUMENT
                elif ch == ord("+"):
                    state = _NO_SYNC_LITERAL_ARGUMENT
                else:
                    return self._invalid(p)
            elif state == _NO_SYNC_LITERAL_ARGUMENT:
                if ch != ord("}"):
                    return self._invalid(p)
                self._no_sync = True
                state = _START_LITERAL_ARGUMENT
            elif state == _START_LITERAL_ARGUMENT:
                if ch == CR:
                    pass
                elif ch == LF:
                    self.pos = p + 1
                    self._arg_start = p + 1
                    if not self._no_sync:
                        self.state = _LITERAL_ARGUMENT
                        return NEXT
                    state = _LITERAL_ARGUMENT
                    self._no_sync = False
                else:
                    return self._invalid(p)
            elif state == _LITERAL_ARGUMENT:
                if self._literal_len:
                    self._literal_len -= 1
                if not self._literal_len:
                    self._push(self._arg_start, p + 1)
                    state = _END_LITERAL_ARGUMENT
            elif state == _END_LITERAL_ARGUMENT:
                if ch == ord("{"):
                    if len(self.args) > 2:
                        return self._invalid(p)
                    state = _LITERAL
                elif ch == CR:
                    state = _ALMOST_DONE
                elif ch == LF:
                    return self._done(p, b"AUTHENTICATE")
                else:
                    state = _SPACES_BEFORE_ARGUMENT
            elif state == _ALMOST_DONE:
                if ch != LF:
                    return self._invalid(p)
                return self._done(p, b"AUTHENTICATE")
            p += 1
        self.pos = p
        self.state = state
        return AGAIN

    def _done(self, p: int, continued: bytes) -> str:
        """A command line ended: the next line is its argument when it is ``continued``
        (AUTHENTICATE, AUTH), else a new command."""
        self.pos = p + 1
        self.state = (_ARGUMENT if self.imap else _P_ARGUMENT) \
            if self.command == continued else 0
        return OK

    def _line(self) -> str:
        """POP3's and SMTP's parser (ngx_mail_pop3_parse_command and
        ngx_mail_smtp_parse_command: the same machine)."""
        buf = self.buf
        state = self.state
        p = self.pos
        last = len(buf)
        while p < last:
            ch = buf[p]
            if state == _P_START:
                self._cmd_start = p
                state = _P_COMMAND
            if state == _P_COMMAND:
                if ch in (SP, CR, LF):
                    name = bytes(buf[self._cmd_start:p]).upper()
                    if name not in self._commands:
                        return self._invalid(p)
                    self.command = name
                    if ch == SP:
                        state = _P_SPACES_BEFORE_ARGUMENT
                    elif ch == CR:
                        state = _P_ALMOST_DONE
                    else:
                        return self._done(p, b"AUTH")
                elif ch not in _LETTERS:
                    return self._invalid(p)
            elif state == _P_INVALID:
                return self._invalid(p)
            elif state == _P_SPACES_BEFORE_ARGUMENT:
                if ch == SP:
                    pass
                elif ch == CR:
                    state = _P_ALMOST_DONE
                elif ch == LF:
                    return self._done(p, b"AUTH")
                elif len(self.args) <= self._max_args:
                    state = _P_ARGUMENT
                    self._arg_start = p
                else:
                    return self._invalid(p)
            elif state == _P_ARGUMENT:
                # a space is part of a user name or password, not of other arguments
                if ch == SP and self.command in self._spaced:
                    pass
                elif ch in (SP, CR, LF):
                    self._push(self._arg_start, p)
                    if ch == SP:
                        state = _P_SPACES_BEFORE_ARGUMENT
                    elif ch == CR:
                        state = _P_ALMOST_DONE
                    else:
                        return self._done(p, b"AUTH")
            elif state == _P_ALMOST_DONE:
                if ch != LF:
                    return self._invalid(p)
                return self._done(p, b"AUTH")
            p += 1
        self.pos = p
        self.state = state
        return AGAIN


def _unescape(arg: bytes) -> bytes:
    """A quoted string's backslashes: each escapes the byte after it."""
    out = bytearray()
    i = 0
    while i < len(arg):
        if arg[i] == 0x5C and i + 1 < len(arg):
            i += 1
        out.append(arg[i])
        i += 1
    return bytes(out)


__all__ = ["AGAIN", "INVALID", "NEXT", "OK", "CommandReader"]
