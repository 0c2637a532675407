"""Backtesting: a run's fills, equity and metrics, from the bus; its progress, to the bus."""

from starmesh.engines.backtesting.engine import BacktestingConfig, BacktestingEngine, FillRecord

__all__ = ["BacktestingConfig", "BacktestingEngine", "FillRecord"]
