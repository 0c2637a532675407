"""The Backtesting engine tells the UI how far a run has got, a step at a time."""

from __future__ import annotations

import msgspec

from starmesh.core.enums import EngineType
from starmesh.core.payloads import BacktestProgress
from starmesh.engines.backtesting import BacktestingConfig, BacktestingEngine
from starmesh.engines.base import Engine
from starmesh.platform.config import PlatformConfig
from tests.engines.support import market, start_engine, watcher

CONFIG = PlatformConfig(
    symbols=("AAPL",), backtesting=BacktestingConfig(run_id="y2016", progress_step=0.1)
)


async def test_progress_is_published_on_its_run_s_topic_each_step_and_at_the_end() -> None:
    engines: list[Engine] = []
    async with market() as m, watcher("backtest.progress.*") as (_, seen):
        engine = await start_engine(EngineType.BACKTESTING, CONFIG, m.clock, engines)
        assert isinstance(engine, BacktestingEngine)
        try:
            for fraction in (0.0, 0.05, 0.1, 0.15, 0.25, 0.97, 1.0):
                await engine.progress(fraction)
            await m.settle()
        finally:
            await engine.stop()
    assert {message.topic for message in seen.messages} == {"backtest.progress.y2016"}
    progress = [msgspec.convert(m.payload, BacktestProgress) for m in seen.messages]
    # A step of 0.1: 0.0, then 0.1 (0.05 is too close), 0.25, 0.97; 1.0 always.
    assert [p.fraction_done for p in progress] == [0.0, 0.1, 0.25, 0.97, 1.0]
    assert {p.run_id for p in progress} == {"y2016"}
