"""The GeoIP module's directives at load: the databases opened (and refused as nginx
refuses them, FILE:LINE), the http block only, geoip_proxy's networks."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from geoip_sample import city_db, country_db, org_db

from fastgate.config import load_config
from fastgate.config.errors import ConfigError

COUNTRY = Path("/usr/share/GeoIP/GeoIP.dat")
needs_country = pytest.mark.skipif(not COUNTRY.exists(),
                                   reason="geoip-database is installed by make test")


def _load(tmp_path: Path, http: str, server: str = ""):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.conf"
    path.write_text("http {\n" + http + "\n server { listen 127.0.0.1:8997; " + server
                    + " } }")
    return load_config(str(path))


def test_databases_and_proxies_are_taken(tmp_path: Path) -> None:
    city, org = city_db(tmp_path / "c.dat"), org_db(tmp_path / "o.dat", v6=True)
    country = country_db(tmp_path / "k.dat")
    cfg = _load(tmp_path, f"geoip_city {city} utf8; geoip_org {org}; geoip_country {country};\n"
                "geoip_proxy 10.0.0.0/8; geoip_proxy 2001:db8::/32; geoip_proxy_recursive on;")
    s = cfg.servers[0].settings
    assert (s.geoip_city.kind, s.geoip_city.v6, s.geoip_org.kind, s.geoip_org.v6) == (
        "city", False, "org", True)
    assert s.geoip_country.kind == "country" and s.geoip_proxy_recursive
    assert s.geoip_proxy == (ipaddress.ip_network("10.0.0.0/8"),
                             ipaddress.ip_network("2001:db8::/32"))


def test_low_bits_are_warned_about(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "geoip_proxy 10.1.2.3/8;")
    assert any("low address bits of 10.1.2.3/8 are meaningless" in w for w in cfg.warnings)


@pytest.mark.parametrize(("http", "server", "message"), [
    ("geoip_country /nowhere/GeoIP.dat;", "", 'GeoIP_open("/nowhere/GeoIP.dat") failed'),
    ("geoip_city CITY utf-8;", "", 'invalid parameter "utf-8"'),
    ("geoip_org CITY;", "", 'invalid GeoIP database "CITY" type:2'),
    ("geoip_city ORG;", "", 'invalid GeoIP City database "ORG" type:5'),
    ("geoip_city CITY; geoip_city CITY;", "", "is duplicate"),
    ("", "geoip_city CITY;", "directive is not allowed here"),
    ("geoip_proxy 10.0.0.0/33;", "", 'invalid network "10.0.0.0/33"'),
    ("geoip_proxy_recursive maybe;", "", "invalid value"),
])
def test_refusals(tmp_path: Path, http: str, server: str, message: str) -> None:
    city, org = city_db(tmp_path / "c.dat"), org_db(tmp_path / "o.dat")
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, http.replace("CITY", str(city)).replace("ORG", str(org)),
              server.replace("CITY", str(city)))
    text = str(info.value).replace(str(city), "CITY").replace(str(org), "ORG")
    assert message in text and ":" in text.rsplit(" in ", 1)[-1]


@needs_country
def test_a_country_database_is_no_city_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, f"geoip_city {COUNTRY};")
    assert f'invalid GeoIP City database "{COUNTRY}" type:1' in str(info.value)
    cfg = _load(tmp_path, f"geoip_country {COUNTRY};")
    assert cfg.servers[0].settings.geoip_country.kind == "country"


def test_lookups_of_each_kind(tmp_path: Path) -> None:
    from fastgate.geoip import Database

    ip = ipaddress.ip_address
    country = Database(str(country_db(tmp_path / "k.dat")), "country", False)
    assert [country.country(ip("200.1.2.3"), w) for w in ("code", "code3", "name")] == [
        "CH", "CHE", "Switzerland"]
    assert country.country(ip("::ffff:200.1.2.3"), "code") == "CH"  # unwrapped
    assert country.country(ip("10.0.0.1"), "code") == ""
    # an IPv6 address asks an IPv4 file for INADDR_NONE (255.255.255.255), as nginx
    assert country.country(ip("8001::1"), "code") == country.country(ip("255.255.255.255"), "code")
    org = Database(str(org_db(tmp_path / "o.dat")), "org", True)
    assert (org.org(ip("200.1.2.3")), org.org(ip("1.2.3.4"))) == ("Caf\u00e9 Networks AG", "")
    city = Database(str(city_db(tmp_path / "c.dat", v6=True)), "city", False)
    record = city.city(ip("8001::1"))
    assert record is not None and city.city(ip("200.1.2.3")) is None  # (mapped: ::ffff:...)
    assert (record["city"], record["latitude"], record["longitude"]) == (
        "Z\udcfcrich", "47.3667", "8.5500")  # ISO-8859-1 as the file has it, without utf8
