"""Risk: pre-trade checks, limits of the book, VaR and ES, and the flash-crash detector."""

from starmesh.engines.risk.engine import (
    CHECK_TOPIC,
    LIMITS_REQUEST_TOPIC,
    LIMITS_TOPIC,
    RiskConfig,
    RiskEngine,
)
from starmesh.engines.risk.flash_crash import Crash, FlashCrashDetector
from starmesh.engines.risk.limits import PreTradeCheck
from starmesh.engines.risk.measures import DrawdownTracker, expected_shortfall, historical_var
from starmesh.engines.risk.returns import ReturnHistory

__all__ = [
    "CHECK_TOPIC",
    "LIMITS_REQUEST_TOPIC",
    "LIMITS_TOPIC",
    "Crash",
    "DrawdownTracker",
    "FlashCrashDetector",
    "PreTradeCheck",
    "ReturnHistory",
    "RiskConfig",
    "RiskEngine",
    "expected_shortfall",
    "historical_var",
]
