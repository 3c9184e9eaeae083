"""The access-log line renderer: bytes as nginx escapes them, and never an exception."""

from __future__ import annotations

from types import SimpleNamespace

from fastgate.config.model import LogFormat
from fastgate.ops.logs import AccessLogs, escape_default, escape_json
from fastgate.variables import Registry


def _fmt(text: str, escape: str = "default") -> LogFormat:
    reg = Registry()
    reg.define("v", lambda r: r.v)
    return LogFormat("t", reg.compile(text), escape)


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
