"""``ibkr`` is configured by its own variables: with none of STARMESH_IBKR_* set, nothing
connects (the README's rule for every source without its credential)."""

from __future__ import annotations

import pytest

from starmesh.core.clock import ManualClock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import SourceNotConfiguredError
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.ibkr import IbkrSource
from tests.marketdata.sources.ib_double import FakeIB

IBKR_ENV = ("STARMESH_IBKR_HOST", "STARMESH_IBKR_PORT", "STARMESH_IBKR_CLIENT_ID")


@pytest.fixture(autouse=True)
def no_ibkr_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in IBKR_ENV:
        monkeypatch.delenv(name, raising=False)


async def test_without_a_variable_it_is_unconfigured_and_sends_nothing(clock: ManualClock) -> None:
    ib = FakeIB("AAPL")
    source = IbkrSource(Settings(), clock, ib=ib)
    status = source.status()
    assert status.state == "unconfigured"
    assert status.detail.startswith("set STARMESH_IBKR_HOST")
    with pytest.raises(SourceNotConfiguredError, match="STARMESH_IBKR_HOST"):
        await source.fetch(DataRequest.of("ibkr", DataType.QUOTE, "AAPL"))
    assert ib.connects == []


@pytest.mark.parametrize("variable", IBKR_ENV)
async def test_any_one_variable_configures_it(
    variable: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "4001" if variable != "STARMESH_IBKR_HOST" else "127.0.0.1")
    ib = FakeIB("AAPL")
    source = IbkrSource(Settings(), clock, ib=ib)
    assert source.status().state == "configured"
    await source.fetch(DataRequest.of("ibkr", DataType.QUOTE, "AAPL"))
    assert len(ib.connects) == 1
    await source.aclose()
