"""The layers of DESIGN.md, checked on the source: each package imports only those below it.

core imports nothing of ours; bus only core; the client the bus; market data the client;
storage (the ledger) only core; engines the client, market data and storage, never a
transport; the platform (the composition root) the engines; nothing imports the CLI.
``__about__`` (the version) is a leaf anyone may read.
"""

from __future__ import annotations

import ast
from pathlib import Path

import starmesh

ALLOWED = {
    "core": set(),
    "bus": {"core"},
    "client": {"core", "bus"},
    "marketdata": {"core", "client"},
    "storage": {"core"},
    "engines": {"core", "client", "marketdata", "storage"},
    "platform": {"core", "client", "marketdata", "storage", "engines"},
    "testing": {"core"},
    "bench": {"core", "bus", "client", "marketdata", "engines", "platform", "testing"},
    "cli": {
        "core",
        "bus",
        "client",
        "marketdata",
        "storage",
        "engines",
        "platform",
        "bench",
        "testing",
    },
}
PACKAGE = Path(starmesh.__file__).parent


def imported_layers(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "starmesh" and len(parts) > 1:
                layers.add(parts[1])
    return layers


def test_every_package_imports_only_the_layers_below_it() -> None:
    breaches = []
    for layer, allowed in ALLOWED.items():
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            for imported in imported_layers(path) - allowed - {layer, "__about__"}:
                breaches.append(f"{path.relative_to(PACKAGE)} imports starmesh.{imported}")
    assert breaches == []


def test_every_package_has_its_place_in_the_layers() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(ALLOWED)


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text(
        "from starmesh.client.messagebus import MessageBusClient\nimport starmesh.cli\n"
    )
    assert imported_layers(module) == {"client", "cli"}
