"""The package's layers point one way (issue #16, ../shared/ARCHITECTURE.md):

    errors, _core, jwt  ->  config/ (+ variables)  ->  http/ (+ _wire)  ->  proxy/  ->  ops/
        ->  cli, demo, token_tool, revoke_tool

A module imports only from a lower layer or from its own; and no two files import each
other, directly or round a longer loop. Every import counts: module level, inside a
function, under ``TYPE_CHECKING``, and Cython's ``cimport`` in ``.pyx``/``.pxd`` files.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fastgate"

# the layer of each module, by its dotted name's first match (most specific first);
# _wire is the HTTP layer's C module (heads, framing) though its file is at the root
LAYERS: list[tuple[str, int]] = [
    ("fastgate._wire", 2),
    ("fastgate.errors", 0),
    ("fastgate._core", 0),
    ("fastgate.jwt", 0),
    ("fastgate.config", 1),
    ("fastgate.variables", 1),
    ("fastgate.client_certificate", 1),  # $ssl_client_*, beside the variables
    ("fastgate.secure_link", 1),  # $secure_link, beside the variables
    ("fastgate.browsers", 1),  # $modern_browser, beside the variables
    ("fastgate.userid", 1),  # $uid_got, $uid_set, beside the variables
    ("fastgate.cookie_header", 1),  # the Cookie header, for $cookie_* and userid
    ("fastgate.geoip", 1),  # the GeoIP module's databases and $geoip_*, beside the variables
    ("fastgate.stylesheets", 1),  # XSLT stylesheets, compiled with the configuration
    ("fastgate.gd", 1),  # libgd for the image filter, checked with the configuration
    ("fastgate.http", 2),
    ("fastgate.proxy", 3),
    ("fastgate.ops", 4),
    ("fastgate.cli", 5),
    ("fastgate.demo", 5),
    ("fastgate.token_tool", 5),
    ("fastgate.revoke_tool", 5),
    ("fastgate.__main__", 5),
    ("fastgate", 0),  # the package itself: its version
]
NAMES = ["errors, _core, jwt", "config", "http", "proxy", "ops",
         "cli, demo, token_tool, revoke_tool"]

_CYTHON_IMPORT = re.compile(
    r"^\s*(?:from\s+(?P<dots>\.*)(?P<base>[\w.]*)\s+c?import\s+(?P<names>[^#]+)"
    r"|c?import\s+(?P<mods>[\w., ]+))")


def _modules() -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix not in (".py", ".pyx", ".pxd") or "__pycache__" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.setdefault(".".join(parts), []).append(path)
    return out


MODULES = _modules()


def _absolute(module: str, path: Path, level: int, name: str) -> str:
    if level == 0:
        return name
    parts = module.split(".")
    if path.stem != "__init__":
        parts = parts[:-1]
    if level > 1:
        parts = parts[:-(level - 1)]
    return ".".join(parts + ([name] if name else []))


def _target(name: str) -> str | None:
    """The package module an imported name lives in (or None: not fastgate's)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _raw_imports(module: str, path: Path) -> list[tuple[str, list[str]]]:
    """(base module, imported names) for every import statement in the file."""
    text = path.read_text()
    found: list[tuple[str, list[str]]] = []
    if path.suffix == ".py":
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.Import):
                found.extend((a.name, []) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                found.append((_absolute(module, path, node.level, node.module or ""),
                              [a.name for a in node.names]))
        return found
    for line in text.splitlines():
        m = _CYTHON_IMPORT.match(line)
        if m is None:
            continue
        if m["mods"]:
            found.extend((n.strip().split(" as ")[0], []) for n in m["mods"].split(","))
        else:
            names = [n.strip(" ()\\").split(" as ")[0] for n in m["names"].split(",")]
            found.append((_absolute(module, path, len(m["dots"]), m["base"]),
                          [n for n in names if n]))
    return found


def imports(module: str) -> set[str]:
    out: set[str] = set()
    for path in MODULES[module]:
        for base, names in _raw_imports(module, path):
            for full in [f"{base}.{n}" for n in names] or [base]:
                target = _target(full) if full.startswith("fastgate") else None
                if target is None and base.startswith("fastgate"):
                    target = _target(base)
                if target is not None and target != module:
                    out.add(target)
    return out


GRAPH = {m: imports(m) for m in MODULES}


def layer(module: str) -> int:
    for prefix, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return rank
    raise AssertionError(f"{module} has no layer: add it to LAYERS")


def test_the_scanner_sees_every_kind_of_import() -> None:
    # a contract test is only as good as its parser: each form it must see, seen
    assert "fastgate.http.engine" in GRAPH["fastgate.http.server"]  # module level
    assert "fastgate._wire" in GRAPH["fastgate.proxy.request"]  # cimport in a .pxd
    assert "fastgate.config.model" in GRAPH["fastgate.proxy.runtime"]
    assert "fastgate.proxy.runtime" in GRAPH["fastgate.proxy.phases"]  # TYPE_CHECKING
    assert "fastgate.ops.run" in GRAPH["fastgate.cli"]  # inside a function
    assert "fastgate.http.engine" in GRAPH["fastgate.http.httptools_engine"]  # .pyx
    assert len(MODULES) > 40


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    mine = layer(module)
    up = sorted(t for t in GRAPH[module] if layer(t) > mine)
    assert not up, (f"{module} ({NAMES[mine]}) imports from above it: "
                    + ", ".join(f"{t} ({NAMES[layer(t)]})" for t in up))


def test_no_import_cycle() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_http_layer_knows_nothing_above_it() -> None:
    # the contract's sharpest edge, said on its own: http/ never names config, proxy, ops
    for module in MODULES:
        if module.startswith("fastgate.http"):
            bad = [t for t in GRAPH[module]
                   if t.startswith(("fastgate.config", "fastgate.proxy", "fastgate.ops"))]
            assert not bad, f"{module} imports {bad}"


# what only the HTTP layer may touch: a connection's engine, its transport, its write gate
_PRIVATE_TO_HTTP = ("engine", "transport", "gate")
_ATTRIBUTE = re.compile(r"\.(engine|transport|gate)\b(?!\s*import)")


def _touches(path: Path) -> list[str]:
    """``X.engine``, ``X.transport``, ``X.gate`` anywhere in ``path`` (comments and
    docstrings aside; in a .pyx, by its text outside comments)."""
    text = path.read_text()
    if path.suffix == ".py":
        return [f"{path.name}:{node.lineno}: .{node.attr}" for node in ast.walk(ast.parse(text))
                if isinstance(node, ast.Attribute) and node.attr in _PRIVATE_TO_HTTP]
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        if code.lstrip().startswith(("from ", "cimport ", "import ")):
            continue
        found += [f"{path.name}:{number}: .{m.group(1)}" for m in _ATTRIBUTE.finditer(code)]
    return found


def test_the_scanner_sees_an_engine_touched() -> None:
    assert any(".engine" in t for t in _touches(PACKAGE / "http" / "server.pyx"))
    assert any(".transport" in t for t in _touches(PACKAGE / "http" / "exchange.pyx"))


def test_only_the_http_layer_touches_engines_transports_and_gates() -> None:
    # issue #16 item 2: the layers above answer through http.exchange.Exchange (the
    # client side) and http.client.HttpClientConnection (the upstream side)
    touched = []
    for module, paths in MODULES.items():
        if module.startswith(("fastgate.http", "fastgate._wire")):
            continue
        for path in paths:
            touched += _touches(path)
    assert not touched, "outside http/: " + ", ".join(touched)


def test_the_proxy_knows_a_client_connection_only_by_its_contract() -> None:
    # typed against http.handler.ClientSide (mypy holds them to it), never the class
    users = sorted(m for m in MODULES if m.startswith("fastgate.proxy")
                   and "fastgate.http.server" in GRAPH[m])
    assert not users, f"{users} import fastgate.http.server"
