"""The slice module (``ngx_http_slice_filter_module``): ``slice SIZE`` (0: off). What it
does with ``$slice_range``: ``proxy.slices``."""

from __future__ import annotations

from fastgate.config.context import HSL, Context, Spec
from fastgate.config.directives.args import setting, size_arg
from fastgate.config.parser import Directive

# a slice is kept whole in memory while it is sent: at most a subrequest's answer
# (proxy.capture.KEPT_MAX)
SLICE_MAX = 8 << 20


def _size(ld: Context, d: Directive) -> int:
    size = size_arg(ld, d)
    if size > SLICE_MAX:
        raise d.error(f'"slice" size "{d.args[0]}" is larger than fastgate keeps of a '
                      f'slice (8m)')
    return size


SPECS = [Spec("slice", HSL, 1, 1, setting("slice", _size))]

__all__ = ["SPECS"]
