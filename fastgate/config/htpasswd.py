"""Password files for ``auth_basic_user_file``, read as nginx reads them: one
``user:hash[:comment]`` per line, ``#`` comments, the first line of a user answering.

Hashes are checked by passlib (the maintained ``libpass`` fork), which knows every format
``htpasswd`` and ``openssl passwd`` write and nginx accepts: bcrypt (``$2y$``...),
Apache's MD5 (``$apr1$``), MD5-crypt (``$1$``), SHA-crypt (``$5$``, ``$6$``), DES crypt,
``{SHA}`` and ``{SSHA}``; ``{PLAIN}`` is compared here. A hash of any other form matches
no password (nginx's crypt() fails on it too) and is warned about at load.

The file is read again when it changes (nginx reads it on every request): a user added
or a password changed takes effect without a reload.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass

from passlib.context import CryptContext

_CONTEXT = CryptContext(schemes=["bcrypt", "apr_md5_crypt", "md5_crypt", "sha256_crypt",
                                 "sha512_crypt", "ldap_salted_sha1", "ldap_sha1",
                                 "des_crypt"])
# schemes made slow on purpose: checked off the event loop
SLOW = frozenset({"bcrypt", "sha256_crypt", "sha512_crypt"})


@dataclass(frozen=True, slots=True)
class Entry:
    hash: str
    scheme: str | None  # None: a form nothing knows; it matches no password

    def verify(self, password: bytes) -> bool:
        if self.scheme is None:
            return False
        if self.scheme == "plain":
            return hmac.compare_digest(self.hash[7:].encode("utf-8", "surrogateescape"),
                                       password)
        try:
            return bool(_CONTEXT.verify(password, self.hash))
        except (ValueError, TypeError):  # a malformed hash of a known form
            return False


def _scheme(hash_: str) -> str | None:
    if hash_.startswith("{PLAIN}"):
        return "plain"
    scheme = _CONTEXT.identify(hash_, required=False)
    return str(scheme) if scheme is not None else None


def parse(text: str) -> tuple[dict[str, Entry], list[tuple[int, str]]]:
    """The users of a password file, and its lines that cannot match (line, user)."""
    entries: dict[str, Entry] = {}
    unknown: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        user, sep, rest = line.partition(":")
        if not sep:
            unknown.append((number, user))
            continue
        hash_ = rest.split(":", 1)[0]
        entry = Entry(hash_, _scheme(hash_))
        if entry.scheme is None:
            unknown.append((number, user))
        entries.setdefault(user, entry)
    return entries, unknown


def read(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


class PasswordFile:
    """One file's users, read again when its modification time, size or inode changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._entries: dict[str, Entry] = {}

    def lookup(self, user: str) -> Entry | None:
        """The user's entry, or None; OSError when the file cannot be read."""
        st = os.stat(self.path)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            self._entries, _ = parse(read(self.path))
            self._stamp = stamp
        return self._entries.get(user)


__all__ = ["SLOW", "Entry", "PasswordFile", "parse", "read"]
