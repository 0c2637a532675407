"""The Redis ACL lets every engine write the inboxes the platform's routes need."""

from __future__ import annotations

from starmesh.bus.redis.acl import may_publish_to
from starmesh.core.enums import EngineType
from starmesh.platform.backtest import BACKTEST_ENGINES
from starmesh.platform.routes import ALL_ROUTES


def test_every_route_between_engines_is_allowed() -> None:
    refused = [
        route
        for route in ALL_ROUTES
        # The hub's market data goes to the broadcast stream, not to inboxes.
        if route.source is not EngineType.MARKETDATA
        and route.target not in may_publish_to(route.source)
    ]
    assert refused == []


def test_the_backtesting_engine_may_hear_portfolio_and_analytics() -> None:
    assert EngineType.BACKTESTING in BACKTEST_ENGINES
    for source in (EngineType.PORTFOLIO, EngineType.ANALYTICS):
        assert EngineType.BACKTESTING in may_publish_to(source)
