"""Small MaxMind legacy GeoIP databases for the tests, written in the format libGeoIP
reads (a binary tree, then the records, then the structure info at the end): a Country
edition, a City edition (revision 1, IPv4 or IPv6) and an Organization edition.
Addresses whose first bit is 1 (128.0.0.0 and up; 8000:: and up) have the record (the
country); the others have none."""

from __future__ import annotations

from pathlib import Path

CH, US = 43, 225  # indexes in libGeoIP's country tables


def _file(edition: int, record_length: int, data: bytes) -> bytes:
    segments = 1  # one node: the first bit decides
    miss = segments.to_bytes(record_length, "little")  # "no record"
    hit = (segments + 1).to_bytes(record_length, "little")  # the record after one byte
    return (miss + hit + b"\0" + data
            + b"\xff\xff\xff" + bytes([edition]) + segments.to_bytes(3, "little"))


def country_db(path: Path, country: int = CH) -> Path:
    begin = 16776960  # libGeoIP's COUNTRY_BEGIN: a leaf is it plus the country's index
    path.write_bytes(begin.to_bytes(3, "little") + (begin + country).to_bytes(3, "little")
                     + b"\xff\xff\xff\x01")
    return path


def _coordinate(value: float) -> bytes:
    return round((value + 180) * 10000).to_bytes(3, "little")


def city_db(path: Path, country: int = CH, city: bytes = "Z\u00fcrich".encode("latin-1"),
            region: bytes = b"25", postal: bytes = b"8001", lat: float = 47.3667,
            lon: float = 8.55, metro: int = 807, area: int = 650, v6: bool = False) -> Path:
    record = (bytes([country]) + region + b"\0" + city + b"\0" + postal + b"\0"
              + _coordinate(lat) + _coordinate(lon)
              + (metro * 1000 + area).to_bytes(3, "little"))
    path.write_bytes(_file(30 if v6 else 2, 3, record))
    return path


def org_db(path: Path, name: bytes = "Caf\u00e9 Networks AG".encode("latin-1"),
           v6: bool = False) -> Path:
    path.write_bytes(_file(23 if v6 else 5, 4, name + b"\0"))
    return path
