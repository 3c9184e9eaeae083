"""Status lines and the default error page."""

from __future__ import annotations

from functools import lru_cache

from fastgate.browsers import is_chrome, is_msie


def reason(status: int) -> bytes:
    """The reason phrase of a status line fastgate writes itself: nginx's
    (ngx_http_status_lines: "302 Moved Temporarily", "503 Service Temporarily
    Unavailable"...), none for a status nginx has none for ("HTTP/1.1 418 "). An
    upstream's own phrase goes on as it came."""
    return _NGINX_REASONS.get(status, b"")


_NGINX_REASONS = {
    200: b"OK", 201: b"Created", 202: b"Accepted", 204: b"No Content",
    206: b"Partial Content", 301: b"Moved Permanently", 302: b"Moved Temporarily",
    303: b"See Other", 304: b"Not Modified", 307: b"Temporary Redirect",
    308: b"Permanent Redirect", 400: b"Bad Request", 401: b"Unauthorized",
    402: b"Payment Required", 403: b"Forbidden", 404: b"Not Found", 405: b"Not Allowed",
    406: b"Not Acceptable", 408: b"Request Time-out", 409: b"Conflict", 410: b"Gone",
    411: b"Length Required", 412: b"Precondition Failed", 413: b"Request Entity Too Large",
    414: b"Request-URI Too Large", 415: b"Unsupported Media Type",
    416: b"Requested Range Not Satisfiable", 421: b"Misdirected Request",
    429: b"Too Many Requests", 500: b"Internal Server Error", 501: b"Not Implemented",
    502: b"Bad Gateway", 503: b"Service Temporarily Unavailable", 504: b"Gateway Time-out",
    505: b"HTTP Version Not Supported", 507: b"Insufficient Storage",
    # (not nginx's table: the ones fastgate's own modules answer with, as the RFCs say)
    100: b"Continue", 101: b"Switching Protocols", 207: b"Multi-Status",
    423: b"Locked",
}

# the titles of nginx's error pages (ngx_http_special_response.c); a status without one
# is answered with no body at all, as nginx's
_PAGE_TITLES = {
    301: "Moved Permanently", 302: "Found", 303: "See Other", 307: "Temporary Redirect",
    308: "Permanent Redirect", 400: "Bad Request", 401: "Authorization Required",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Not Allowed",
    406: "Not Acceptable", 408: "Request Time-out", 409: "Conflict", 410: "Gone",
    411: "Length Required", 412: "Precondition Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Large", 415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable", 421: "Misdirected Request",
    429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out",
    505: "HTTP Version Not Supported", 507: "Insufficient Storage",
}


# nginx's statuses of its own that a client sees as 400 with their text (an error_page
# may still take them by their own number)
SPECIAL = {494: "Request Header Or Cookie Too Large", 495: "The SSL certificate error",
           496: "No required SSL certificate was sent",
           497: "The plain HTTP request was sent to HTTPS port"}

# the errors whose response ends the connection (nginx's special response handler sets
# r->keepalive = 0 for them; an error_page for them does not change that)
ENDS_CONNECTION = frozenset({400, 413, 414, 495, 496, 497, 500, 501})


@lru_cache(maxsize=128)  # (made once per status: every refusal sends one)
def error_body(status: int) -> bytes:
    """nginx's page for ``status`` (empty: nginx has none, and sends no body)."""
    special = SPECIAL.get(status)
    if special is not None:
        return (f"<html>\r\n<head><title>400 {special}</title></head>\r\n<body>\r\n"
                f"<center><h1>400 Bad Request</h1></center>\r\n<center>{special}</center>"
                "\r\n<hr><center>fastgate</center>\r\n</body>\r\n</html>\r\n").encode()
    title = _PAGE_TITLES.get(status)
    if title is None:
        return b""
    text = f"{status} {title}"
    return (f"<html>\r\n<head><title>{text}</title></head>\r\n<body>\r\n<center><h1>{text}"
            "</h1></center>\r\n<hr><center>fastgate</center>\r\n</body>\r\n</html>\r\n").encode()


# what nginx adds to its 4xx and 5xx pages for MSIE and Chrome (msie_padding), whose
# own "friendly" page replaces an error page of under 512 bytes
MSIE_PADDING = b"<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n" * 6


def pads(status: int, agent: bytes | None) -> bool:
    """nginx's page for ``status`` is padded for this User-Agent (when ``msie_padding``
    is on, as it is by default): an error's (4xx, 5xx), to MSIE or Chrome."""
    return status >= 400 and (is_msie(agent) or is_chrome(agent))


# the bytes of a URL nginx escapes in msie_refresh's page (NGX_ESCAPE_REFRESH: controls,
# space, " ' < > \\ ^ ` { | ~, and every byte above 0x7E)
_REFRESH_ESCAPED = frozenset([*range(0x21), *b"\"'<>\\^`{|~", *range(0x7F, 0x100)])


def refresh_page(url: bytes) -> bytes:
    """msie_refresh's page: MSIE goes to ``url`` by a refresh, not a Location (nginx's
    ngx_http_send_refresh)."""
    escaped = b"".join(b"%%%02X" % c if c in _REFRESH_ESCAPED else bytes((c,))
                       for c in url)
    return (b'<html><head><meta http-equiv="Refresh" content="0; URL=' + escaped
            + b'"></head><body></body></html>\r\n')
