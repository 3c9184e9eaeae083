"""Status lines and the default error page."""

from __future__ import annotations

from functools import lru_cache

from fastgate._wire import REASONS


def reason(status: int) -> bytes:
    return REASONS.get(status, b"")


# nginx's statuses of its own that a client sees as 400 with their text (an error_page
# may still take them by their own number)
SPECIAL = {495: "The SSL certificate error", 496: "No required SSL certificate was sent",
           497: "The plain HTTP request was sent to HTTPS port"}

# the errors whose response ends the connection (nginx's special response handler sets
# r->keepalive = 0 for them; an error_page for them does not change that)
ENDS_CONNECTION = frozenset({400, 413, 414, 495, 496, 497, 500, 501})


@lru_cache(maxsize=128)  # (made once per status: every refusal sends one)
def error_body(status: int) -> bytes:
    special = SPECIAL.get(status)
    if special is not None:
        return (f"<html>\r\n<head><title>400 {special}</title></head>\r\n<body>\r\n"
                f"<center><h1>400 Bad Request</h1></center>\r\n<center>{special}</center>"
                "\r\n<hr><center>fastgate</center>\r\n</body>\r\n</html>\r\n").encode()
    text = f"{status} {reason(status).decode()}".strip()
    return (f"<html>\r\n<head><title>{text}</title></head>\r\n<body>\r\n<center><h1>{text}"
            "</h1></center>\r\n<hr><center>fastgate</center>\r\n</body>\r\n</html>\r\n").encode()
