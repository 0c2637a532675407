"""The platform's configuration: the universe, the market that feeds it, and each engine's
typed config. One msgspec Struct, so it loads from JSON or TOML and is checked on the way in.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from starmesh.core.enums import EngineType
from starmesh.engines.analytics import AnalyticsConfig
from starmesh.engines.backtesting import BacktestingConfig
from starmesh.engines.collateral import CollateralConfig
from starmesh.engines.factor import FactorConfig
from starmesh.engines.features import FeaturesConfig
from starmesh.engines.ml import MlConfig
from starmesh.engines.portfolio import PortfolioConfig
from starmesh.engines.risk import RiskConfig
from starmesh.engines.strategy import StrategyConfig
from starmesh.engines.toraniko import ToranikoConfig
from starmesh.engines.vpin import VpinConfig
from starmesh.engines.websocket import WebSocketConfig
from starmesh.marketdata.sources.simulated import DEFAULT_UNIVERSE

__all__ = ["ALL_ENGINES", "DEFAULT_SYMBOLS", "TRADING_ENGINES", "PlatformConfig", "Scenario"]

DEFAULT_SYMBOLS: tuple[str, ...] = tuple(DEFAULT_UNIVERSE[:20])
TRADING_ENGINES: tuple[EngineType, ...] = (
    EngineType.RISK,
    EngineType.COLLATERAL,
    EngineType.VPIN,
    EngineType.PORTFOLIO,
    EngineType.STRATEGY,
)
"""The trading loop, in start order: each starts after the engines it asks or follows."""
ALL_ENGINES: tuple[EngineType, ...] = (
    EngineType.WEBSOCKET,
    EngineType.RISK,
    EngineType.COLLATERAL,
    EngineType.VPIN,
    EngineType.FEATURES,
    EngineType.ML,
    EngineType.TORANIKO,
    EngineType.ANALYTICS,
    EngineType.FACTOR,
    EngineType.PORTFOLIO,
    EngineType.STRATEGY,
)
"""Every engine of the live platform, in start order: each starts after those it asks, and
before those whose first messages it must not miss (the UI gateway first; Toraniko and
Analytics before Factor)."""

Scenario = Literal["flash-crash"]
_TRADING_DAY_S = 23_400.0


class PlatformConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    source: Literal["simulated", "replay"] = "simulated"
    seed: int = 7
    quotes_per_second: float = 1_000.0
    """Simulated source: quotes (and as many trades) per second over all symbols."""
    market_speed: float = 60.0
    """Simulated source: seconds of market per second of the clock (jumps are about one an
    hour of market time; at 60 each symbol has about one a minute)."""
    replay_speed: float = 86_400.0
    """Replay source: seconds of history per second of the clock (a trading day a second)."""
    heartbeat_s: float = 2.0
    account: str = "paper"
    engines: tuple[EngineType, ...] = ALL_ENGINES
    scenario: Scenario | None = None
    crash_after_s: float = 5.0
    """Flash-crash scenario: seconds after start at which the crash happens."""
    crash_drop: float = 0.08
    crash_symbol: str | None = None
    """The symbol that crashes (default: the first one)."""
    strategy: StrategyConfig = msgspec.field(default_factory=StrategyConfig)
    portfolio: PortfolioConfig = msgspec.field(default_factory=PortfolioConfig)
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    collateral: CollateralConfig | None = None
    """None: derived from the market's speed (how many clock seconds make a trading day)."""
    vpin: VpinConfig = msgspec.field(default_factory=VpinConfig)
    features: FeaturesConfig = msgspec.field(default_factory=FeaturesConfig)
    ml: MlConfig = msgspec.field(default_factory=MlConfig)
    factor: FactorConfig = msgspec.field(default_factory=FactorConfig)
    toraniko: ToranikoConfig = msgspec.field(default_factory=ToranikoConfig)
    analytics: AnalyticsConfig | None = None
    """None: annualised for the market's speed (how many clock seconds make a trading day)."""
    backtesting: BacktestingConfig = msgspec.field(default_factory=BacktestingConfig)
    websocket: WebSocketConfig = msgspec.field(default_factory=WebSocketConfig)

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ValueError("the platform needs at least one symbol")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols are listed twice")
        if not (self.quotes_per_second > 0 and self.market_speed > 0 and self.replay_speed > 0):
            raise ValueError("quotes_per_second, market_speed and replay_speed must be positive")
        if not 0 < self.crash_drop < 1:
            raise ValueError("crash_drop is a fraction between 0 and 1")
        if self.crash_symbol is not None and self.crash_symbol not in self.symbols:
            raise ValueError(f"crash_symbol {self.crash_symbol!r} is not one of the symbols")
        if self.scenario is not None and self.source != "simulated":
            raise ValueError("scenarios run on the simulated source")

    @property
    def seconds_per_trading_day(self) -> float:
        if self.source == "replay":
            return 86_400.0 / self.replay_speed
        return _TRADING_DAY_S / self.market_speed

    def collateral_config(self) -> CollateralConfig:
        if self.collateral is not None:
            return self.collateral
        return CollateralConfig(seconds_per_day=self.seconds_per_trading_day)

    def analytics_config(self) -> AnalyticsConfig:
        if self.analytics is not None:
            return self.analytics
        return AnalyticsConfig(trading_seconds_per_year=252 * self.seconds_per_trading_day)
