"""The registry: all eight external sources, built from settings as the hub builds them."""

from __future__ import annotations

import pytest

from starmesh.core.clock import ManualClock
from starmesh.core.config import Settings
from starmesh.marketdata.source import Source
from starmesh.marketdata.sources import SOURCE_FACTORIES, build_source
from starmesh.marketdata.sources.external import EXTERNAL_SOURCES

NAMES = [
    "ibkr",
    "alphavantage",
    "fred",
    "edgar",
    "datagov",
    "tradingeconomics",
    "dbnomics",
    "yahoo",
]


def no_credentials(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for variable in ("STARMESH_IBKR_HOST", "STARMESH_IBKR_PORT", "STARMESH_IBKR_CLIENT_ID"):
        monkeypatch.delenv(variable, raising=False)
    return Settings(
        alphavantage_key=None, fred_key=None, tradingeconomics_key=None, datagov_key=None,
        edgar_user_agent=None,
    )  # fmt: skip


def test_the_eight_are_registered() -> None:
    assert list(EXTERNAL_SOURCES) == NAMES
    assert set(NAMES) <= set(SOURCE_FACTORIES)


@pytest.mark.parametrize("name", NAMES)
async def test_each_builds_from_settings_and_reports_its_state(
    name: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = build_source(name, no_credentials(monkeypatch), clock)
    assert isinstance(source, Source)
    assert source.name == name
    status = source.status()
    assert status.name == name
    needs_credentials = name in {
        "ibkr", "alphavantage", "fred", "edgar", "datagov", "tradingeconomics"
    }  # fmt: skip
    assert status.state == ("unconfigured" if needs_credentials else "configured")
    if needs_credentials:
        assert status.detail.startswith(("set STARMESH_", "STARMESH_"))
    assert source.data_types
    assert source.rate_limit.rate > 0
    await source.aclose()
