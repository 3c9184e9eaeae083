"""Named captures as variables, beside nginx 1.22: ``(?<name>...)`` in a server_name,
a location, an if, a rewrite or a map key sets ``$name`` when it matches — the wildcard
subdomain site (``server_name ~^(?<sub>.+)\\.example\\.com$; root /srv/$sub;``), the
API location (``location ~ ^/users/(?<id>\\d+)$``). fastgate refused such
configurations with "unknown variable"."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_util import nginx_and_fastgate


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[dict[str, list[int]]]:
    for site in ("blog", "shop"):
        (tmp_path / "srv" / site).mkdir(parents=True)
        (tmp_path / "srv" / site / "index.html").write_text(f"{site} home\n")

    def body(ports: list[int]) -> str:
        return f"""
http {{ access_log off;
  map $http_x_tag $tag_kind {{ default none; ~^(?<tagname>[a-z]+)-(?<tagnum>\\d+)$ tagged; }}
  server {{ listen 127.0.0.1:{ports[0]};
    server_name ~^(?<sub>[a-z]+)\\.example\\.com$;
    root {tmp_path}/srv/$sub;
    location / {{ }}
  }}
  server {{ listen 127.0.0.1:{ports[1]}; server_name api.example.org; return 200 "api\\n"; }}
  server {{ listen 127.0.0.1:{ports[1]};
    server_name ~^(?<tenant>\\w+)\\.(?<zone>eu|us)\\.example\\.org$;
    location ~ ^/users/(?<id>\\d+)(?<rest>/.*)?$ {{
      return 200 "tenant=$tenant zone=$zone id=$id rest=[$rest]\\n"; }}
    location /if/ {{
      if ($arg_v ~ ^(?<major>\\d+)\\.(?<minor>\\d+)) {{ return 200 "v$major minor $minor\\n"; }}
      return 200 "no version [$major]\\n";
    }}
    location /old/ {{ rewrite ^/old/(?<slug>[^/]+)$ /new/$slug?from=$slug last; }}
    location /new/ {{ return 200 "new $uri $args slug=$slug\\n"; }}
    location /map/ {{ return 200 "$tag_kind name=$tagname num=$tagnum\\n"; }}
  }}
  # a regex name keeps its case (\\S is not \\s); $server_name of ".wild.test" is
  # "wild.test"; $hostname is the machine's name
  server {{ listen 127.0.0.1:{ports[2]}; server_name ~^(?<user>\\S+)\\.users\\.test$;
    return 200 "user=$user [$server_name]\\n"; }}
  server {{ listen 127.0.0.1:{ports[2]}; server_name .wild.test;
    return 200 "[$server_name] $host\\n"; }}
  server {{ listen 127.0.0.1:{ports[2]}; server_name $hostname;
    return 200 "machine [$server_name]\\n"; }}
}}
"""

    with nginx_and_fastgate(tmp_path, body, ports=3) as sides:
        yield sides


def _get(port: int, host: str, path: str, headers: dict[str, str] | None = None) -> object:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Host": host, **(headers or {})})
        r = c.getresponse()
        return r.status, r.read().replace(b"nginx/1.22.1", b"fastgate")
    finally:
        c.close()


def test_named_captures_as_nginx(ports: dict[str, list[int]]) -> None:
    asked = [(0, "blog.example.com", "/", {}), (0, "shop.example.com", "/", {}),
             (0, "none.example.com", "/", {}), (0, "other.test", "/", {})]
    asked += [(1, host, path, headers) for host in ("acme.eu.example.org", "api.example.org",
                                                    "x.asia.example.org")
              for path, headers in (("/users/42", {}), ("/users/42/keys", {}),
                                    ("/if/?v=3.14", {}), ("/if/?v=x", {}),
                                    ("/old/hello", {}), ("/map/", {"X-Tag": "red-7"}),
                                    ("/map/", {"X-Tag": "blue"}))]
    asked += [(2, host, "/", {}) for host in ("bob.users.test", "Bob.USERS.test",
                                              "a.b.wild.test", "wild.test",
                                              socket.gethostname())]
    answers = {}
    for which, host, path, headers in asked:
        ours = _get(ports["fastgate"][which], host, path, headers)
        assert ours == _get(ports["nginx"][which], host, path, headers), (host, path)
        answers[(host, path)] = ours
    assert answers[("blog.example.com", "/")] == (200, b"blog home\n")
    assert answers[("acme.eu.example.org", "/users/42/keys")] == (
        200, b"tenant=acme zone=eu id=42 rest=[/keys]\n")
    assert answers[("bob.users.test", "/")] == (200, b"user=bob [~^(?<user>\\S+)\\.users\\.test$]\n")
    assert answers[("a.b.wild.test", "/")] == (200, b"[wild.test] a.b.wild.test\n")
    assert answers[("acme.eu.example.org", "/old/hello")] == (
        200, b"new /new/hello from=hello slug=hello\n")
