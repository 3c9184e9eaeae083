"""Handlers and argument parsers every module's directives share: a setting set once per
level, a list appended to, a directive accepted and ignored with a warning; times,
sizes, flags, numbers, statuses, log levels, header names."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fastgate.config.context import (
    Context,
    Handler,
    Level,
    Spec,
)
from fastgate.config.directives.slots import check_slot
from fastgate.config.parser import Directive
from fastgate.config.values import (
    is_token,
    parse_code,
    parse_flag,
    parse_host_port,
    parse_number,
    parse_size,
    parse_time,
)
from fastgate.variables import Template


def setting(name: str, parse: Callable[[Context, Directive], Any]) -> Handler:
    """A value set once per level and inherited (``Settings.<name>``)."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        lvl.once(d)
        lvl.fields[name] = parse(ld, d)

    return handle


def bitmask(name: str, parse: Callable[[Context, Directive], Any]) -> Handler:
    """A directive nginx reads with its bitmask slot (``proxy_next_upstream``,
    ``ssl_protocols``, ``gzip_proxied``...): each one at a level adds its words to the
    level's (two lines both count; fastgate refused the second as a duplicate), a word
    given again is nginx's "duplicate value" warning; ``parse`` checks the level's
    words, all of them, and makes its value."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        lvl.origins.setdefault(d.name, d)
        words: list[str] = lvl.local.setdefault("words of " + d.name, [])
        for arg in d.args:
            if arg.lower() in (w.lower() for w in words):
                ld.warn(f'duplicate value "{arg}"', d)
            else:
                words.append(arg)
        lvl.fields[name] = parse(ld, replace(d, args=tuple(words)))

    return handle


def mime_types(name: str, always: str, kept: bool = False) -> Handler:
    """A ``*_types`` directive as nginx's ngx_http_types_slot: each one at a level adds
    to the level's list (two ``gzip_types`` lines both count; fastgate refused the
    second as a duplicate), lower-cased; the module's first default type (``always``:
    text/html, xslt's text/xml) is always taken (``kept``: written in the list, for the
    modules that read it there; the others add it themselves); a type given again is
    nginx's warning; ``*`` takes any type, and the level's list is then done."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        lvl.origins.setdefault(d.name, d)
        current = lvl.fields.get(name)
        if current is not None and "*" in current:
            return
        out = list(current) if current is not None else ([always] if kept else [])
        seen = {always, *out}
        for arg in d.args:
            kind = arg.lower()
            if kind == "*":
                out.append(kind)
                break
            if kind in seen:
                ld.warn(f'duplicate MIME type "{kind}"', d)
                continue
            seen.add(kind)
            out.append(kind)
        lvl.fields[name] = tuple(out)

    return handle


def appending(name: str, parse: Callable[[Context, Directive], Any]) -> Handler:
    """A list built from every occurrence at one level; an inner level that has any
    replaces the outer list entirely (nginx's rule for proxy_set_header, add_header...)."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        lvl.origins.setdefault(d.name, d)
        lvl.fields[name] = lvl.fields.get(name, ()) + (parse(ld, d),)

    return handle


def ignored(why: str) -> Handler:
    """Accepted and ignored: one warning per directive name, with how many times it
    was given and where first."""

    def handle(ld: Context, lvl: Level, d: Directive) -> None:
        if check_slot(d):  # (its value checked as nginx reads it)
            lvl.once(d)
        ld.warn_once(f'"{d.name}" directive is ignored', why, d)

    return handle


def time_arg(ld: Context, d: Directive) -> float:
    return parse_time(d, d.args[0])


def size_arg(ld: Context, d: Directive) -> int:
    """nginx's size slot: "8k", "1m" (no "g")."""
    return parse_size(d, d.args[0])


def offset_arg(ld: Context, d: Directive) -> int:
    """nginx's offset slot: a size that may also be "2g" (``client_max_body_size``)."""
    return parse_size(d, d.args[0], offset=True)


def flag_arg(ld: Context, d: Directive) -> bool:
    return parse_flag(d, d.args[0])


def number_arg(ld: Context, d: Directive) -> int:
    return parse_number(d, d.args[0])


