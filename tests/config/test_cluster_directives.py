"""fastgate_cluster and auth_jwt_revocation: the store's URL checked at load (a typo
fails ``-t`` with FILE:LINE), revocation refused without a store, inheritance."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastgate.config import ConfigError, load_config


def _load(tmp: Path, http: str, server: str = ""):  # type: ignore[no-untyped-def]
    path = tmp / "t.conf"
    path.write_text("http {\n" + http + "\nserver { listen 127.0.0.1:8080;\n" + server
                    + "\n} }\n")
    return load_config(str(path))


def _error(tmp: Path, http: str, server: str = "") -> str:
    with pytest.raises(ConfigError) as e:
        _load(tmp, http, server)
    return str(e.value)


def test_the_store(tmp_path: Path) -> None:
    c = _load(tmp_path, "fastgate_cluster redis://app:s3cret@10.0.0.5:6380/2 timeout=250ms;")
    assert c.cluster is not None
    assert c.cluster.url == "redis://app:s3cret@10.0.0.5:6380/2"
    assert c.cluster.shown == "redis://10.0.0.5:6380/2"  # never the password in a message
    assert c.cluster.timeout == 0.25
    assert _load(tmp_path, "fastgate_cluster rediss://store;").cluster.timeout == 1.0
    assert _load(tmp_path, "fastgate_cluster unix:///run/redis.sock;").cluster is not None
    assert _load(tmp_path, "").cluster is None


@pytest.mark.parametrize("directive,message", [
    ("fastgate_cluster http://store:6379;", "the scheme must be redis://"),
    ("fastgate_cluster redis://;", "no host"),
    ("fastgate_cluster redis://store:99999;", "invalid cluster URL"),
    ("fastgate_cluster redis://store:0;", "invalid port"),
    ("fastgate_cluster redis://store/db1;", "the database must be a number"),
    ("fastgate_cluster redis://store?timeout=1;", "give options as parameters"),
    ("fastgate_cluster unix://;", "no socket path"),
    ("fastgate_cluster redis://a redis://b;", "takes one store address"),
    ("fastgate_cluster redis://a timeout=0;", 'invalid parameter "timeout=0"'),
    ("fastgate_cluster redis://a timeout=soon;", "invalid value"),
    ("fastgate_cluster redis://a sync;", 'invalid parameter "sync"'),
    ("fastgate_cluster redis://a; fastgate_cluster redis://b;", "is duplicate"),
])
def test_a_bad_store_fails_with_its_line(tmp_path: Path, directive: str, message: str) -> None:
    text = _error(tmp_path, directive)
    assert message in text and "t.conf:2" in text


def test_the_store_is_http_level_only(tmp_path: Path) -> None:
    assert "is not allowed here" in _error(tmp_path, "", "fastgate_cluster redis://a;")


def test_revocation_needs_the_store(tmp_path: Path) -> None:
    text = _error(tmp_path, "", "location / { auth_jwt on; auth_jwt_key k;\n"
                                "auth_jwt_revocation on; }")
    assert '"auth_jwt_revocation on" needs "fastgate_cluster"' in text and "t.conf:5" in text
    # off needs nothing
    _load(tmp_path, "", "auth_jwt_revocation off;")


def test_revocation_is_inherited_and_may_be_turned_off(tmp_path: Path) -> None:
    c = _load(tmp_path, "fastgate_cluster redis://a; auth_jwt_revocation on;",
              "location /a/ { auth_jwt on; auth_jwt_key k; }\n"
              "location /b/ { auth_jwt on; auth_jwt_key k; auth_jwt_revocation off; }")
    by = {loc.pattern: loc.settings.auth_jwt_revocation for loc in c.servers[0].locations.all()}
    assert by["/a/"] is True and by["/b/"] is False
    assert "invalid value" in _error(tmp_path, "fastgate_cluster redis://a;",
                                     "auth_jwt_revocation yes;")


def test_zones_shared_by_the_fleet(tmp_path: Path) -> None:
    c = _load(tmp_path, "fastgate_cluster redis://a;\n"
                        "limit_req_zone $binary_remote_addr zone=a:1m rate=1r/s sync;\n"
                        "limit_conn_zone $binary_remote_addr zone=b:1m sync;\n"
                        "limit_req_zone $binary_remote_addr zone=c:1m rate=1r/s;")
    assert (c.zones["a"].sync, c.zones["b"].sync, c.zones["c"].sync) == (True, True, False)
    assert not any("sync" in w for w in c.warnings)


def test_sync_without_a_store_is_said_once(tmp_path: Path) -> None:
    c = _load(tmp_path, "limit_req_zone $binary_remote_addr zone=a:1m rate=1r/s sync;\n"
                        "limit_conn_zone $binary_remote_addr zone=b:1m sync;")
    assert [w for w in c.warnings if "sync" in w] == [
        '[warn] "sync" without "fastgate_cluster" (2 times): the zone is shared by this '
        f"instance's workers only in {tmp_path}/t.conf:2"]


def test_the_cas_of_a_tls_store(tmp_path: Path) -> None:
    from helpers import self_signed

    cert, _ = self_signed(tmp_path, "store")
    c = _load(tmp_path, f"fastgate_cluster rediss://store ca={cert.name};")
    assert c.cluster is not None and c.cluster.ca == str(cert)  # beside the configuration
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    for directive, words in (
            (f"fastgate_cluster redis://store ca={cert};", '"ca=' + str(cert) + '" goes with '
                                                             "rediss://"),
            ("fastgate_cluster rediss://store ca=missing.pem;", "cannot open"),
            ("fastgate_cluster rediss://store ca=junk.pem;", "cannot load CA certificates")):
        text = _error(tmp_path, directive)
        assert words in text and "t.conf:2" in text, text
