"""Portfolio: the paper broker and the book it keeps."""

from starmesh.engines.portfolio.book import Book, Position
from starmesh.engines.portfolio.broker import CommissionSchedule, PaperBroker
from starmesh.engines.portfolio.engine import (
    BALANCE_TOPIC,
    POSITIONS_TOPIC,
    PortfolioConfig,
    PortfolioEngine,
)

__all__ = [
    "BALANCE_TOPIC",
    "POSITIONS_TOPIC",
    "Book",
    "CommissionSchedule",
    "PaperBroker",
    "PortfolioConfig",
    "PortfolioEngine",
    "Position",
]
