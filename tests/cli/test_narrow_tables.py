"""`starmesh status` and `starmesh sources` fit an 80-column terminal: no cell cut with "…",
no line wider, and an unconfigured source says which variable to set (also in /health)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx
from rich.console import Console
from typer.testing import CliRunner

from starmesh.cli.app import app
from starmesh.cli.hub import _sources, _summary, failover_table
from starmesh.cli.tables import ResultTable, to_terminal
from starmesh.core.config import Settings
from starmesh.marketdata.factory import create_marketdata_hub
from starmesh.marketdata.sources import SOURCE_FACTORIES
from starmesh.testing import RedisServer

CREDENTIALS = (
    "STARMESH_ALPHAVANTAGE_KEY", "STARMESH_FRED_KEY", "STARMESH_TRADINGECONOMICS_KEY",
    "STARMESH_DATAGOV_KEY", "STARMESH_EDGAR_USER_AGENT", "STARMESH_IBKR_HOST",
    "STARMESH_IBKR_PORT", "STARMESH_IBKR_CLIENT_ID",
)  # fmt: skip
"""Unset in these tests: each keyed source unconfigured, whatever the machine has set."""


def assert_fits_80(text: str) -> None:
    assert "…" not in text
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, too_wide


def render(tables: list[ResultTable]) -> str:
    console = Console(width=80, record=True, force_terminal=False)
    for table in tables:
        console.print(to_terminal(table))
    return console.export_text()


def test_sources_with_the_hub_s_figures_fit_80_columns(respx_mock: respx.MockRouter) -> None:
    url = "http://hub.test:8800"
    busy = {"upstream_calls": 99_999, "errors": 9_999, "breaker": "half_open", "connections": 1}
    stats = {"sources": dict.fromkeys(SOURCE_FACTORIES, busy)}
    respx_mock.get(f"{url}/v1/stats").mock(return_value=httpx.Response(200, json=stats))
    env: dict[str, str | None] = {**dict.fromkeys(CREDENTIALS), "COLUMNS": "80"}
    result = CliRunner().invoke(app, ["sources", "--hub-url", url], env=env)
    assert result.exit_code == 0, result.output
    assert_fits_80(result.output)
    lines = result.output.splitlines()
    for name in SOURCE_FACTORIES:  # every row whole, on one line
        assert any(line.split()[:1] == [name] and "99,999" in line for line in lines), name
    assert any(line.split()[:2] == ["tradingeconomics", "unconfigured"] for line in lines)
    assert "set STARMESH_IBKR_HOST" in result.output
    assert "set STARMESH_FRED_KEY" in result.output


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_credentials")
async def test_status_of_a_hub_on_redis_fits_80_columns(
    redis_server: RedisServer, key_prefix: str
) -> None:
    names = ["simulated", "replay", "ibkr", "fred", "tradingeconomics", "yahoo"]
    settings = Settings(key_prefix=key_prefix)
    async with create_marketdata_hub(names, url=redis_server.url, settings=settings) as hub:
        stats: dict[str, Any] = hub.stats()
        health: dict[str, Any] = await hub.health_report()
    assert health["sources"]["fred"]["detail"].startswith("set STARMESH_FRED_KEY")
    assert health["sources"]["ibkr"]["detail"].startswith("set STARMESH_IBKR_HOST")
    assert "detail" not in health["sources"]["simulated"]
    assert health["failover"]["paths"], "a hub on Redis reports its failover paths"
    health["failover"]["paths"]["bus"]["last_error"] = "ConnectionError: " + "x" * 150
    text = render([_summary("http://127.0.0.1:8800", health, stats), *_sources(stats),
                   *failover_table("hub at http://127.0.0.1:8800", health)])  # fmt: skip
    assert_fits_80(text)
    lines = text.splitlines()
    assert any(line.split()[:2] == ["tradingeconomics", "unconfigured"] for line in lines)
    assert "set STARMESH_TRADINGECONOMICS_KEY" in text
    assert "route bus · outbox 0 · dead letters 0" in text
    assert "x" * 60 in text  # the last error, folded, not cut
