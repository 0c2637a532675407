"""The replay's present: at its first bar, or on ``start``, with the history before it to
look back on (the README's hub example asks for 250 daily bars and gets 250)."""

from __future__ import annotations

import datetime as dt

import pytest

from starmesh.core.clock import ManualClock
from starmesh.core.enums import DataType
from starmesh.core.errors import InvalidRequestError
from starmesh.core.payloads import BarSeries
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.replay import ReplaySource


def day(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, dt.UTC).date().isoformat()


async def bars(source: ReplaySource, lookback: str) -> BarSeries:
    series = await source.fetch(
        DataRequest.of("replay", DataType.BAR, "^GSPC", {"lookback": lookback})
    )
    assert isinstance(series, BarSeries)
    return series


async def test_from_the_first_bar_a_lookback_has_one_bar() -> None:
    series = await bars(ReplaySource(clock=ManualClock()), "250")
    assert [day(b.ts_start) for b in series.bars] == ["1999-01-04"]


async def test_from_start_a_lookback_reaches_back_and_time_moves_on() -> None:
    clock = ManualClock()
    source = ReplaySource(clock=clock, start="2008-09-15")  # a Monday: Lehman's bankruptcy
    series = await bars(source, "250")
    assert len(series.bars) == 250
    assert day(series.bars[-1].ts_start) == "2008-09-15"
    clock.advance(1.0)  # a trading day a second
    assert day((await bars(source, "1")).bars[-1].ts_start) == "2008-09-16"


async def test_a_start_between_bars_is_the_bar_before_it() -> None:
    source = ReplaySource(clock=ManualClock(), start=dt.date(2008, 9, 14))  # a Sunday
    assert day((await bars(source, "1")).bars[-1].ts_start) == "2008-09-12"


def test_a_start_that_is_no_date_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="a date like 2008-09-15"):
        ReplaySource(start="15/09/2008")
