"""Status lines and the default error page."""

from __future__ import annotations

from fastgate._wire import REASONS


def reason(status: int) -> bytes:
    return REASONS.get(status, b"")


def error_body(status: int) -> bytes:
    text = f"{status} {reason(status).decode()}".strip()
    return (f"<html>\r\n<head><title>{text}</title></head>\r\n<body>\r\n<center><h1>{text}"
            "</h1></center>\r\n<hr><center>fastgate</center>\r\n</body>\r\n</html>\r\n").encode()
