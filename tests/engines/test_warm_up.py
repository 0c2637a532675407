"""Factor and Toraniko warm up from the hub's history at start and say so until ready."""

from __future__ import annotations

from starmesh.client.factory import create_messagebus_client
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


async def test_factor_s_exposures_are_handled_while_the_burst_is_still_being_published() -> None:
    """A refresh publishes 1 + 120 dates x 3 styles messages. Built in one go, each would wait
    for the whole burst before any subscriber ran: a turn between messages lets them flow."""
    config = PlatformConfig(symbols=SYMBOLS, engines=(EngineType.FACTOR,))
    platform = Platform(config)
    published_when_handled: list[int] = []
    async with create_messagebus_client(EngineType.ANALYTICS) as analytics:
        await analytics.subscribe(
            "factor.update.*",
            lambda _message: published_when_handled.append(factor.bus.stats()["published"]),
        )
        await platform.start()
        try:
            factor = platform.engines[EngineType.FACTOR]
            await factor.ready()
            await platform.settle()
        finally:
            await platform.stop()
    assert len(published_when_handled) == 1 + 120 * 3
    # Factor's count of messages out (heartbeats included) when each exposure was handled:
    # the first was handled before the last was published.
    assert published_when_handled[0] < published_when_handled[-1]
