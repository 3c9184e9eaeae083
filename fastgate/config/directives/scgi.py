"""The SCGI module (``ngx_http_scgi_module``): the family's directives
(``directives.cgi``) under ``scgi_``."""

from __future__ import annotations

from fastgate.config.directives.cgi import common_specs

SPECS = common_specs("scgi")

__all__ = ["SPECS"]
