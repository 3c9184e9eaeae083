"""Numbers a peer writes in decimal (a Range's bounds, a port, an expiry, a length), read
as nginx reads them with ngx_atoof and its kin: ASCII digits only, and no larger than a
64-bit value — never by handing thousands of digits to ``int()``, which refuses more
than 4,300 (a ValueError a client's header alone would cause) and slows down well before
that."""

from __future__ import annotations

MAX_OFF_T = 2 ** 63 - 1  # nginx's NGX_MAX_OFF_T_VALUE and NGX_MAX_TIME_T_VALUE


def decimal(text: str | bytes, limit: int = MAX_OFF_T) -> int | None:
    """``text``'s value when it is ASCII digits only and at most ``limit`` (leading zeros
    aside, as nginx reads them); None otherwise."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    digits = text.lstrip("0") if isinstance(text, str) else text.lstrip(b"0")
    if len(digits) > 19:
        return None
    value = int(digits) if digits else 0
    return value if value <= limit else None


__all__ = ["MAX_OFF_T", "decimal"]
