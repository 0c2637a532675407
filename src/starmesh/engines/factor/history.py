"""Daily history of the universe from the hub: bars and fundamentals, as polars panels.

Both factor engines ask the hub for the same history (the star: one upstream call, every engine
the same data). Each symbol's bars come in a request of their own, so no reply approaches the
bus's message size limit however long the history.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import NamedTuple

import polars as pl

from starmesh.core.enums import DataType
from starmesh.core.errors import MarketDataError
from starmesh.core.payloads import Bar, BarSeries, Fundamental
from starmesh.marketdata.client import MarketDataClient

__all__ = ["History", "Panel", "build_panel", "fetch_history"]

logger = logging.getLogger(__name__)


class History(NamedTuple):
    bars: dict[str, list[Bar]]
    fundamentals: dict[str, Fundamental]
    missing: list[str]
    """Symbols the hub had no daily bars or fundamentals for."""


async def fetch_history(marketdata: MarketDataClient, symbols: Sequence[str], days: int) -> History:
    bars: dict[str, list[Bar]] = {}
    fundamentals: dict[str, Fundamental] = {}
    missing: list[str] = []
    params = {"interval": "1d", "lookback": str(days)}
    for symbol in symbols:
        try:
            data = await marketdata.get_data(symbol, [DataType.BAR, DataType.FUNDAMENTAL],
                                             params=params)  # fmt: skip
        except MarketDataError as exc:
            logger.warning("no daily history for %s: %s", symbol, exc)
            missing.append(symbol)
            continue
        series = data[symbol][DataType.BAR].data
        fundamental = data[symbol][DataType.FUNDAMENTAL].data
        if not isinstance(series, BarSeries) or not isinstance(fundamental, Fundamental):
            missing.append(symbol)
            continue
        bars[symbol] = series.bars
        fundamentals[symbol] = fundamental
    return History(bars, fundamentals, missing)


class Panel(NamedTuple):
    """Long panels keyed by ``date`` and ``symbol``, in toraniko's column names."""

    returns: pl.DataFrame
    """date, symbol, asset_returns"""
    market_caps: pl.DataFrame
    """date, symbol, market_cap"""
    values: pl.DataFrame
    """date, symbol, book_price, sales_price, cf_price (fundamentals over market cap)"""
    sectors: dict[str, str]
    """symbol -> sector"""


def _date(ts_ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).date()


def build_panel(
    bars: Mapping[str, Sequence[Bar]], fundamentals: Mapping[str, Fundamental]
) -> Panel:
    """Daily returns and market caps from the bars; value ratios and sectors from the
    fundamentals (held constant over the history: the hub serves the latest figures). A symbol
    without shares outstanding, book value, revenue, cash flow or sector is left out.
    """
    rows: list[tuple[dt.date, str, float, float, float, float, float]] = []
    sectors: dict[str, str] = {}
    for symbol in sorted(bars):
        fundamental = fundamentals.get(symbol)
        series = bars[symbol]
        if fundamental is None or fundamental.sector is None or len(series) < 2:
            continue
        metrics = fundamental.metrics
        try:
            shares = metrics["shares_outstanding"]
            book, revenue, cash_flow = (
                metrics["book_value"], metrics["revenue"], metrics["free_cash_flow"],
            )  # fmt: skip
        except KeyError:
            continue
        if shares <= 0 or book <= 0 or revenue <= 0:
            continue  # value ratios are taken in logs
        sectors[symbol] = fundamental.sector
        for previous, bar in pairwise(series):
            if previous.close <= 0 or bar.close <= 0:
                continue
            cap = shares * bar.close
            rows.append((_date(bar.ts_start), symbol, bar.close / previous.close - 1, cap,
                         book / cap, revenue / cap, cash_flow / cap))  # fmt: skip
    frame = pl.DataFrame(
        rows,
        schema={
            "date": pl.Date,
            "symbol": pl.String,
            "asset_returns": pl.Float64,
            "market_cap": pl.Float64,
            "book_price": pl.Float64,
            "sales_price": pl.Float64,
            "cf_price": pl.Float64,
        },
        orient="row",
    )
    return Panel(
        returns=frame.select("date", "symbol", "asset_returns"),
        market_caps=frame.select("date", "symbol", "market_cap"),
        values=frame.select("date", "symbol", "book_price", "sales_price", "cf_price"),
        sectors=sectors,
    )
