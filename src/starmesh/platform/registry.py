"""Which class is each engine, and how to build it from the platform's config."""

from __future__ import annotations

from collections.abc import Callable

from starmesh.core.enums import EngineType
from starmesh.engines.analytics import AnalyticsEngine
from starmesh.engines.backtesting import BacktestingEngine
from starmesh.engines.base import Engine, EngineContext
from starmesh.engines.collateral import CollateralEngine
from starmesh.engines.factor import FactorEngine
from starmesh.engines.features import FeaturesEngine
from starmesh.engines.ml import MlEngine
from starmesh.engines.portfolio import PortfolioEngine
from starmesh.engines.risk import RiskEngine
from starmesh.engines.strategy import StrategyEngine
from starmesh.engines.toraniko import ToranikoEngine
from starmesh.engines.vpin import VpinEngine
from starmesh.engines.websocket import WebSocketEngine
from starmesh.platform.config import PlatformConfig

__all__ = ["BUILDERS", "build_engine"]

Builder = Callable[[EngineContext, PlatformConfig], Engine]

BUILDERS: dict[EngineType, Builder] = {
    EngineType.RISK: lambda context, config: RiskEngine(context, config.risk),
    EngineType.COLLATERAL: lambda context, config: CollateralEngine(
        context, config.collateral_config()
    ),
    EngineType.VPIN: lambda context, config: VpinEngine(context, config.vpin),
    EngineType.PORTFOLIO: lambda context, config: PortfolioEngine(context, config.portfolio),
    EngineType.STRATEGY: lambda context, config: StrategyEngine(context, config.strategy),
    EngineType.FEATURES: lambda context, config: FeaturesEngine(context, config.features),
    EngineType.ML: lambda context, config: MlEngine(context, config.ml),
    EngineType.FACTOR: lambda context, config: FactorEngine(context, config.factor),
    EngineType.TORANIKO: lambda context, config: ToranikoEngine(context, config.toraniko),
    EngineType.ANALYTICS: lambda context, config: AnalyticsEngine(
        context, config.analytics_config()
    ),
    EngineType.BACKTESTING: lambda context, config: BacktestingEngine(context, config.backtesting),
    EngineType.WEBSOCKET: lambda context, config: WebSocketEngine(context, config.websocket),
}


def build_engine(kind: EngineType, context: EngineContext, config: PlatformConfig) -> Engine:
    builder = BUILDERS.get(kind)
    if builder is None:
        built = ", ".join(engine.value for engine in BUILDERS)
        raise ValueError(f"there is no {kind.value} engine yet; the platform has {built}")
    return builder(context, config)
