"""Which bus a topic belongs to, how it is delivered, and which message type it implies.

Topics under ``marketdata.`` travel on the MarketData Bus, everything else on the Engine
Logic Bus. Market-data *updates* (``marketdata.<data_type>.<symbol>``) are broadcast: every
subscribing instance gets each one, since each keeps its own copy of the latest values.
Every other topic is shared: one delivery per subscribing engine type, load-shared between
that type's instances.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from starmesh.core.enums import DataType, MessageType
from starmesh.core.topics import is_wildcard, literal_prefix

__all__ = [
    "MARKETDATA_BROADCAST_PATTERNS",
    "MARKETDATA_PREFIX",
    "MARKETDATA_REQUEST_PREFIX",
    "infer_message_type",
    "is_marketdata_topic",
    "marketdata_topic",
    "pattern_buses",
]

MARKETDATA_PREFIX: Final = "marketdata."
MARKETDATA_REQUEST_PREFIX: Final = "marketdata.request."
MARKETDATA_BROADCAST_PATTERNS: Final = tuple(f"marketdata.{dt.value}.*" for dt in DataType)


def is_marketdata_topic(topic: str) -> bool:
    return topic.startswith(MARKETDATA_PREFIX)


def marketdata_topic(data_type: DataType, symbol: str) -> str:
    """The broadcast topic of one symbol's updates of one data type."""
    return f"{MARKETDATA_PREFIX}{data_type.value}.{symbol}"


def pattern_buses(pattern: str) -> tuple[bool, bool]:
    """(on the Engine Logic Bus, on the MarketData Bus): which buses a pattern can match topics of.

    ``marketdata.*`` only the MarketData Bus, ``risk.*`` only the logic bus, ``*`` both.
    """
    if not is_wildcard(pattern):
        return (not is_marketdata_topic(pattern), is_marketdata_topic(pattern))
    literal = literal_prefix(pattern)
    if literal.startswith(MARKETDATA_PREFIX):
        return (False, True)
    # The literal prefix is shorter than "marketdata." yet compatible with it, e.g. "m*" or "*".
    return (True, MARKETDATA_PREFIX.startswith(literal))


_BY_SEGMENTS: Final[dict[str, MessageType]] = {
    "marketdata.request": MessageType.REQUEST,
    **{f"marketdata.{dt.value}": MessageType(dt.value) for dt in DataType},
    "strategy.signal": MessageType.STRATEGY_SIGNAL,
    "strategy.signals": MessageType.STRATEGY_SIGNAL,
    "strategy.position": MessageType.POSITION_CHANGE,
    "portfolio.position": MessageType.POSITION_CHANGE,
    "risk.alert": MessageType.RISK_ALERT,
    "risk.alerts": MessageType.RISK_ALERT,
    "risk.limit": MessageType.RISK_LIMIT_BREACH,
    "risk.breach": MessageType.RISK_LIMIT_BREACH,
    "ml.prediction": MessageType.ML_PREDICTION,
    "ml.predictions": MessageType.ML_PREDICTION,
    "vpin.toxicity": MessageType.TOXICITY_WARNING,
    "collateral.margin": MessageType.MARGIN_STATUS,
    "collateral.margin_call": MessageType.MARGIN_CALL,
    "analytics.performance": MessageType.PERFORMANCE_METRIC,
    "backtesting.progress": MessageType.BACKTEST_PROGRESS,
    "factor": MessageType.FACTOR_UPDATE,
    "toraniko": MessageType.FACTOR_UPDATE,
    "features": MessageType.FEATURE_UPDATE,
}
_BY_SECOND_SEGMENT: Final[dict[str, MessageType]] = {
    "health": MessageType.ENGINE_HEALTH,
    "heartbeat": MessageType.ENGINE_HEALTH,
    "flash_crash": MessageType.FLASH_CRASH_ALERT,
    "order": MessageType.ORDER,
    "orders": MessageType.ORDER,
    "fill": MessageType.FILL,
    "fills": MessageType.FILL,
}


@lru_cache(maxsize=8192)
def infer_message_type(topic: str) -> MessageType:
    """The message type a topic implies (``risk.alert.var`` -> RISK_ALERT), else EVENT."""
    first, _, rest = topic.partition(".")
    second = rest.partition(".")[0]
    return (
        _BY_SEGMENTS.get(f"{first}.{second}")
        or _BY_SECOND_SEGMENT.get(second)
        or _BY_SEGMENTS.get(first)
        or MessageType.EVENT
    )
