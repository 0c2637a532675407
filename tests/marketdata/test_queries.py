"""Checking what a query asks for, before any source or cache is touched."""

from __future__ import annotations

import pytest

from starmesh import DataType
from starmesh.core.errors import InvalidRequestError
from starmesh.core.payloads import MarketDataQuery
from starmesh.marketdata.queries import MAX_PAIRS, as_query, query_pairs

Q, L2 = DataType.QUOTE, DataType.LEVEL2


def test_pairs_come_once_each_symbols_first_in_the_asked_order() -> None:
    query = MarketDataQuery(symbols=["MSFT", "AAPL", "MSFT"], data_types=[L2, Q, L2])
    assert query_pairs(query) == [("MSFT", L2), ("MSFT", Q), ("AAPL", L2), ("AAPL", Q)]


@pytest.mark.parametrize(
    ("symbols", "types", "message"),
    [
        ([], [Q], "no symbols"),
        (["AAPL"], [], "no data types"),
        (["  "], [Q], "not a symbol"),
        (["X" * 65], [Q], "not a symbol"),
        ([f"S{n}" for n in range(MAX_PAIRS // 2 + 1)], [Q, L2], "the limit is 1,000"),
    ],
)
def test_bad_queries_are_refused_with_the_reason(
    symbols: list[str], types: list[DataType], message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        query_pairs(MarketDataQuery(symbols=symbols, data_types=types))


def test_a_plain_map_from_another_language_becomes_a_query() -> None:
    query = as_query({"symbols": ["AAPL"], "data_types": ["quote"], "params": {"interval": "1d"}})
    assert query == MarketDataQuery(symbols=["AAPL"], data_types=[Q], params={"interval": "1d"})
    with pytest.raises(InvalidRequestError, match="not a market-data query"):
        as_query({"symbols": "AAPL"})
