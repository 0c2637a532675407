"""docker-compose.yml, the Procfile and the Dockerfile: every process they start is a real
engine with a command the CLI accepts, on the engine's own port (Docker is not run here)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from starmesh.cli.app import app
from starmesh.core.enums import EngineType
from starmesh.platform.config import ALL_ENGINES

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = {EngineType.MARKETDATA.value, *(e.value for e in ALL_ENGINES)}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_has_both_buses_the_hub_and_every_engine(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"redis-marketdata", "redis-logic", "postgres", *PROCESSES}
    logic = services["redis-logic"]["command"]
    assert logic[logic.index("--appendonly") + 1] == "yes"
    assert logic[logic.index("--appendfsync") + 1] == "always"
    assert "redis-logic:/data" in services["redis-logic"]["volumes"]


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_each_engine_service_runs_that_engine_on_its_port(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    command = service["command"]
    port = EngineType(name).default_port
    assert command[:3] == ["starmesh", "engine", name]
    assert command[command.index("--port") + 1] == str(port)
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
    environment = service["environment"]
    assert environment["STARMESH_BUS_URL"] == "redis://redis-logic:6379/0"
    assert environment["STARMESH_MARKETDATA_URL"] == "redis://redis-marketdata:6379/0"
    assert environment["STARMESH_HTTP_ADVERTISE_URL"] == f"http://{name}:{port}"
    assert set(service["depends_on"]) == {"redis-logic", "redis-marketdata", "postgres"}
    ledger = environment["STARMESH_DATABASE_URL"]
    assert ledger.startswith("postgresql+asyncpg://starmesh:")
    assert ledger.endswith("@postgres/starmesh")
    assert service["build"] == "."
    # The CLI takes the command's options as written.
    result = CliRunner().invoke(app, [*command[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_the_ledger_database_keeps_its_data_in_a_volume(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["volumes"] == ["ledger:/var/lib/postgresql/data"]
    assert "ports" not in postgres  # reachable from the engines only
    assert "ledger" in compose["volumes"]


def test_the_procfile_starts_the_same_processes() -> None:
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines()
             if line and not line.startswith("#")]  # fmt: skip
    names = {}
    for line in lines:
        name, _, command = line.partition(": ")
        argv = shlex.split(command)
        assert argv[:3] == ["starmesh", "engine", name]
        assert argv[argv.index("--port") + 1] == str(EngineType(name).default_port)
        names[name] = argv
    assert set(names) == PROCESSES


def test_the_image_installs_the_package_and_stops_on_sigterm() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir ." in dockerfile
    assert "STOPSIGNAL SIGTERM" in dockerfile
    assert "USER starmesh" in dockerfile


def test_the_port_map_in_the_deploy_guide_is_the_code_s() -> None:
    documented = {}
    for line in (ROOT / "docs" / "deploy.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 2 and cells[1].isdigit():
            documented[cells[0].split()[0]] = int(cells[1])
    engines = {e.value: e.default_port for e in EngineType}
    assert {name: documented.get(name) for name in engines} == engines
