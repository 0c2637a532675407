"""Strategy: a moving-average crossover, halted by risk, filtered by VPIN and ML."""

from starmesh.engines.strategy.crossover import Cross, MovingAverageCrossover
from starmesh.engines.strategy.engine import Halt, StrategyConfig, StrategyEngine

__all__ = ["Cross", "Halt", "MovingAverageCrossover", "StrategyConfig", "StrategyEngine"]