def access_arg(ld: Context, d: Directive) -> int:
    """``user:rw|r``, ``group:rw|r``, ``all:rw|r`` as file permission bits (nginx's
    ngx_conf_set_access_slot: the user has rw unless it is named)."""
    bits = 0
    user = 0o600
    for value in d.args:
        who, colon, rights = value.partition(":")
        shift = {"user": 6, "group": 3, "all": 0}.get(who)
        if not colon or shift is None or rights not in ("rw", "r"):
            raise d.error(f'invalid value "{value}"')
        if who == "user":
            user = 0
        bits |= (6 if rights == "rw" else 4) << shift
    return bits | user


def store_arg(ld: Context, d: Directive) -> Template | bool:
    """``proxy_store``'s (and its kin's) argument: off, on (the file under root or
    alias), or the file's path (variables allowed)."""
    value = d.args[0]
    if value in ("on", "off"):
        return value == "on"
    return ld.compile(value, d)


def one_of(*values: str) -> Callable[[Context, Directive], str]:
    """An argument that must be one of ``values``, in any case as nginx's enum slot
    takes it (``ssl_verify_client On``), given as written here (nginx's enum message
    names them in the order given)."""
    named = ", ".join(f'"{v}"' for v in values[:-1]) + f' or "{values[-1]}"'
    spelled = {v.lower(): v for v in values}

    def parse(ld: Context, d: Directive) -> str:
        value = spelled.get(d.args[0].lower())
        if value is None:
            raise d.error(f'invalid value "{d.args[0]}" in "{d.name}" directive, it must be '
                          f"{named}")
        return value
    return parse


def strings(ld: Context, d: Directive) -> tuple[str, ...]:
    return d.args


def status_code(ld: Context, d: Directive) -> int:
    return parse_code(d, d.args[0], 400, 599)


def log_level(ld: Context, d: Directive) -> str:
    if d.args[0] not in ("info", "notice", "warn", "error"):
        raise d.error(f'invalid value "{d.args[0]}" in "{d.name}" directive')
    return d.args[0]


def check_header_name(d: Directive, name: str) -> None:
    # RFC 9110 section 5.1: a field name is a token
    if not is_token(name):
        raise d.error(f'invalid header name "{name}"')


_FOLD = re.compile(r"\r?\n[ \t]+")


def header_value(ld: Context, d: Directive) -> Template:
    """The value of ``add_header``/``proxy_set_header NAME VALUE`` as written. One that
    goes on over several lines (a long Content-Security-Policy in quotes) is sent on
    one: each line break and the spaces after it become a space, which is what a client
    makes of nginx's header, sent with its breaks as they are (an obsolete line
    folding). A break that no space follows would end the header and begin another:
    that header is never sent, and the load says so."""
    text = d.args[1]
    if "\n" in text or "\r" in text:
        unfolded = _FOLD.sub(" ", text)
        if "\n" in unfolded or "\r" in unfolded:
            ld.warn(f'the value of "{d.name} {d.args[0]}" has a line break that no space '
                    "follows: the header is never sent", d)
        else:
            text = unfolded
    return ld.compile(text, d)


def path_arg(ld: Context, d: Directive) -> str:
    return ld.path_of(d.args[0])


SPECS: list[Spec] = []


def listen_address(ld: Context, d: Directive, address: str,
                   default_port: int | None) -> tuple[str, int]:
    """``listen``'s address (HTTP's, the stream block's): host and port, or for a unix
    socket "unix:PATH" (the path the prefix's when relative) and port 0."""
    if not address.startswith("unix:"):
        return parse_host_port(d, address, default_port)
    if not address[5:]:
        raise d.error(f'no path in the unix domain socket in "{address}" of the '
                      '"listen" directive')
    return "unix:" + ld.path_of(address[5:]), 0


def refuse_reuseport_on_socket(d: Directive, port: int) -> None:
    """``listen unix:PATH reuseport`` (HTTP's, the stream block's): refused."""
    if port == 0:
        raise d.error('"reuseport" on a unix socket is not done in fastgate: its workers '
                      "share one socket")
