"""The access-log line renderer: bytes as nginx escapes them, and never an exception."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from fastgate.config.model import AccessLog, LogFile, LogFormat, Where
from fastgate.ops.logs import AccessLogs, escape_default, escape_json
from fastgate.variables import Registry, log_blanks


def _fmt(text: str, escape: str = "default", found: frozenset[str] = frozenset()
         ) -> LogFormat:
    reg = Registry()
    reg.define("v", lambda r: r.v)
    return LogFormat("t", reg.compile(text), escape,
                     log_blanks(text, found) if escape == "default" else ())


def test_escapes_as_nginx() -> None:
    assert escape_default("é\"\\\x01~".encode()) == b"\\xC3\\xA9\\x22\\x5C\\x01~"
    assert escape_json("é\"\\\n\x01".encode()) == "é\\\"\\\\\\n\\u0001".encode()


def test_a_value_is_rendered_as_its_bytes() -> None:
    raw = b"caf\xc3\xa9 \xff"  # UTF-8 and a byte that is not
    value = raw.decode("utf-8", "surrogateescape")
    line = AccessLogs.render(_fmt("[$v]"), SimpleNamespace(v=value))
    assert line == b"[caf\\xC3\\xA9 \\xFF]"
    assert AccessLogs.render(_fmt("[$v]", "none"), SimpleNamespace(v=value)) == b"[" + raw + b"]"


def test_empty_and_unencodable_values_never_raise() -> None:
    assert AccessLogs.render(_fmt("[$v]"), SimpleNamespace(v="")) == b"[-]"
    assert AccessLogs.render(_fmt("[$v]", "json"), SimpleNamespace(v="")) == b"[]"
    line = AccessLogs.render(_fmt("[$v]"), SimpleNamespace(v="\ud800"))
    assert line == b"[\\x5Cud800]"


def test_an_empty_value_nginx_finds_writes_nothing_one_it_does_not_a_dash() -> None:
    """nginx's log module writes "-" for a variable not found and nothing for one found
    empty: a map's or set's "" (``found``), $https off TLS, a unix client's port."""
    plain = SimpleNamespace(v="", scheme="http", remote_port=0, args="",
                            connection=SimpleNamespace(tls=None, remote_port=0))
    assert AccessLogs.render(_fmt("[$v]", found=frozenset({"v"})), plain) == b"[]"
    assert AccessLogs.render(_fmt("[$v]"), plain) == b"[-]"
    line = AccessLogs.render(_fmt("[$https|$remote_port|$is_args|$realip_remote_port]"), plain)
    assert line == b"[|||]"
    # the ssl module's: found on a TLS connection only
    tls = SimpleNamespace(tls=SimpleNamespace(), remote_port=0, client_certificate=None)
    fmt = _fmt("[$ssl_client_s_dn]")
    reqs = [SimpleNamespace(connection=c) for c in (
        SimpleNamespace(tls=None, client_certificate=None), tls)]
    assert log_blanks("$ssl_client_s_dn $http_x", frozenset())[1] == b"-"
    assert [AccessLogs.render(fmt, r) for r in reqs] == [b"[-]", b"[]"]


def test_a_flush_under_the_tick_is_kept_to(tmp_path: Path) -> None:
    """nginx writes a buffered log within its ``flush=``; fastgate looked at pending
    lines once a second whatever ``flush=`` said."""

    async def main() -> tuple[float, float]:
        logs = AccessLogs({"t": _fmt("$v")}, None)  # type: ignore[arg-type]
        where = Where(str(tmp_path / "t.conf"), 1)
        quick = AccessLog(LogFile(str(tmp_path / "a.log"), where), "t", buffer=65536,
                          flush=0.05)
        plain = AccessLog(LogFile(str(tmp_path / "b.log"), where), "t")
        logs.write((plain,), SimpleNamespace(v="x"))
        alone = logs._delay()
        logs.write((quick,), SimpleNamespace(v="y"))
        both = logs._delay()
        logs.flush()
        return alone, both

    alone, both = asyncio.run(main())
    assert alone == AccessLogs.TICK and 0 < both <= 0.05
