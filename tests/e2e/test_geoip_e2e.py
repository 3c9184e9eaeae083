"""The GeoIP module end to end, with nginx 1.22 and its GeoIP module (Debian's
libnginx-mod-http-geoip) as the oracle: the same databases (Debian's geoip-database,
IPv4 and IPv6 editions), the same addresses through X-Forwarded-For from a trusted
proxy, the same variables — and an X-Forwarded-For from an untrusted client believed by
neither."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import request

GEOIP = Path("/usr/share/GeoIP")
MODULE = Path("/usr/lib/nginx/modules/ngx_http_geoip_module.so")
SHOWN = ("$geoip_country_code|$geoip_country_code3|$geoip_country_name|$geoip_org|"
         "$geoip_city|$geoip_region_name|$geoip_latitude")

BLOCK = f"""
geoip_country {GEOIP}/GeoIP.dat;
geoip_proxy 127.0.0.1;
geoip_proxy_recursive on;
server {{ listen 127.0.0.1:PORT;
  location / {{ return 200 "{SHOWN}\\n"; }}
  location /map {{ return 200 "$allowed\\n"; }}
}}
map $geoip_country_code $allowed {{ default no; US yes; NL yes; }}
"""

BLOCK_V6 = f"""
geoip_country {GEOIP}/GeoIPv6.dat utf8;
geoip_proxy 127.0.0.0/8;
server {{ listen 127.0.0.1:PORT;
  location / {{ return 200 "{SHOWN}\\n"; }}
}}
"""

ADDRESSES = ["8.8.8.8", "193.0.6.139", "81.2.69.160", "200.160.2.3", "41.0.0.1",
             "10.1.2.3", "127.0.0.1", "255.255.255.255", "2001:4860:4860::8888",
             "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8", "not-an-address",
             "9.9.9.9, 8.8.8.8", "192.0.2.1, 127.0.0.1", "8.8.8.8 , 127.0.0.5"]


def _skip_without_oracle() -> None:
    from test_nginx_parity_e2e import NGINX

    for needed in (Path(NGINX), MODULE, GEOIP / "GeoIP.dat", GEOIP / "GeoIPv6.dat"):
        if not needed.exists():
            pytest.skip(f"{needed} is installed by make test (test-deps)")


@pytest.mark.parametrize("block", [BLOCK, BLOCK_V6], ids=["v4", "v6"])
def test_nginx_finds_the_same_places(tmp_path: Path, engine: str, block: str) -> None:
    from test_nginx_parity_e2e import _request, both

    _skip_without_oracle()
    with both(tmp_path, block, engine, f"load_module {MODULE};\n") as (nginx, fastgate):
        seen = set()
        for addr in ADDRESSES:
            for path in ("/", "/map") if block is BLOCK else ("/",):
                raw = _request("GET", path, f"X-Forwarded-For: {addr}")
                want, got = nginx.send(raw), fastgate.send(raw)
                assert (got[0], got[2]) == (want[0], want[2]), (addr, path)
                seen.add(got[2])
        assert len(seen) > 4, seen  # (places were found, not only empty answers)


def test_an_untrusted_forwarded_address_is_not_believed(tmp_path: Path, gateway, free) -> None:  # type: ignore[no-untyped-def]
    _skip_without_oracle()
    port = free()
    gateway(f"""error_log stderr info;
http {{ access_log off; geoip_country {GEOIP}/GeoIP.dat; geoip_proxy 10.0.0.0/8;
  server {{ listen 127.0.0.1:{port};
    location / {{ return 200 "[$geoip_country_code]"; }} }} }}""", port)
    # the client (127.0.0.1) is no geoip_proxy: its header names nothing
    assert request(port, "GET", "/", headers={"X-Forwarded-For": "8.8.8.8"})[2] == b"[]"


CITY_SHOWN = ("$geoip_city_continent_code|$geoip_city_country_code|$geoip_city_country_code3|"
              "$geoip_city_country_name|$geoip_region|$geoip_region_name|$geoip_city|"
              "$geoip_postal_code|$geoip_latitude|$geoip_longitude|$geoip_dma_code|"
              "$geoip_area_code|$geoip_org")


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_city_and_organisation_databases(tmp_path: Path, engine: str, v6: bool) -> None:
    from geoip_sample import US, city_db, org_db
    from test_nginx_parity_e2e import _request, both

    _skip_without_oracle()
    city = city_db(tmp_path / "city.dat", **({"country": US, "region": b"CA"} if v6 else {}),
                   v6=v6)
    org = org_db(tmp_path / "org.dat", v6=v6)
    charset = "" if v6 else " utf8"
    block = f"""
geoip_city {city}{charset}; geoip_org {org}{charset}; geoip_proxy 127.0.0.1;
server {{ listen 127.0.0.1:PORT; location / {{ return 200 "{CITY_SHOWN}\\n"; }} }}"""
    with both(tmp_path, block, engine, f"load_module {MODULE};\n") as (nginx, fastgate):
        bodies = []
        for addr in ("200.1.2.3", "10.0.0.1", "8001::1", "::1", "::ffff:200.1.2.3"):
            raw = _request("GET", "/", f"X-Forwarded-For: {addr}")
            want, got = nginx.send(raw), fastgate.send(raw)
            assert (got[0], got[2]) == (want[0], want[2]), addr
            bodies.append(got[2])
        found = bodies[2] if v6 else bodies[0]
        assert found == (b"NA|US|USA|United States|CA|California|Z\xfcrich|8001|47.3667|8.5500|"
                         b"807|650|Caf\xe9 Networks AG\n" if v6 else
                         "EU|CH|CHE|Switzerland|25|Zurich|Z\u00fcrich|8001|47.3667|8.5500|0|0|"
                         "Caf\u00e9 Networks AG\n".encode())
