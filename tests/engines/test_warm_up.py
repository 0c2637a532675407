"""Factor and Toraniko warm up from the hub's history at start and say so until ready."""

from __future__ import annotations

from starmesh.core.enums import EngineState, EngineType
from starmesh.engines.toraniko import ToranikoEngine
from starmesh.platform.composition import Platform
from starmesh.platform.config import PlatformConfig

SYMBOLS = ("AAPL", "MSFT", "NVDA", "JPM", "XOM", "JNJ")


async def test_factor_says_it_warms_up_until_the_hub_s_history_is_in() -> None:
    config = PlatformConfig(symbols=SYMBOLS, engines=(EngineType.TORANIKO, EngineType.FACTOR))
    platform = Platform(config)
    await platform.start()
    try:
        factor = platform.engines[EngineType.FACTOR]
        toraniko = platform.engines[EngineType.TORANIKO]
        assert isinstance(toraniko, ToranikoEngine)
        # Right after start the history is still being asked for: both say why they wait.
        for engine in (factor, toraniko):
            health = engine.health()
            assert health.state == EngineState.DEGRADED.value, engine.name
            assert "warming_up" in health.detail, engine.name
        await factor.ready()
        await platform.settle()  # Toraniko has Factor's exposures
        assert "warming_up" in toraniko.health().detail
        await toraniko.maybe_estimate()  # what its timer does next
        for engine in (factor, toraniko):
            health = engine.health()
            assert health.state == EngineState.RUNNING.value, (engine.name, health.detail)
            assert "warming_up" not in health.detail
    finally:
        await platform.stop()
