"""The mirror module: ``mirror URI|off`` copies each request to another location (a
test or shadow backend) whose answer is ignored; ``mirror_request_body`` says whether
the copy carries the body. Beside it, nginx's core ``post_action``: the same kind of
copy, once the response is done."""

from __future__ import annotations

from fastgate.config.context import HSL, LIF, Context, Level, Spec
from fastgate.config.directives.args import flag_arg, setting
from fastgate.config.parser import Directive


def mirror(ld: Context, lvl: Level, d: Directive) -> None:
    uri = d.args[0]
    lvl.origins.setdefault(d.name, d)
    if uri == "off":
        lvl.fields["mirror"] = ()
        return
    if "$" in uri:
        raise d.error('variables in "mirror" are not supported')
    if not uri.startswith(("/", "@")):
        raise d.error(f'invalid URI "{uri}" in "mirror": it must start with "/" or name a '
                      'location ("@name")')
    lvl.fields["mirror"] = lvl.fields.get("mirror", ()) + (uri,)


def post_action(ld: Context, d: Directive) -> str | None:
    """``post_action URI|@name|off`` (undocumented in nginx, used for analytics): after
    the response, the request once more to that location, its answer dropped."""
    uri = d.args[0]
    if uri == "off":
        return None
    if "$" in uri:
        raise d.error('variables in "post_action" are not supported')
    if not uri.startswith(("/", "@")):
        raise d.error(f'invalid URI "{uri}" in "post_action": it must start with "/" or '
                      'name a location ("@name")')
    return uri


SPECS = [
    Spec("mirror", HSL, 1, 1, mirror),
    Spec("post_action", HSL | {LIF}, 1, 1, setting("post_action", post_action)),
    Spec("mirror_request_body", HSL, 1, 1, setting("mirror_request_body", flag_arg)),
]
