"""The SSI filter module (``ngx_http_ssi_filter_module``): ``ssi``, ``ssi_silent_errors``,
``ssi_types``, ``ssi_value_length``, ``ssi_last_modified``; ``ssi_min_file_chunk`` and
``ssi_ignore_recycled_buffers`` tune nginx's buffers and are accepted with a warning
(``ignored``). The filter itself is ``proxy.ssi``."""

from __future__ import annotations

from fastgate.config.context import HSL, LIF, Context, Spec
from fastgate.config.directives.args import flag_arg, mime_types, setting, size_arg
from fastgate.config.parser import Directive


def _value_length(ld: Context, d: Directive) -> int:
    size = size_arg(ld, d)
    if size < 1:  # (nginx would take 0 and then fail every value)
        raise d.error(f'invalid value "{d.args[0]}"')
    return size


SPECS = [
    Spec("ssi", HSL | {LIF}, 1, 1, setting("ssi", flag_arg)),
    Spec("ssi_silent_errors", HSL, 1, 1, setting("ssi_silent_errors", flag_arg)),
    Spec("ssi_last_modified", HSL, 1, 1, setting("ssi_last_modified", flag_arg)),
    Spec("ssi_types", HSL, 1, None, mime_types("ssi_types", "text/html")),
    Spec("ssi_value_length", HSL, 1, 1, setting("ssi_value_length", _value_length)),
]

__all__ = ["SPECS"]
