"""Every directive of nginx's own modules is accounted for: taken (the directive
table), accepted and ignored with a [warn] (also in the table), or refused at load with
its module's name and the reason — never a bare "unknown directive".

The list is nginx 1.22.1's (Debian 12's nginx), made from its source: every
``ngx_string("NAME")`` of a ``ngx_command_t`` table in src/core, src/event and src/http,
with the ``NGX_*_CONF`` context flags that follow it — leaving out the event modules of
other systems (kqueue, /dev/poll, event ports, IOCP).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fastgate.config import ConfigError, load_config
from fastgate.config.context import (
    EVENTS,
    HTTP,
    LIF,
    LMT,
    LOCATION,
    MAIN,
    SERVER,
    SIF,
    UPSTREAM,
)
from fastgate.config.directives import TABLE, UPSTREAM_TABLE, lookup
from fastgate.config.directives.refused import refused_message

LIST = Path(__file__).with_name("nginx_1.22_directives.txt")


CONTEXTS = {"main": MAIN, "events": EVENTS, "http": HTTP, "server": SERVER,
            "location": LOCATION, "location-if": LIF, "server-if": SIF,
            "limit_except": LMT, "upstream": UPSTREAM}


def _nginx_directives() -> dict[tuple[str, str], frozenset[str]]:
    out = {}
    for line in LIST.read_text().splitlines():
        if line and not line.startswith("#"):
            module, name, *contexts = line.split()
            out[module, name] = frozenset(CONTEXTS[c] for c in "".join(contexts).split(",") if c)
    return out


WHERE = _nginx_directives()
NGINX = list(WHERE)
# directives the parser itself handles (nginx's ngx_conf_file.c)
PARSER = {"include"}


def _taken(name: str) -> bool:
    return lookup(name, TABLE) is not None or name in UPSTREAM_TABLE or name in PARSER


def test_the_list_is_nginx_1_22s() -> None:
    names = {n for _, n in NGINX}
    assert len(NGINX) > 500
    assert {"proxy_pass", "auth_basic", "fastcgi_pass", "epoll_events", "ip_hash"} <= names
    assert "kqueue_events" not in names


@pytest.mark.parametrize("module,name", NGINX, ids=[n for _, n in NGINX])
def test_every_nginx_directive_is_taken_or_refused_with_a_reason(module: str, name: str) -> None:
    if _taken(name):  # the table is looked up first
        return
    message = refused_message(name)
    assert message is not None, f"nginx's {name} ({module}) is neither taken nor refused"
    assert message.startswith(f'unknown directive "{name}" (nginx\'s ')


def _ours(name: str) -> set[str]:
    contexts: set[str] = set()
    for spec in (lookup(name, TABLE), UPSTREAM_TABLE.get(name)):
        if spec is not None:
            contexts |= spec.contexts
    return contexts


@pytest.mark.parametrize("module,name", NGINX, ids=[n for _, n in NGINX])
def test_a_directive_taken_is_taken_wherever_nginx_takes_it(module: str, name: str) -> None:
    """A configuration nginx loads does not fail on where a directive is written. Where
    nginx lets it be written is the union over its modules (``keepalive_timeout`` is the
    core module's and the upstream keepalive module's)."""
    if not _taken(name) or name in PARSER:
        return
    theirs = frozenset().union(*(c for (_, n), c in WHERE.items() if n == name))
    # limit_except blocks take only what fastgate lists for them (checked at load)
    missing = theirs - _ours(name) - {LMT}
    assert not missing, f"{name} is not taken in {sorted(missing)}, where nginx takes it"


def _refused() -> list[str]:
    return [n for _, n in NGINX if not _taken(n)]


@pytest.mark.parametrize("name", _refused())
def test_a_refused_directive_fails_the_load_with_its_reason(tmp_path: Path, name: str) -> None:
    upstream_only = name in ("hash", "ip_hash", "least_conn", "random")
    inner = f"{name} on;"
    if upstream_only:
        text = ("http { upstream be { " + inner + " server 127.0.0.1:9; }\n"
                "server { listen 127.0.0.1:8080; location / { proxy_pass http://be; } } }\n")
    else:
        text = "http { server { listen 127.0.0.1:8080; location / { " + inner + " } } }\n"
    path = tmp_path / "t.conf"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(str(path))
    assert str(e.value).startswith(f'unknown directive "{name}" (nginx\'s ')
    assert f"{path}:" in str(e.value)
    assert str(e.value) == f"{refused_message(name)} in {path}:{text.count(chr(10), 0, text.index(name)) + 1}"


def test_a_directive_nginx_does_not_know_is_still_unknown(tmp_path: Path) -> None:
    path = tmp_path / "t.conf"
    path.write_text("http { server { listen 127.0.0.1:8080; frobnicate on; } }\n")
    with pytest.raises(ConfigError, match=r'^unknown directive "frobnicate" in '):
        load_config(str(path))
