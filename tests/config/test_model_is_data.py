"""The configuration model is frozen data only (issue #16 item 5): what the loader
returns holds no runtime object — no verifier, no cache or memo, no TLS context, no
event-loop object. The worker builds those from it (``proxy.auth_jwt.build_verifiers``,
``proxy.locate.Locator``, ``ops``), so one Config can serve any number of workers and
reloads, and two loads of one file are equal."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import ssl
from pathlib import Path
from typing import Any

from fastgate.config import load_config
from fastgate.jwt import Verifier

SECRET = "model-secret-0123456789abcdef0123456789"

CONFIG = f"""
http {{
    auth_jwt_key "{SECRET}";
    map $jwt_claim_role $is_admin {{ default 0; "admin" 1; }}
    geo $office {{ default 0; 10.0.0.0/8 1; }}
    limit_req_zone $jwt_claim_sub zone=per_user:1m rate=10r/s;
    upstream app {{ server 127.0.0.1:9 max_fails=2; keepalive 8; }}
    server {{
        listen 127.0.0.1:1;
        auth_jwt on;
        location / {{ proxy_pass http://app; }}
        location /api/ {{
            auth_jwt_require $is_admin;
            limit_req zone=per_user burst=5;
            location /api/v2/ {{ auth_jwt_leeway 30; proxy_pass http://app; }}
            if ($request_method = OPTIONS) {{ add_header X-Cors 1; return 204; }}
            limit_except GET {{ deny all; }}
            proxy_pass http://app;
        }}
        location ~ ^/users/(\\d+)$ {{ auth_jwt off; return 200 $1; }}
        location @fallback {{ return 503; }}
    }}
}}
"""

# what may appear in the model besides frozen dataclasses and containers of them
_DATA = (str, bytes, int, float, bool, type(None), re.Pattern, Path)
_RUNTIME = (Verifier, ssl.SSLContext, asyncio.Future, asyncio.Handle,
            asyncio.AbstractEventLoop)


def _walk(root: Any, sizes: dict[str, int] | None = None) -> list[str]:
    """Every object reachable from ``root`` that is not frozen data, by path (and, into
    ``sizes``, how many items each container reached holds)."""
    bad: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("config", root)]
    while stack:
        where, obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _DATA):
            continue
        seen.add(id(obj))
        if isinstance(obj, _RUNTIME):
            bad.append(f"{where}: {type(obj).__name__}")
        elif dataclasses.is_dataclass(obj):
            if not type(obj).__dataclass_params__.frozen:  # type: ignore[attr-defined]
                bad.append(f"{where}: {type(obj).__name__} is not frozen")
            stack += [(f"{where}.{f.name}", getattr(obj, f.name))
                      for f in dataclasses.fields(obj)]
        elif isinstance(obj, dict):
            if sizes is not None:
                sizes[where] = len(obj)
            stack += [(f"{where}[{k!r}]", v) for k, v in obj.items()]
        elif isinstance(obj, (tuple, list, frozenset, set)):
            stack += [(f"{where}[{i}]", v) for i, v in enumerate(obj)]
        elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("fastgate"):
            stack += [(f"{where}.{k}", v) for k, v in vars(obj).items()]
    return bad


def _load(tmp_path: Path) -> Any:
    path = tmp_path / "t.conf"
    path.write_text(CONFIG)
    return load_config(str(path))


def test_the_walk_sees_a_runtime_object() -> None:
    # a check is only as good as its walk: a verifier hidden in a tuple in a dict is found
    assert _walk({"a": (1, Verifier([], "any"))}) == ["config['a'][1]: Verifier"]


def test_a_loaded_configuration_holds_no_runtime_object(tmp_path: Path) -> None:
    config = _load(tmp_path)
    assert config.jwt_checks  # the walk went through the JWT checks
    assert _walk(config) == []


def test_serving_requests_leaves_the_configuration_as_it_was(tmp_path: Path) -> None:
    config = _load(tmp_path)
    server = config.servers[0]
    before: dict[str, int] = {}
    _walk(config, before)
    for uri in ("/api/v2/x", "/users/7", "/api/", "/nowhere", "/users/7"):
        server.locations.find(uri)
    after: dict[str, int] = {}
    _walk(config, after)
    assert after == before  # no answer kept anywhere in it (fields hidden from repr too)
