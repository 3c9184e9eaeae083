"""htpasswd files: every hash format htpasswd and openssl write, nginx's line rules,
and reading the file again when it changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from passlib import hash as hashes

from fastgate.config.htpasswd import PasswordFile, parse

FORMATS = {
    "bcrypt": hashes.bcrypt.using(rounds=4, ident="2y").hash("pw"),
    "apr1": hashes.apr_md5_crypt.hash("pw"),
    "md5-crypt": hashes.md5_crypt.hash("pw"),
    "sha256-crypt": hashes.sha256_crypt.using(rounds=1000).hash("pw"),
    "sha512-crypt": hashes.sha512_crypt.using(rounds=1000).hash("pw"),
    "des": hashes.des_crypt.hash("pw"),
    "sha": hashes.ldap_sha1.hash("pw"),
    "ssha": hashes.ldap_salted_sha1.hash("pw"),
    "plain": "{PLAIN}pw",
}


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_every_format_matches_its_password_only(kind: str) -> None:
    entries, unknown = parse(f"u:{FORMATS[kind]}\n")
    assert unknown == []
    entry = entries["u"]
    assert entry.verify(b"pw")
    assert not entry.verify(b"pW")
    assert not entry.verify(b"")


def test_lines_as_nginx_reads_them() -> None:
    entries, unknown = parse("# a comment\n\nalice:{PLAIN}one:Alice Liddell\n"
                             "alice:{PLAIN}two\nbob:nohash-here!\nnocolon\n")
    assert entries["alice"].verify(b"one")  # the first line of a user answers
    assert not entries["alice"].verify(b"two")
    assert not entries["bob"].verify(b"nohash-here!")  # never read as a plain password
    assert unknown == [(5, "bob"), (6, "nocolon")]


@given(st.text())
def test_any_file_parses_without_error(text: str) -> None:
    entries, _ = parse(text)
    for entry in entries.values():
        entry.verify(b"x")


def test_the_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text("alice:{PLAIN}old\n")
    f = PasswordFile(str(path))
    entry = f.lookup("alice")
    assert entry is not None and entry.verify(b"old")
    path.write_text("alice:{PLAIN}new-password\n")
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock
    entry = f.lookup("alice")
    assert entry is not None and entry.verify(b"new-password")
    assert f.lookup("bob") is None
    path.unlink()
    with pytest.raises(OSError):
        f.lookup("alice")
