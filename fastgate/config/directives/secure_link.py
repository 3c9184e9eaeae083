"""The secure_link module: ``secure_link HASH[,EXPIRES]``, ``secure_link_md5 STRING``
(or the older ``secure_link_secret WORD``), which ``$secure_link`` checks."""

from __future__ import annotations

from fastgate.config.context import HSL, Context, Level, Spec
from fastgate.config.parser import Directive

_MIXED = '"secure_link_secret" cannot be mixed with "secure_link" and "secure_link_md5"'


def secure_link(ld: Context, lvl: Level, d: Directive) -> None:
    """``secure_link`` or ``secure_link_md5``: a value with variables. A level that
    gives either does not inherit an outer ``secure_link_secret`` (nginx's merge)."""
    lvl.once(d)
    if lvl.fields.get("secure_link_secret"):
        raise d.error(_MIXED)
    lvl.fields[d.name] = ld.compile(d.args[0], d)
    lvl.fields["secure_link_secret"] = None


def secure_link_secret(ld: Context, lvl: Level, d: Directive) -> None:
    lvl.once(d)
    if lvl.fields.get("secure_link") is not None or lvl.fields.get("secure_link_md5"):
        raise d.error(_MIXED)
    # the secret's form: an outer secure_link and secure_link_md5 do not apply here
    lvl.fields.update(secure_link_secret=d.args[0], secure_link=None, secure_link_md5=None)


SPECS = [
    Spec("secure_link", HSL, 1, 1, secure_link),
    Spec("secure_link_md5", HSL, 1, 1, secure_link),
    Spec("secure_link_secret", HSL, 1, 1, secure_link_secret),
]
