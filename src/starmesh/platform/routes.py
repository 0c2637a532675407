"""The routes of the architecture the engines built so far carry: (from, to, topic pattern).

A route is counted when its first message is delivered (see ``engines/metering.py``); this
table is what a run is checked against, and what the live views draw.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from starmesh.core.enums import EngineType

__all__ = [
    "ALL_ROUTES",
    "ANALYTICS_ROUTES",
    "TRADING_LOOP_ROUTES",
    "ArchitectureRoute",
    "missing_routes",
]

E = EngineType


class ArchitectureRoute(NamedTuple):
    source: EngineType
    target: EngineType
    pattern: str


def _routes(*rows: tuple[EngineType, EngineType, str]) -> tuple[ArchitectureRoute, ...]:
    return tuple(ArchitectureRoute(*row) for row in rows)


TRADING_LOOP_ROUTES: Final = _routes(
    # star: the hub's market data to every engine that follows it
    (E.MARKETDATA, E.STRATEGY, "marketdata.quote.*"),
    (E.MARKETDATA, E.PORTFOLIO, "marketdata.quote.*"),
    (E.MARKETDATA, E.RISK, "marketdata.quote.*"),
    (E.MARKETDATA, E.COLLATERAL, "marketdata.quote.*"),
    (E.MARKETDATA, E.VPIN, "marketdata.trade.*"),
    # mesh: the trading loop
    (E.STRATEGY, E.PORTFOLIO, "strategy.signals.*"),
    (E.STRATEGY, E.RISK, "strategy.position.*"),
    (E.PORTFOLIO, E.RISK, "risk.rpc.check"),
    (E.PORTFOLIO, E.RISK, "portfolio.position.*"),
    (E.PORTFOLIO, E.RISK, "portfolio.balance.*"),
    (E.PORTFOLIO, E.COLLATERAL, "portfolio.balance.*"),
    (E.RISK, E.STRATEGY, "risk.alert.*"),
    (E.RISK, E.PORTFOLIO, "risk.limits.*"),
    (E.COLLATERAL, E.RISK, "collateral.margin.*"),
    (E.VPIN, E.RISK, "vpin.market_structure.*"),
    (E.VPIN, E.RISK, "vpin.toxicity.*"),
    (E.VPIN, E.STRATEGY, "vpin.toxicity.*"),
)
"""Strategy, Portfolio, Risk, Collateral and VPIN, fed by the MarketData Hub."""

ANALYTICS_ROUTES: Final = _routes(
    (E.MARKETDATA, E.FEATURES, "marketdata.quote.*"),
    (E.MARKETDATA, E.FEATURES, "marketdata.level2.*"),
    (E.VPIN, E.FEATURES, "vpin.market_structure.*"),
    (E.FEATURES, E.ML, "features.update.*"),
    (E.ML, E.STRATEGY, "ml.prediction.*"),
    (E.FACTOR, E.TORANIKO, "factor.update.*"),
    (E.FACTOR, E.ANALYTICS, "factor.update.*"),
    (E.TORANIKO, E.FACTOR, "factor.model.*"),
    (E.TORANIKO, E.RISK, "factor.model.*"),
    (E.TORANIKO, E.ANALYTICS, "factor.model.*"),
    (E.PORTFOLIO, E.ANALYTICS, "portfolio.fill.*"),
    (E.PORTFOLIO, E.ANALYTICS, "portfolio.balance.*"),
    (E.ANALYTICS, E.PORTFOLIO, "analytics.performance.*"),
    (E.ANALYTICS, E.STRATEGY, "analytics.performance.*"),
)
"""Features, ML, Factor, Toraniko and Analytics."""

ALL_ROUTES: Final = TRADING_LOOP_ROUTES + ANALYTICS_ROUTES


def missing_routes(
    carried: list[dict[str, object]], expected: tuple[ArchitectureRoute, ...]
) -> list[ArchitectureRoute]:
    """The routes of ``expected`` that carried no message in ``carried`` (a report's routes)."""
    seen = {(r["from"], r["to"], r["topic"]) for r in carried if r["messages"]}
    return [r for r in expected if (r.source.value, r.target.value, r.pattern) not in seen]
