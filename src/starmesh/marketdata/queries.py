"""What a market-data query asks for, checked: the (symbol, data type) pairs, in order."""

from __future__ import annotations

import msgspec

from starmesh.core.enums import DataType
from starmesh.core.errors import InvalidRequestError
from starmesh.core.payloads import MarketDataQuery

__all__ = ["MAX_PAIRS", "as_query", "query_pairs"]

MAX_PAIRS = 1_000
"""The most (symbol, data type) pairs one request may ask for, by default
(``STARMESH_MAX_PAIRS_PER_REQUEST``): each may cost an upstream call."""


def query_pairs(query: MarketDataQuery, limit: int = MAX_PAIRS) -> list[tuple[str, DataType]]:
    """Every (symbol, data type) pair of ``query`` once, symbols first, in the asked order."""
    if len(query.symbols) > limit:
        raise InvalidRequestError(
            f"{len(query.symbols):,} symbols asked for; the limit is {limit:,}"
        )
    if not query.symbols:
        raise InvalidRequestError("no symbols asked for")
    if not query.data_types:
        raise InvalidRequestError("no data types asked for")
    if len(query.symbols) == 1 and len(query.data_types) == 1:
        pairs = [(query.symbols[0], query.data_types[0])]
    else:
        symbols, types = dict.fromkeys(query.symbols), dict.fromkeys(query.data_types)
        pairs = [(s, t) for s in symbols for t in types]
    if len(pairs) > limit:
        raise InvalidRequestError(
            f"{len(pairs):,} (symbol, data type) pairs asked for; the limit is {limit:,} "
            "(STARMESH_MAX_PAIRS_PER_REQUEST)"
        )
    for symbol in query.symbols:
        if not symbol or not symbol.strip() or len(symbol) > 64:
            raise InvalidRequestError(f"not a symbol: {symbol!r}")
    return pairs


def as_query(payload: object) -> MarketDataQuery:
    """A request's payload as a query (a plain map from a client in another language)."""
    if isinstance(payload, MarketDataQuery):
        return payload
    try:
        return msgspec.convert(payload, MarketDataQuery)
    except msgspec.ValidationError as exc:
        raise InvalidRequestError(f"not a market-data query: {exc}") from None
