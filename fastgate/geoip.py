"""The GeoIP module's databases (``geoip_country``, ``geoip_org``, ``geoip_city``): MaxMind's
legacy GeoIP files, read through libGeoIP — the library nginx's ngx_http_geoip_module
links, loaded with ctypes from Debian's ``libgeoip1`` — so each answer is that
library's, byte for byte: the country tables, the UTF-8 conversion of ``utf8``, the
city records, the region names.

A database is opened once at load, read whole into memory (``GEOIP_MEMORY_CACHE``, as
nginx's) and only read after; lookups take an address as nginx hands it over: an IPv4
database gets the IPv4 address (an IPv4-mapped IPv6 one unwrapped; any other IPv6 one
is ``INADDR_NONE``), an IPv6 database gets IPv4 addresses mapped (``::ffff:a.b.c.d``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import ipaddress
from collections.abc import Callable
from typing import Any

from fastgate.config import addresses
from fastgate.errors import FastgateError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# libGeoIP's GeoIPDBTypes, by what nginx opens them for
COUNTRY = {1: False, 12: True}  # edition: is IPv6
ORG = {4: False, 5: False, 9: False, 11: False, 21: True, 22: True, 23: True, 24: True}
CITY = {2: False, 6: False, 30: True, 31: True}
_MEMORY_CACHE = 1
_CHARSET_UTF8 = 1
_INADDR_NONE = 0xFFFFFFFF


class GeoipError(FastgateError):
    """A database that cannot be opened or is not of the kind asked for (nginx's
    words), or libGeoIP missing."""


class _In6(ctypes.Structure):
    _fields_ = [("s6_addr", ctypes.c_ubyte * 16)]


class _Record(ctypes.Structure):
    _fields_ = [("country_code", ctypes.c_char_p), ("country_code3", ctypes.c_char_p),
                ("country_name", ctypes.c_char_p), ("region", ctypes.c_char_p),
                ("city", ctypes.c_char_p), ("postal_code", ctypes.c_char_p),
                ("latitude", ctypes.c_float), ("longitude", ctypes.c_float),
                ("dma_code", ctypes.c_int), ("area_code", ctypes.c_int),
                ("charset", ctypes.c_int), ("continent_code", ctypes.c_char_p),
                ("netmask", ctypes.c_int)]


@functools.cache
def _lib() -> Any:
    """libGeoIP, its functions typed (loaded once per process, when a configuration
    first names a database)."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("GeoIP") or "libGeoIP.so.1")
    except OSError:
        raise GeoipError("the GeoIP module needs libGeoIP, nginx's GeoIP library "
                         "(Debian package libgeoip1)") from None
    v = ctypes.c_void_p
    lib.GeoIP_open.argtypes, lib.GeoIP_open.restype = [ctypes.c_char_p, ctypes.c_int], v
    lib.GeoIP_delete.argtypes, lib.GeoIP_delete.restype = [v], None
    lib.GeoIP_database_edition.argtypes = [v]
    lib.GeoIP_database_edition.restype = ctypes.c_ubyte
    lib.GeoIP_set_charset.argtypes, lib.GeoIP_set_charset.restype = [v, ctypes.c_int], \
        ctypes.c_int
    for what in ("code", "code3", "name"):
        f = getattr(lib, f"GeoIP_country_{what}_by_ipnum")
        f.argtypes, f.restype = [v, ctypes.c_ulong], ctypes.c_char_p
        f = getattr(lib, f"GeoIP_country_{what}_by_ipnum_v6")
        f.argtypes, f.restype = [v, _In6], ctypes.c_char_p
    # (malloc'd strings and records: freed here, as nginx frees them)
    lib.GeoIP_name_by_ipnum.argtypes, lib.GeoIP_name_by_ipnum.restype = \
        [v, ctypes.c_ulong], v
    lib.GeoIP_name_by_ipnum_v6.argtypes, lib.GeoIP_name_by_ipnum_v6.restype = [v, _In6], v
    record = ctypes.POINTER(_Record)
    lib.GeoIP_record_by_ipnum.argtypes, lib.GeoIP_record_by_ipnum.restype = \
        [v, ctypes.c_ulong], record
    lib.GeoIP_record_by_ipnum_v6.argtypes, lib.GeoIP_record_by_ipnum_v6.restype = \
        [v, _In6], record
    lib.GeoIPRecord_delete.argtypes, lib.GeoIPRecord_delete.restype = [record], None
    lib.GeoIP_region_name_by_code.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.GeoIP_region_name_by_code.restype = ctypes.c_char_p
    return lib


@functools.cache
def _free() -> Any:
    """libc's free, for what libGeoIP allocated for the caller."""
    free = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").free
    free.argtypes, free.restype = [ctypes.c_void_p], None
    return free


def _text(raw: bytes | None) -> str:
    # bytes as the library gave them (ISO-8859-1, or UTF-8 with "utf8"), kept as they are
    return raw.decode("utf-8", "surrogateescape") if raw else ""


