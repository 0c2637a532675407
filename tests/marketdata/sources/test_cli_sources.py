"""``starmesh sources``: the static columns always, the hub's usage when it answers."""

from __future__ import annotations

import socket

import httpx
import respx
import typer
from typer.testing import CliRunner

from starmesh.cli.sources import register
from tests.marketdata.sources.cases import FRED_KEY

ENV = {
    "COLUMNS": "220",
    "STARMESH_FRED_KEY": FRED_KEY,
    "STARMESH_ALPHAVANTAGE_KEY": None,
    "STARMESH_TRADINGECONOMICS_KEY": None,
    "STARMESH_DATAGOV_KEY": None,
    "STARMESH_EDGAR_USER_AGENT": None,
}


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def starmesh() -> None:
        """The command line, as cli/app.py will register it."""

    register(app)
    return app


def row(output: str, name: str, table: int = 0) -> str:
    """The line of ``name`` in the ``table``-th table (0: the figures, 1: the details)."""
    lines = [line for line in output.splitlines() if line.split()[:1] == [name]]
    return f" {lines[table]} "


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_without_a_hub_the_static_columns_and_why() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(cli(), ["sources"], env={**ENV, "STARMESH_HUB_HTTP_URL": url})
    assert result.exit_code == 0, result.output
    assert f"hub not reachable at {url}" in result.output
    for name in ("ibkr", "alphavantage", "fred", "edgar", "datagov", "tradingeconomics",
                 "dbnomics", "yahoo", "simulated", "replay"):  # fmt: skip
        assert f" {name} " in result.output
    assert " configured " in row(result.output, "fred")
    assert " 2/s " in row(result.output, "fred")
    alphavantage = row(result.output, "alphavantage")
    assert " unconfigured " in alphavantage
    assert " 25/day " in alphavantage
    assert "set STARMESH_ALPHAVANTAGE_KEY" in row(result.output, "alphavantage", table=1)
    assert " 1,000/hour " in row(result.output, "datagov")
    assert " 45/s " in row(result.output, "ibkr")
    assert "calls" not in result.output
    assert FRED_KEY not in result.output


def test_with_a_hub_its_usage_and_open_breakers(respx_mock: respx.MockRouter) -> None:
    url = "http://hub.test:8800"
    stats = {
        "sources": {
            "fred": {"upstream_calls": 1234, "errors": 7, "breaker": "open", "connections": 1},
            "yahoo": {"upstream_calls": 56, "errors": 0, "breaker": "closed", "connections": 1},
        }
    }
    respx_mock.get(f"{url}/v1/stats").mock(return_value=httpx.Response(200, json=stats))
    result = CliRunner().invoke(cli(), ["sources", "--hub-url", url], env=ENV)
    assert result.exit_code == 0, result.output
    assert "hub not reachable" not in result.output
    fred = row(result.output, "fred").split()
    assert fred[1:] == ["open", "2/s", "1,234", "7", "open", "1"]
    yahoo = row(result.output, "yahoo").split()
    assert yahoo[1:] == ["configured", "1/s", "56", "0", "closed", "1"]
    ibkr = row(result.output, "ibkr").split()
    assert ibkr[3:] == ["-", "-", "-", "-"]  # the hub does not use it


def test_a_hub_answering_nonsense_is_not_trusted(respx_mock: respx.MockRouter) -> None:
    url = "http://hub.test:8800"
    respx_mock.get(f"{url}/v1/stats").mock(return_value=httpx.Response(200, json={"sources": 3}))
    result = CliRunner().invoke(cli(), ["sources", "--hub-url", url], env=ENV)
    assert result.exit_code == 0, result.output
    assert f"hub not reachable at {url} (unexpected /v1/stats answer" in result.output