class Database:
    """One opened GeoIP file (``kind``: "country", "org" or "city")."""

    def __init__(self, path: str, kind: str, utf8: bool) -> None:
        lib = _lib()
        handle = lib.GeoIP_open(path.encode("utf-8", "surrogateescape"), _MEMORY_CACHE)
        if not handle:
            raise GeoipError(f'GeoIP_open("{path}") failed')
        self._handle = handle
        if utf8:
            lib.GeoIP_set_charset(handle, _CHARSET_UTF8)
        edition = lib.GeoIP_database_edition(handle)
        editions = {"country": COUNTRY, "org": ORG, "city": CITY}[kind]
        if edition not in editions:
            city = " City" if kind == "city" else ""
            raise GeoipError(f'invalid GeoIP{city} database "{path}" type:{edition}')
        self.path = path
        self.kind = kind
        self.v6 = editions[edition]

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle:
            _lib().GeoIP_delete(handle)

    def _arg(self, addr: Address) -> Any:
        """The address as nginx hands it to the library (see the module's text)."""
        if self.v6:
            if isinstance(addr, ipaddress.IPv4Address):
                addr = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + addr.packed)
            return _In6((ctypes.c_ubyte * 16)(*addr.packed))
        if isinstance(addr, ipaddress.IPv6Address):
            mapped = addr.ipv4_mapped
            return int(mapped) if mapped is not None else _INADDR_NONE
        return int(addr)

    def country(self, addr: Address, what: str) -> str:
        """``what``: "code", "code3" or "name"; empty where the database has none."""
        suffix = "_v6" if self.v6 else ""
        f = getattr(_lib(), f"GeoIP_country_{what}_by_ipnum{suffix}")
        return _text(f(self._handle, self._arg(addr)))

    def org(self, addr: Address) -> str:
        lib = _lib()
        f = lib.GeoIP_name_by_ipnum_v6 if self.v6 else lib.GeoIP_name_by_ipnum
        p = f(self._handle, self._arg(addr))
        if not p:
            return ""
        try:
            return _text(ctypes.string_at(p))
        finally:
            _free()(p)

    def city(self, addr: Address) -> dict[str, str] | None:
        """The city record's fields as nginx's variables show them (None: no record)."""
        lib = _lib()
        f = lib.GeoIP_record_by_ipnum_v6 if self.v6 else lib.GeoIP_record_by_ipnum
        p = f(self._handle, self._arg(addr))
        if not p:
            return None
        try:
            r = p.contents
            region = (lib.GeoIP_region_name_by_code(r.country_code, r.region)
                      if r.country_code and r.region else None)
            return {"continent_code": _text(r.continent_code),
                    "country_code": _text(r.country_code),
                    "country_code3": _text(r.country_code3),
                    "country_name": _text(r.country_name), "region": _text(r.region),
                    "region_name": _text(region), "city": _text(r.city),
                    "postal_code": _text(r.postal_code),
                    "latitude": f"{r.latitude:.4f}", "longitude": f"{r.longitude:.4f}",
                    "dma_code": str(r.dma_code), "area_code": str(r.area_code)}
        finally:
            lib.GeoIPRecord_delete(p)


def _settings(r: Any) -> Any:
    """The settings the request's variables see: its location's, else its server's."""
    where = r.location if r.location is not None else r.server
    return where.settings if where is not None else None


def _address(r: Any, s: Any) -> Address:
    """The address looked up: the client's (after realip), or the one X-Forwarded-For
    gives when it came from a ``geoip_proxy`` (as far back as ``geoip_proxy_recursive``
    trusts); a connection without an IP address looks up 0.0.0.0, as nginx's none."""
    addr = addresses.parse(r.remote_addr) or ipaddress.IPv4Address(0)
    if s.geoip_proxy:
        lines = [v.decode("latin-1") for n, v in r.head.headers
                 if n.lower() == b"x-forwarded-for"]
        if lines:
            addr = addresses.forwarded(addr, lines, s.geoip_proxy,
                                       s.geoip_proxy_recursive)[0] or addr
    return addr


def _country(what: str) -> Callable[[Any], str]:
    def get(r: Any) -> str:
        s = _settings(r)
        db = s.geoip_country if s is not None else None
        return db.country(_address(r, s), what) if db is not None else ""

    return get


def _org(r: Any) -> str:
    s = _settings(r)
    db = s.geoip_org if s is not None else None
    return db.org(_address(r, s)) if db is not None else ""


_CITY_KEY = ("geoip city",)


def _city(field: str) -> Callable[[Any], str]:
    def get(r: Any) -> str:
        memo = r.memo
        if _CITY_KEY not in memo:  # (one lookup per request, whatever it shows)
            s = _settings(r)
            db = s.geoip_city if s is not None else None
            memo[_CITY_KEY] = db.city(_address(r, s)) if db is not None else None
        record = memo[_CITY_KEY]
        return record[field] if record is not None else ""

    return get


# nginx's variables: name → getter
VARIABLES: dict[str, Callable[[Any], str]] = {
    "geoip_country_code": _country("code"),
    "geoip_country_code3": _country("code3"),
    "geoip_country_name": _country("name"),
    "geoip_org": _org,
    **{f"geoip_{name}": _city(field) for name, field in (
        ("city_continent_code", "continent_code"), ("city_country_code", "country_code"),
        ("city_country_code3", "country_code3"), ("city_country_name", "country_name"),
        ("region", "region"), ("region_name", "region_name"), ("city", "city"),
        ("postal_code", "postal_code"), ("latitude", "latitude"),
        ("longitude", "longitude"), ("dma_code", "dma_code"), ("area_code", "area_code"))},
}

__all__ = ["VARIABLES", "Database", "GeoipError"]
